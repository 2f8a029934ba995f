//! The read API, under `web.base_path` (and without it, for gateways that strip the prefix):
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /api/errors` | `{"errors": [..], "total", "page", "page_size"}`; filters `namespace`, `workload`, `pod` (substring), `priority`, `rule`, `since` (RFC 3339 or a duration back from now, `15m`), `search`; paging `page` (from 1), `page_size` (1-100, default 20) |
//! | `GET /api/errors/{id}` | `{"error": {..}}`, or 404 |
//! | `GET /api/rules` | `{"source", "loaded_at", "rules": [..]}` |
//! | `POST /api/rules/test` | body `{"pattern", "sample"}`: `{"matches": bool}`, or 400 with `error` |
//! | `GET /api/stats` | totals by priority and namespace |
//! | `GET /api/remediations` | the audit log, newest first: `{"entries": [..], "total", "page", "page_size"}`; filters `namespace`, `outcome`, `error` (an error's id) |
//! | `GET /api/cooldowns` | `{"cooldowns": [{"rule", "namespace", "owner", "until"}]}` |
//! | `GET /api/settings` | the switches, the limits, this hour's actions, leadership |
//! | `GET /api/events` | live updates (Server-Sent Events: `page`, `audit`, `settings`) |
//! | `POST /api/settings` | token; body `{"enabled": bool, "dry_run": bool}` (either or both) |
//! | `POST /api/cooldowns/clear` | token; body `{"rule", "namespace", "owner"}` (`owner` as `Kind/name`) |
//!
//! JSON keys are snake_case. Bad parameters get 400 with `{"error": "<what was wrong>"}`.
//! Reads and writes are authorised as [`crate::auth`] says: 401 with `WWW-Authenticate`
//! without valid credentials, 403 when writes are disabled. The dashboard's pages are
//! [`crate::dashboard`].

use std::sync::Arc;

use bulwark_http::ResponseBody;
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::rules::{Priority, Rule};
use bulwark_sentinel::store::{Filter, Page, rfc3339};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use crate::auth::{Auth, Denied};
use crate::live::Live;
use crate::rules::{Rules, now_ns};
use crate::store::{Store, StoreError};

mod write;

pub use write::Control;
pub(crate) use write::remediation_query;

/// The highest page number a list accepts (far beyond any store's size, and no overflow).
pub(crate) const MAX_PAGE: usize = 1_000_000;

/// Largest request body read (`/api/rules/test`).
const MAX_BODY: usize = 64 * 1024;

/// What the API reads.
#[derive(Debug, Clone)]
pub struct Api {
    pub base_path: String,
    pub rules: Arc<Rules>,
    pub store: Arc<dyn Store>,
    pub auth: Auth,
    pub live: Arc<Live>,
    pub control: Arc<Control>,
}

impl Api {
    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        let path = req.uri().path().to_owned();
        let path = match path.strip_prefix(self.base_path.as_str()) {
            Some(p) if !self.base_path.is_empty() && (p.is_empty() || p.starts_with('/')) => p,
            _ => path.as_str(),
        };
        let path = path.to_owned();
        let mut resp = if path.starts_with("/api/") {
            self.api(req, &path).await
        } else {
            crate::dashboard::handle(self, req, &path).await
        };
        crate::dashboard::secure(resp.headers_mut());
        resp
    }

    async fn api(&self, req: Request<Incoming>, path: &str) -> Response<ResponseBody> {
        let writing = req.method() == Method::POST && path != "/api/rules/test";
        let allowed = if writing {
            self.auth.write(req.headers())
        } else {
            self.auth.read(req.headers())
        };
        if let Err(denied) = allowed {
            return refused(denied);
        }
        let query = req.uri().query().unwrap_or_default().to_owned();
        let result = match (req.method(), path) {
            (&Method::GET, "/api/events") => return self.live.subscribe(),
            (&Method::GET, "/api/remediations") => self.remediations(&query).await,
            (&Method::GET, "/api/cooldowns") => self.cooldowns().await,
            (&Method::GET, "/api/settings") => self.settings().await,
            (&Method::POST, "/api/settings") => self.set_settings(req).await,
            (&Method::POST, "/api/cooldowns/clear") => self.clear_cooldown(req).await,
            (&Method::GET, "/api/errors") => self.errors(&query).await,
            (&Method::GET, "/api/rules") => Ok(self.rules()),
            (&Method::GET, "/api/stats") => self.stats().await,
            (&Method::POST, "/api/rules/test") => test_rule(req).await,
            (&Method::GET, p) if p.starts_with("/api/errors/") => {
                self.error(&p["/api/errors/".len()..]).await
            }
            (
                _,
                "/api/errors"
                | "/api/rules"
                | "/api/stats"
                | "/api/rules/test"
                | "/api/events"
                | "/api/remediations"
                | "/api/cooldowns"
                | "/api/settings"
                | "/api/cooldowns/clear",
            ) => Err((
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {path}", req.method()),
            )),
            _ => Err((StatusCode::NOT_FOUND, format!("no route {path}"))),
        };
        match result {
            Ok(body) => json_response(StatusCode::OK, &body),
            Err((status, message)) => json_response(status, &json!({ "error": message })),
        }
    }

    pub(crate) async fn errors(
        &self,
        query: &str,
    ) -> Result<serde_json::Value, (StatusCode, String)> {
        let (filter, page) = error_query(query)?;
        let (errors, total) = self.store.list(&filter, page).await.map_err(unavailable)?;
        Ok(json!({
            "errors": errors,
            "total": total,
            "page": page.page,
            "page_size": page.page_size,
        }))
    }
    pub(crate) async fn error(&self, id: &str) -> Result<serde_json::Value, (StatusCode, String)> {
        let not_found = || (StatusCode::NOT_FOUND, format!("no error with id {id:?}"));
        let f = Fingerprint::parse(id).ok_or_else(not_found)?;
        let e = self
            .store
            .get(f)
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        Ok(json!({ "error": e }))
    }

    pub(crate) fn rules(&self) -> serde_json::Value {
        let current = self.rules.current();
        let rules: Vec<RuleView<'_>> = current
            .detector
            .rules()
            .rules()
            .iter()
            .map(RuleView::new)
            .collect();
        json!({
            "source": current.source,
            "loaded_at": rfc3339(current.loaded_at_ns),
            "rules": rules,
        })
    }

    pub(crate) async fn stats(&self) -> Result<serde_json::Value, (StatusCode, String)> {
        let stats = self.store.stats().await.map_err(unavailable)?;
        let current = self.rules.current();
        Ok(json!({
            "unique_errors": stats.unique_errors,
            "occurrences": stats.occurrences,
            "by_priority": stats.by_priority,
            "by_namespace": stats.by_namespace,
            "last_seen": stats.last_seen,
            "rules": current.detector.rules().rules().len(),
        }))
    }
}

/// The filters and page of `GET /api/errors` (and the errors page).
pub(crate) fn error_query(query: &str) -> Result<(Filter, Page), (StatusCode, String)> {
    let mut filter = Filter::default();
    let page = read_query(query, |key, value, page| {
        let text = Some(value.to_owned());
        match key {
            "namespace" => filter.namespace = text,
            "workload" => filter.workload = text,
            "pod" => filter.pod = text,
            "rule" => filter.rule = text,
            "search" => filter.search = text,
            "priority" => {
                filter.priority = Some(
                    Priority::parse(value)
                        .ok_or("expected P1-P4, critical, high, medium or low")?,
                );
            }
            "since" => {
                filter.since_ns = Some(
                    since(value).ok_or("expected an RFC 3339 time or a duration such as 15m")?,
                );
            }
            // Upstream's spelling.
            "pageSize" => paging("page_size", value, page)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((filter, page))
}

/// Reads a query string: `page` and `page_size` into a page that starts at [`FIRST_PAGE`],
/// every other parameter through `field`, which says what is wrong with a value, or returns
/// `Ok(false)` for a name it does not know. A bad or unknown parameter is a 400 naming it.
pub(crate) fn read_query(
    query: &str,
    mut field: impl FnMut(&str, &str, &mut Page) -> Result<bool, &'static str>,
) -> Result<Page, (StatusCode, String)> {
    let mut page = FIRST_PAGE;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let known = match &*key {
            "page" | "page_size" => paging(&key, &value, &mut page).map(|()| true),
            _ => field(&key, &value, &mut page),
        };
        let what = match known {
            Ok(true) => continue,
            Ok(false) => "unknown parameter",
            Err(what) => what,
        };
        return Err((StatusCode::BAD_REQUEST, format!("{key}={value:?}: {what}")));
    }
    Ok(page)
}

/// The first page of 20, where a list starts.
pub(crate) const FIRST_PAGE: Page = Page {
    page: 1,
    page_size: 20,
};

/// Reads `key` (`page`, from 1, or `page_size`, 1-100) into `page`; the error says what was
/// expected.
fn paging(key: &str, value: &str, page: &mut Page) -> Result<(), &'static str> {
    if key == "page" {
        page.page = value
            .parse()
            .ok()
            .filter(|p| (1..=MAX_PAGE).contains(p))
            .ok_or("expected a page number from 1 to 1000000")?;
    } else {
        page.page_size = value
            .parse()
            .ok()
            .filter(|s| (1..=100).contains(s))
            .ok_or("expected a page size from 1 to 100")?;
    }
    Ok(())
}

/// The answer to a request `denied` refused.
fn refused(denied: Denied) -> Response<ResponseBody> {
    let status = match denied {
        Denied::WritesDisabled => StatusCode::FORBIDDEN,
        Denied::ReadsClosed | Denied::Unauthenticated => StatusCode::UNAUTHORIZED,
    };
    let mut r = json_response(status, &json!({ "error": denied.message() }));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"sentinel\""),
        );
    }
    r
}

pub(crate) fn unavailable(e: StoreError) -> (StatusCode, String) {
    tracing::warn!(error = %e, "The store failed an API read.");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the store is unavailable: {e}"),
    )
}

/// A rule as `/api/rules` shows it.
#[derive(Serialize)]
struct RuleView<'a> {
    name: &'a str,
    priority: Priority,
    pattern: Option<&'a str>,
    keywords: &'a [String],
    labels: Vec<(&'a str, String)>,
    namespaces: Vec<String>,
    action: &'static str,
    cooldown_seconds: u64,
    enabled: bool,
}

impl<'a> RuleView<'a> {
    fn new(r: &'a Rule) -> Self {
        Self {
            name: &r.name,
            priority: r.priority,
            pattern: r.pattern.as_deref(),
            keywords: &r.keywords,
            labels: r
                .labels
                .iter()
                .map(|(k, t)| (k.as_str(), format!("{t}")))
                .collect(),
            namespaces: r.namespaces.entries(),
            action: r.action.name(),
            cooldown_seconds: r.cooldown.as_secs(),
            enabled: r.enabled,
        }
    }
}

/// An RFC 3339 time, or a duration back from now.
pub(crate) fn since(text: &str) -> Option<i64> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return i64::try_from(t.as_nanosecond()).ok();
    }
    let d: bulwark_config::Duration = text.parse().ok()?;
    Some(now_ns() - i64::try_from(d.get().as_nanos()).ok()?)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    pattern: String,
    sample: String,
}

/// `POST /api/rules/test`: whether `pattern` matches `sample`. No side effects.
pub(crate) async fn test_rule(
    req: Request<Incoming>,
) -> Result<serde_json::Value, (StatusCode, String)> {
    let body = read_body(req).await?;
    let t: TestRequest = serde_json::from_slice(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("expected {{\"pattern\": \"...\", \"sample\": \"...\"}}: {e}"),
        )
    })?;
    let re = regex_automata::meta::Regex::new(&t.pattern).map_err(|e| {
        let message = match e.syntax_error() {
            Some(s) => format!("invalid regex: {s}"),
            None => format!("invalid regex: {e}"),
        };
        (StatusCode::BAD_REQUEST, message)
    })?;
    Ok(json!({
        "matches": re.is_match(t.sample.as_str()),
        "slow": bulwark_sentinel::rules::uses_unicode_word_boundary(&t.pattern),
    }))
}

/// The request's body, at most [`MAX_BODY`] bytes.
pub(crate) async fn read_body(req: Request<Incoming>) -> Result<Bytes, (StatusCode, String)> {
    Ok(Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            )
        })?
        .to_bytes())
}

pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response<ResponseBody> {
    let text = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = bulwark_http::response(status, "application/json", text);
    r.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_read_or_refused_by_name() {
        let (filter, page) =
            error_query("namespace=shop&priority=critical&pod=api&pageSize=50&page=3").unwrap();
        assert_eq!(filter.namespace.as_deref(), Some("shop"));
        assert_eq!(filter.pod.as_deref(), Some("api"));
        assert_eq!(filter.priority, Some(Priority::P1));
        assert_eq!(
            page,
            Page {
                page: 3,
                page_size: 50
            }
        );
        assert_eq!(error_query("").unwrap().1, FIRST_PAGE);
        for (query, message) in [
            (
                "priority=P9",
                r#"priority="P9": expected P1-P4, critical, high, medium or low"#,
            ),
            (
                "page_size=0",
                r#"page_size="0": expected a page size from 1 to 100"#,
            ),
            ("colour=red", r#"colour="red": unknown parameter"#),
        ] {
            assert_eq!(
                error_query(query).unwrap_err(),
                (StatusCode::BAD_REQUEST, message.to_owned())
            );
        }

        let (filter, page) = remediation_query("outcome=dry_run&page_size=7").unwrap();
        assert_eq!(
            filter.outcome,
            Some(bulwark_sentinel::audit::Outcome::DryRun)
        );
        assert_eq!(page.page_size, 7);
        // Upstream's `pageSize` is the errors list's only.
        assert_eq!(
            remediation_query("pageSize=7").unwrap_err().1,
            r#"pageSize="7": unknown parameter"#
        );
        assert_eq!(
            remediation_query("error=xyz").unwrap_err().1,
            r#"error="xyz": expected an error id"#
        );
    }
}
