//! The pages, as maud templates: every `(value)` is escaped; nothing here builds HTML from
//! strings.

use bulwark_sentinel::audit::{self, Entry};
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::rules::Priority;
use bulwark_sentinel::store::{ErrorView, Page};
use hyper::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::api::{Api, error_query, remediation_query, unavailable};
use crate::rules::now_ns;

type Result<T> = std::result::Result<T, (StatusCode, String)>;

/// Characters of a log line shown in lists; the detail page shows it whole.
const CUT: usize = 240;

fn layout(api: &Api, title: &str, body: Markup) -> Markup {
    let base = &api.base_path;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kube Sentinel" }
                link rel="stylesheet" href={ (base) "/static/app.css" };
                script src={ (base) "/static/app.js" } defer {}
            }
            body data-base=(base) {
                header {
                    strong { "Kube Sentinel" }
                    nav {
                        a href={ (base) "/" } { "Overview" }
                        a href={ (base) "/errors" } { "Errors" }
                        a href={ (base) "/rules" } { "Rules" }
                        a href={ (base) "/remediations" } { "Remediations" }
                        a href={ (base) "/settings" } { "Settings" }
                    }
                    span #live title="Live updates" { "offline" }
                    @if !api.auth.public_reads() {
                        form method="post" action={ (base) "/logout" } {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// Log text: isolated from the page's direction, cut to `max` characters when given, and
/// with invisible controls shown by their code point: a right-to-left override would
/// otherwise make `gnp.exe` read as `exe.png`.
fn log_text(text: &str, max: Option<usize>) -> Markup {
    let (shown, cut) = match max {
        Some(max) => match text.char_indices().nth(max) {
            Some((i, _)) => (&text[..i], true),
            None => (text, false),
        },
        None => (text, false),
    };
    html! {
        bdi.log {
            @for piece in pieces(shown) {
                @match piece {
                    Ok(plain) => (plain),
                    Err(c) => span.ctl title="invisible control character" {
                        "⟨U+" (format!("{:04X}", u32::from(c))) "⟩"
                    },
                }
            }
        }
        @if cut { span.cut { "… (" (text.chars().count()) " characters)" } }
    }
}

/// Whether `c` changes how text around it reads without being seen: bidirectional controls,
/// zero-width characters and C0/C1 controls other than tab and newline.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        | '\u{061C}' | '\u{FEFF}')
        || (c.is_control() && c != '\t' && c != '\n')
}

/// `text` split into runs of plain text (`Ok`) and invisible characters (`Err`).
fn pieces(text: &str) -> Vec<std::result::Result<&str, char>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if invisible(c) {
            if start < i {
                out.push(Ok(&text[start..i]));
            }
            out.push(Err(c));
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        out.push(Ok(&text[start..]));
    }
    out
}

fn priority(p: Priority) -> Markup {
    html! { span class={ "prio " (p.as_str()) } { (p.as_str()) " " (p.label()) } }
}

fn error_rows(api: &Api, errors: &[ErrorView]) -> Markup {
    let base = &api.base_path;
    html! {
        table {
            thead { tr { th { "Priority" } th { "Namespace" } th { "Workload" } th { "Rule" }
                th { "Count" } th { "Last seen" } th { "Message" } } }
            tbody {
                @for e in errors {
                    tr {
                        td { (priority(e.priority)) }
                        td { (e.namespace) }
                        td { (e.workload) }
                        td { (e.rule) }
                        td.num { (e.count) }
                        td { (e.last_seen) }
                        td { a href={ (base) "/errors/" (e.id) } { (log_text(&e.message, Some(CUT))) } }
                    }
                }
            }
        }
        @if errors.is_empty() { p.empty { "No errors." } }
    }
}

fn audit_rows(api: &Api, entries: &[Entry]) -> Markup {
    let base = &api.base_path;
    html! {
        table #audit {
            thead { tr { th { "When" } th { "Outcome" } th { "Action" } th { "Rule" }
                th { "Namespace" } th { "Workload" } th { "Detail" } th { "Error" } } }
            tbody {
                @for e in entries {
                    tr {
                        td { (bulwark_sentinel::store::rfc3339(e.at_ns)) }
                        td { span class={ "outcome " (e.outcome.as_str()) } { (e.outcome.as_str()) }
                            @if let Some(r) = &e.reason { " (" (r) ")" } }
                        td { (e.action) }
                        td { (e.rule) }
                        td { (e.namespace) }
                        td { (e.owner) }
                        td { (log_text(&e.detail, Some(CUT))) }
                        td { @if let Some(f) = e.fingerprint { a href={ (base) "/errors/" (f) } { (f) } } }
                    }
                }
            }
        }
        @if entries.is_empty() { p.empty { "No remediations." } }
    }
}

/// Links to the previous and next pages of a list at `path` with `query`.
fn pager(
    api: &Api,
    path: &str,
    query: &str,
    page: usize,
    page_size: usize,
    total: usize,
) -> Markup {
    let keep: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "page")
        .collect();
    let href = |p: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(keep.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        q.append_pair("page", &p.to_string());
        format!("{}{path}?{}", api.base_path, q.finish())
    };
    let pages = total.div_ceil(page_size.max(1)).max(1);
    html! {
        p.pager {
            @if page > 1 { a rel="prev" href=(href(page - 1)) { "← previous" } " " }
            "page " (page) " of " (pages) " (" (total) ")"
            @if page < pages { " " a rel="next" href=(href(page + 1)) { "next →" } }
        }
    }
}

