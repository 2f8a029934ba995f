//! The dashboard: server-rendered pages under `web.base_path`, no build step, no CDN.
//!
//! Every log line is text an attacker may have written. Pages are maud templates, which
//! escape every value by construction; log text sits in `<bdi>` so a right-to-left override
//! cannot reorder the page around it, and long lines are cut in lists. Responses carry a
//! strict Content-Security-Policy (scripts and styles only from our own `/static/`, no inline
//! script, no framing), `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`.
//!
//! Signing in sets the session cookie ([`crate::auth`]); changing settings takes the token in
//! the form itself, never the cookie.

use bulwark_http::ResponseBody;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use maud::Markup;

use crate::api::{Api, read_body};
use crate::auth::{COOKIE, SESSION};

mod pages;

/// The policy every response carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("dashboard/static/app.css");
const JS: &str = include_str!("dashboard/static/app.js");

/// Adds the security headers to a response.
pub fn secure(h: &mut HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

/// Answers a request outside `/api/`.
pub async fn handle(api: &Api, req: Request<Incoming>, path: &str) -> Response<ResponseBody> {
    match (req.method(), path) {
        (&Method::GET, "/static/app.css") => {
            return asset("text/css; charset=utf-8", CSS);
        }
        (&Method::GET, "/static/app.js") => {
            return asset("text/javascript; charset=utf-8", JS);
        }
        (&Method::GET, "/login") => return page(StatusCode::OK, pages::login(api, None)),
        (&Method::POST, "/login") => return login(api, req).await,
        (&Method::POST, "/logout") => return logout(api),
        _ => {}
    }
    if api.auth.read(req.headers()).is_err() {
        return redirect(&format!("{}/login", api.base_path), None);
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    let result = match (req.method(), path) {
        (&Method::GET, "/" | "") => pages::overview(api).await,
        (&Method::GET, "/errors") => pages::errors(api, &query).await,
        (&Method::GET, p) if p.starts_with("/errors/") => {
            pages::error(api, &p["/errors/".len()..]).await
        }
        (&Method::GET, "/rules") => Ok(pages::rules(api, None)),
        (&Method::POST, "/rules") => rule_test(api, req).await,
        (&Method::GET, "/remediations") => pages::remediations(api, &query).await,
        (&Method::GET, "/settings") => pages::settings(api, None).await,
        (&Method::POST, "/settings") => settings(api, req).await,
        _ => Err((StatusCode::NOT_FOUND, format!("no page {path}"))),
    };
    match result {
        Ok(markup) => page(StatusCode::OK, markup),
        Err((status, message)) => page(status, pages::problem(api, status, &message)),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response<ResponseBody> {
    let mut r = bulwark_http::response(StatusCode::OK, content_type, body);
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("max-age=300"));
    r
}

fn page(status: StatusCode, markup: Markup) -> Response<ResponseBody> {
    let mut r = bulwark_http::response(status, "text/html; charset=utf-8", markup.into_string());
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &str, cookie: Option<String>) -> Response<ResponseBody> {
    let mut r = bulwark_http::text(StatusCode::SEE_OTHER, "");
    let location = if to.is_empty() { "/" } else { to };
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(hyper::header::SET_COOKIE, c);
    }
    r
}

/// The form fields of a urlencoded body.
async fn form(req: Request<Incoming>) -> Result<Vec<(String, String)>, (StatusCode, String)> {
    let body = read_body(req).await?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn cookie_path(api: &Api) -> &str {
    if api.base_path.is_empty() {
        "/"
    } else {
        &api.base_path
    }
}

async fn login(api: &Api, req: Request<Incoming>) -> Response<ResponseBody> {
    let secure = req
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let fields = match form(req).await {
        Ok(f) => f,
        Err((status, message)) => return page(status, pages::login(api, Some(&message))),
    };
    let given = field(&fields, "token").unwrap_or_default();
    let expires = jiff::Timestamp::now().as_second() + SESSION;
    match api.auth.session(expires) {
        Some(session) if api.auth.token_matches(given) => {
            let cookie = format!(
                "{COOKIE}={session}; Path={}; Max-Age={SESSION}; HttpOnly; SameSite=Strict{}",
                cookie_path(api),
                if secure { "; Secure" } else { "" }
            );
            redirect(&format!("{}/", api.base_path), Some(cookie))
        }
        None => page(
            StatusCode::FORBIDDEN,
            pages::login(api, Some(crate::auth::Denied::ReadsClosed.message())),
        ),
        Some(_) => page(
            StatusCode::UNAUTHORIZED,
            pages::login(api, Some("That is not the token.")),
        ),
    }
}

fn logout(api: &Api) -> Response<ResponseBody> {
    let cookie = format!(
        "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        cookie_path(api)
    );
    redirect(&format!("{}/login", api.base_path), Some(cookie))
}

async fn rule_test(api: &Api, req: Request<Incoming>) -> Result<Markup, (StatusCode, String)> {
    let fields = form(req).await?;
    let pattern = field(&fields, "pattern").unwrap_or_default().to_owned();
    let sample = field(&fields, "sample").unwrap_or_default().to_owned();
    let verdict = match regex_automata::meta::Regex::new(&pattern) {
        Ok(re) => Ok(re.is_match(sample.as_str())),
        Err(e) => Err(e
            .syntax_error()
            .map_or_else(|| e.to_string(), ToString::to_string)),
    };
    Ok(pages::rules(api, Some((pattern, sample, verdict))))
}

/// The settings form: the token is a field of the form, so a forged cross-site post fails.
async fn settings(api: &Api, req: Request<Incoming>) -> Result<Markup, (StatusCode, String)> {
    let fields = form(req).await?;
    let token = field(&fields, "token").unwrap_or_default();
    if !api.auth.writable() {
        return Err((
            StatusCode::FORBIDDEN,
            crate::auth::Denied::WritesDisabled.message().into(),
        ));
    }
    if !api.auth.token_matches(token) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "That is not the token; nothing changed.".into(),
        ));
    }
    let result = match field(&fields, "do") {
        Some("switches") => api
            .apply_switches(
                Some(field(&fields, "enabled") == Some("on")),
                Some(field(&fields, "dry_run") == Some("on")),
            )
            .await
            .map(|s| format!("Saved: enabled {}, dry run {}.", s.enabled, s.dry_run)),
        Some("clear") => {
            let held = bulwark_sentinel::remediation::Held {
                rule: field(&fields, "rule").unwrap_or_default().to_owned(),
                namespace: field(&fields, "namespace").unwrap_or_default().to_owned(),
                owner: field(&fields, "owner").unwrap_or_default().to_owned(),
            };
            let said = format!(
                "Cleared the cooldown of {} on {} in {}.",
                held.rule, held.owner, held.namespace
            );
            api.clear(held).await.map(|_| said)
        }
        _ => Err((StatusCode::BAD_REQUEST, "unknown settings action".into())),
    };
    pages::settings(api, Some(result.map_err(|(_, m)| m))).await
}