pub(super) async fn overview(api: &Api) -> Result<Markup> {
    let stats = api.store.stats().await.map_err(unavailable)?;
    let limits = api.limits().await?;
    let used = api.safety().await?.budget(&limits, now_ns()).0;
    let (latest, _) = api
        .store
        .list(
            &Default::default(),
            Page {
                page: 1,
                page_size: 10,
            },
        )
        .await
        .map_err(unavailable)?;
    let (audit, _) = api
        .store
        .audit_log(&audit::Filter::default(), 0, 10)
        .await
        .map_err(unavailable)?;
    let body = html! {
        section.cards {
            div.card { h2 { "Unique errors" } p.big data-stat="unique_errors" { (stats.unique_errors) } }
            div.card { h2 { "Occurrences" } p.big data-stat="occurrences" { (stats.occurrences) } }
            @for p in Priority::ALL {
                div.card { h2 { (priority(p)) } p.big data-stat={ "by_priority." (p.as_str()) } {
                    (stats.by_priority.get(&p).copied().unwrap_or(0)) } }
            }
            div.card { h2 { "Actions this hour" } p.big { (used) " / " (limits.max_actions_per_hour) } }
            div.card { h2 { "Remediation" } p.big {
                @if !limits.enabled { "disabled" } @else if limits.dry_run { "dry run" } @else { "enabled" }
            } p { @if api.control.leading() { "this replica acts (leader)" } @else { "this replica does not act" } } }
        }
        p { "Live updates received: " span #updates { "0" } }
        h2 { "By namespace" }
        table {
            thead { tr { th { "Namespace" } th { "Occurrences" } } }
            tbody { @for (ns, n) in &stats.by_namespace {
                tr { td { (ns) } td.num data-stat={ "by_namespace." (ns) } { (n) } }
            } }
        }
        h2 { "Latest errors" }
        (error_rows(api, &latest))
        h2 { "Latest remediations" }
        ul #feed {}
        (audit_rows(api, &audit))
    };
    Ok(layout(api, "Overview", body))
}

pub(super) async fn errors(api: &Api, query: &str) -> Result<Markup> {
    let (filter, page) = error_query(query)?;
    let (errors, total) = api.store.list(&filter, page).await.map_err(unavailable)?;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        form.filters method="get" action={ (api.base_path) "/errors" } {
            label { "Namespace " input name="namespace" value=(v(&filter.namespace)); }
            label { "Workload " input name="workload" value=(v(&filter.workload)); }
            label { "Pod " input name="pod" value=(v(&filter.pod)); }
            label { "Rule " input name="rule" value=(v(&filter.rule)); }
            label { "Priority " select name="priority" {
                option value="" { "any" }
                @for p in Priority::ALL {
                    option value=(p.as_str()) selected[filter.priority == Some(p)] { (p.as_str()) }
                }
            } }
            label { "Search " input name="search" value=(v(&filter.search)); }
            button type="submit" { "Filter" }
        }
        (error_rows(api, &errors))
        (pager(api, "/errors", query, page.page, page.page_size, total))
    };
    Ok(layout(api, "Errors", body))
}

pub(super) async fn error(api: &Api, id: &str) -> Result<Markup> {
    let not_found = || (StatusCode::NOT_FOUND, format!("no error with id {id}"));
    let f = Fingerprint::parse(id).ok_or_else(not_found)?;
    let e = api
        .store
        .get(f)
        .await
        .map_err(unavailable)?
        .ok_or_else(not_found)?;
    let filter = audit::Filter {
        fingerprint: Some(f),
        ..audit::Filter::default()
    };
    let (history, _) = api
        .store
        .audit_log(&filter, 0, 50)
        .await
        .map_err(unavailable)?;
    let body = html! {
        dl.detail {
            dt { "Priority" } dd { (priority(e.priority)) }
            dt { "Rule" } dd { (e.rule) }
            dt { "Namespace" } dd { (e.namespace) }
            dt { "Workload" } dd { (e.workload) }
            dt { "Container" } dd { (e.container) }
            dt { "Latest pod" } dd { (e.pod) }
            dt { "Occurrences" } dd { (e.count) }
            dt { "First seen" } dd { (e.first_seen) }
            dt { "Last seen" } dd { (e.last_seen) }
            dt { "Fingerprint" } dd { code { (e.id) } }
        }
        h2 { "Message" }
        pre { (log_text(&e.message, None)) }
        h2 { "Normalised" }
        pre { (log_text(&e.normalized, None)) }
        h2 { "Samples" }
        table {
            thead { tr { th { "When" } th { "Pod" } th { "Message" } } }
            tbody { @for s in &e.samples {
                tr { td { (s.timestamp) } td { (s.pod) } td { pre { (log_text(&s.message, None)) } } }
            } }
        }
        h2 { "Remediation history" }
        (audit_rows(api, &history))
    };
    Ok(layout(api, "Error", body))
}

/// The rules page; `test` is a pattern, a sample and the verdict of the test box.
pub(super) fn rules(
    api: &Api,
    test: Option<(String, String, std::result::Result<bool, String>)>,
) -> Markup {
    let current = api.rules.current();
    let (pattern, sample) = test
        .as_ref()
        .map(|(p, s, _)| (p.as_str(), s.as_str()))
        .unwrap_or_default();
    let body = html! {
        p { "From " code { (current.source) } ", loaded " (bulwark_sentinel::store::rfc3339(current.loaded_at_ns)) "." }
        h2 { "Test a pattern" }
        form.test method="post" action={ (api.base_path) "/rules" } {
            label { "Pattern " input name="pattern" value=(pattern) required; }
            label { "Sample line " textarea name="sample" rows="3" { (sample) } }
            button type="submit" { "Test" }
        }
        @if let Some((_, _, verdict)) = &test {
            p #verdict { @match verdict {
                Ok(true) => "The pattern matches the sample.",
                Ok(false) => "The pattern does not match the sample.",
                Err(e) => { "Invalid pattern: " (e) },
            } }
        }
        h2 { "Rules, in the order they are tried" }
        table {
            thead { tr { th { "Name" } th { "Priority" } th { "Pattern" } th { "Keywords" }
                th { "Namespaces" } th { "Action" } th { "Cooldown" } th { "Enabled" } } }
            tbody { @for r in current.detector.rules().rules() {
                tr {
                    td { (r.name) }
                    td { (priority(r.priority)) }
                    td { code { (r.pattern.as_deref().unwrap_or("")) } }
                    td { (r.keywords.join(", ")) }
                    td { (r.namespaces.entries().join(", ")) }
                    td { (r.action.name()) }
                    td { (r.cooldown.as_secs()) "s" }
                    td { (if r.enabled { "yes" } else { "no" }) }
                }
            } }
        }
    };
    layout(api, "Rules", body)
}

pub(super) async fn remediations(api: &Api, query: &str) -> Result<Markup> {
    let (filter, page) = remediation_query(query)?;
    let (entries, total) = api.audit_page(&filter, page).await?;
    let body = html! {
        (audit_rows(api, &entries))
        (pager(api, "/remediations", query, page.page, page.page_size, total))
    };
    Ok(layout(api, "Remediations", body))
}

/// The settings page; `result` is what the last form post did.
pub(super) async fn settings(
    api: &Api,
    result: Option<std::result::Result<String, String>>,
) -> Result<Markup> {
    let limits = api.limits().await?;
    let now = now_ns();
    let mut safety = api.safety().await?;
    let used = safety.budget(&limits, now).0;
    let cooldowns = safety.cooldowns(now);
    let action = format!("{}/settings", api.base_path);
    let body = html! {
        @match &result {
            Some(Ok(m)) => p.ok { (m) },
            Some(Err(m)) => p.err { (m) },
            None => {},
        }
        dl.detail {
            dt { "Remediation" } dd { (if limits.enabled { "enabled" } else { "disabled" }) }
            dt { "Dry run" } dd { (if limits.dry_run { "on: actions are only described" } else { "off" }) }
            dt { "Actions this hour" } dd { (used) " of " (limits.max_actions_per_hour) }
            dt { "Per namespace per hour" } dd { (limits.max_actions_per_namespace_per_hour) }
            dt { "Excluded namespaces" } dd { (limits.excluded_namespaces.join(", ")) }
            dt { "This replica" } dd { (api.control.replica) ": "
                (if api.control.leading() { "leader, acts" } else { "follower, does not act" }) }
            @if let Some(why) = &api.control.unavailable { dt { "Cannot act" } dd { (why) } }
        }
        h2 { "Change" }
        @if api.auth.writable() {
            form.settings method="post" action=(action) {
                input type="hidden" name="do" value="switches";
                label { input type="checkbox" name="enabled" checked[limits.enabled]; " Remediation enabled" }
                label { input type="checkbox" name="dry_run" checked[limits.dry_run]; " Dry run" }
                label { "Token " input type="password" name="token" autocomplete="off" required; }
                button type="submit" { "Save" }
            }
        } @else {
            p { (crate::auth::Denied::WritesDisabled.message()) }
        }
        h2 { "Cooldowns" }
        table {
            thead { tr { th { "Rule" } th { "Namespace" } th { "Workload" } th { "Until" } th {} } }
            tbody { @for (held, until) in &cooldowns {
                tr {
                    td { (held.rule) } td { (held.namespace) } td { (held.owner) }
                    td { (bulwark_sentinel::store::rfc3339(*until)) }
                    td { @if api.auth.writable() {
                        form method="post" action=(action) {
                            input type="hidden" name="do" value="clear";
                            input type="hidden" name="rule" value=(held.rule);
                            input type="hidden" name="namespace" value=(held.namespace);
                            input type="hidden" name="owner" value=(held.owner);
                            input type="password" name="token" placeholder="token" autocomplete="off" required;
                            button type="submit" { "Clear" }
                        }
                    } }
                }
            } }
        }
        @if cooldowns.is_empty() { p.empty { "No cooldowns." } }
    };
    Ok(layout(api, "Settings", body))
}

pub(super) fn login(api: &Api, message: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(m) = message { p.err { (m) } }
        form.login method="post" action={ (api.base_path) "/login" } {
            label { "Token " input type="password" name="token" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
    };
    layout(api, "Sign in", body)
}

pub(super) fn problem(api: &Api, status: StatusCode, message: &str) -> Markup {
    let body = html! { p.err { (status.as_u16()) ": " (message) } };
    layout(api, "Problem", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_escapes_and_shows_invisible_controls() {
        let html = log_text("<b>a</b> \u{202E}gnp.exe\u{202C}\x1b[31m", None).into_string();
        assert_eq!(
            html,
            "<bdi class=\"log\">&lt;b&gt;a&lt;/b&gt; \
             <span class=\"ctl\" title=\"invisible control character\">⟨U+202E⟩</span>gnp.exe\
             <span class=\"ctl\" title=\"invisible control character\">⟨U+202C⟩</span>\
             <span class=\"ctl\" title=\"invisible control character\">⟨U+001B⟩</span>[31m</bdi>"
        );
        let cut = log_text("ééé", Some(2)).into_string();
        assert!(
            cut.contains(">éé</bdi>") && cut.contains("(3 characters)"),
            "{cut}"
        );
    }
}
