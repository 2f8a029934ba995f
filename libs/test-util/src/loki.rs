//! A fake Loki: `GET /loki/api/v1/query_range` with Loki's semantics for log queries, `/ready`,
//! and failures on demand. It is a stand-in for tests and the local main job, not Loki: it
//! understands only a stream selector of `=`, `!=`, `=~` and `!~` matchers (with an optional
//! line filter `|~ "regex"` or `|= "text"`), and serves only what it was given.
//!
//! Semantics kept exactly (Loki's HTTP API reference): `start` is inclusive and `end`
//! exclusive; both accept nanoseconds, seconds, float seconds or RFC 3339, told apart as Loki
//! does; `limit` (default 100) counts
//! lines across all streams, taken from the `direction` end (`backward` by default) of the
//! merged timeline; a limit above `max_entries_limit_per_query` (5000) is refused with 400;
//! streams come back as separate results, each with its values ordered by the direction; lines
//! may be added at any time with any timestamp, as late ingestion does.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use regex::Regex;
use tokio::sync::watch;

/// Loki's default `max_entries_limit_per_query`.
pub const MAX_ENTRIES: usize = 5000;

type Labels = BTreeMap<String, String>;

#[derive(Debug, Default)]
struct State {
    /// Every line: (timestamp, labels, line), in insertion order.
    lines: Vec<(i64, Labels, String)>,
    /// Answers to give instead of the next queries: status codes.
    failures: Vec<u16>,
    /// Each query_range request's parameters and headers, as received.
    requests: Vec<Recorded>,
    down: bool,
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub params: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
}

/// A running fake Loki; dropping it stops the server.
#[derive(Debug)]
pub struct FakeLoki {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    stop: Option<watch::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeLoki {
    /// Starts an empty server on a loopback port, on its own thread.
    pub fn start() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = watch::channel(());
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("fake-loki".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = stopped.changed() => return,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let state = Arc::clone(&shared);
                                tokio::spawn(async move {
                                    let service = service_fn(move |req| {
                                        let state = Arc::clone(&state);
                                        async move { Ok::<_, Infallible>(handle(&state, &req)) }
                                    });
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })?;
        Ok(Self {
            state,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a line to the stream with `labels`, at `ts_ns`, whenever: an old timestamp is a
    /// line ingested late.
    pub fn push(&self, labels: &[(&str, &str)], ts_ns: i64, line: &str) {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.state().lines.push((ts_ns, labels, line.to_owned()));
    }

    /// Adds lines of the generated corpus.
    #[cfg(feature = "logs")]
    pub fn push_logs(&self, lines: &[crate::logs::LogLine]) {
        let mut state = self.state();
        for l in lines {
            state.lines.push((
                l.timestamp_ns,
                l.labels.iter().cloned().collect(),
                l.line.clone(),
            ));
        }
    }

    /// Makes the next queries fail with these statuses, in order; `0` answers normally.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state().failures.extend_from_slice(statuses);
    }

    /// Makes `/ready` and every query answer 503 until called again with `false`.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// The query_range requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// How many lines it holds.
    pub fn len(&self) -> usize {
        self.state().lines.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for FakeLoki {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn handle(state: &Mutex<State>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    match req.uri().path() {
        "/ready" if state.down => reply(StatusCode::SERVICE_UNAVAILABLE, "Ingester not ready"),
        "/ready" => reply(StatusCode::OK, "ready\n"),
        "/loki/api/v1/query_range" => {
            let params: BTreeMap<String, String> =
                form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            state.requests.push(Recorded {
                params: params.clone(),
                headers,
            });
            if state.down {
                return reply(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            }
            let injected = if state.failures.is_empty() {
                0
            } else {
                state.failures.remove(0)
            };
            if injected != 0 {
                let status = injected;
                return reply(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "injected failure",
                );
            }
            match query_range(&state.lines, &params) {
                Ok(body) => {
                    let mut r = reply(StatusCode::OK, body);
                    r.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    r
                }
                Err(message) => reply(StatusCode::BAD_REQUEST, message),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// Loki's time parameters, read as Loki's `loghttp` does: with a `.`, float seconds (the
/// fraction rounded to milliseconds); an integer of up to 10 digits, seconds; a longer one,
/// nanoseconds; else RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {text:?} to a valid timestamp");
    if text.contains('.')
        && let Ok(t) = text.parse::<f64>()
    {
        let (secs, frac) = (t.trunc(), t.fract());
        let frac = (frac * 1000.0).round() / 1000.0;
        return Ok(secs as i64 * 1_000_000_000 + (frac * 1e9) as i64);
    }
    match text.parse::<i64>() {
        Ok(n) if text.len() <= 10 => Ok(n * 1_000_000_000),
        Ok(n) => Ok(n),
        Err(_) => text
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_nanosecond() as i64)
            .map_err(|_| bad()),
    }
}

fn query_range(
    lines: &[(i64, Labels, String)],
    p: &BTreeMap<String, String>,
) -> Result<String, String> {
    let query = p.get("query").ok_or("query must be supplied")?;
    let selector = Selector::parse(query)?;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let end = p
        .get("end")
        .map(|t| parse_time(t))
        .transpose()?
        .unwrap_or(now);
    let start = p
        .get("start")
        .map(|t| parse_time(t))
        .transpose()?
        .unwrap_or(end - 3_600_000_000_000);
    let limit: usize = p
        .get("limit")
        .map(|l| l.parse().map_err(|_| format!("invalid limit {l:?}")))
        .transpose()?
        .unwrap_or(100);
    if limit > MAX_ENTRIES {
        return Err(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {MAX_ENTRIES})"
        ));
    }
    let forward = match p.get("direction").map(String::as_str) {
        None | Some("backward") => false,
        Some("forward") => true,
        Some(other) => return Err(format!("invalid direction {other:?}")),
    };
    let mut hits: Vec<&(i64, Labels, String)> = lines
        .iter()
        .filter(|(ts, labels, line)| *ts >= start && *ts < end && selector.matches(labels, line))
        .collect();
    // Loki's merge has no defined order among equal timestamps; order them by stream, then
    // by arrival, which a client must not rely on either.
    hits.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    if !forward {
        hits.reverse();
    }
    hits.truncate(limit);
    let mut streams: BTreeMap<&Labels, Vec<[String; 2]>> = BTreeMap::new();
    for (ts, labels, line) in hits {
        streams
            .entry(labels)
            .or_default()
            .push([ts.to_string(), line.clone()]);
    }
    let result: Vec<serde_json::Value> = streams
        .into_iter()
        .map(|(labels, values)| serde_json::json!({"stream": labels, "values": values}))
        .collect();
    Ok(serde_json::json!({
        "status": "success",
        "data": {"resultType": "streams", "result": result, "stats": {}}
    })
    .to_string())
}

/// `{a="x", b=~"y.*"} |~ "re"`: the subset of LogQL the fake understands.
struct Selector {
    matchers: Vec<(String, String, Regex)>,
    filter: Option<Regex>,
}

impl Selector {
    fn parse(query: &str) -> Result<Self, String> {
        let bad = || format!("parse error: unsupported query {query:?}");
        let q = query.trim();
        let close = q.find('}').ok_or_else(bad)?;
        let inner = q.strip_prefix('{').ok_or_else(bad)?[..close - 1].trim();
        let mut matchers = Vec::new();
        let mut rest = inner;
        while !rest.is_empty() {
            let op_at = rest.find(['=', '!']).ok_or_else(bad)?;
            let name = rest[..op_at].trim().to_owned();
            let op_len = if rest[op_at..].starts_with("=~")
                || rest[op_at..].starts_with("!~")
                || rest[op_at..].starts_with("!=")
            {
                2
            } else {
                1
            };
            let op = rest[op_at..op_at + op_len].to_owned();
            let after = rest[op_at + op_len..].trim_start();
            let (value, tail) = quoted(after).ok_or_else(bad)?;
            let re = match op.as_str() {
                "=~" | "!~" => Regex::new(&format!("^(?:{value})$")).map_err(|e| e.to_string())?,
                _ => Regex::new(&format!("^{}$", regex::escape(&value)))
                    .map_err(|e| e.to_string())?,
            };
            matchers.push((name, op, re));
            rest = tail.trim_start().trim_start_matches(',').trim_start();
        }
        let pipeline = q[close + 1..].trim();
        let filter = if pipeline.is_empty() {
            None
        } else if let Some(f) = pipeline.strip_prefix("|~") {
            let (v, _) = quoted(f.trim_start()).ok_or_else(bad)?;
            Some(Regex::new(&v).map_err(|e| e.to_string())?)
        } else if let Some(f) = pipeline.strip_prefix("|=") {
            let (v, _) = quoted(f.trim_start()).ok_or_else(bad)?;
            Some(Regex::new(&regex::escape(&v)).map_err(|e| e.to_string())?)
        } else {
            return Err(bad());
        };
        Ok(Self { matchers, filter })
    }

    fn matches(&self, labels: &Labels, line: &str) -> bool {
        self.matchers.iter().all(|(name, op, re)| {
            let v = labels.get(name).map_or("", String::as_str);
            re.is_match(v) == op.starts_with('=')
        }) && self.filter.as_ref().is_none_or(|f| f.is_match(line))
    }
}

/// A double-quoted LogQL string (Go escapes) or a backquoted raw one, and what follows.
fn quoted(s: &str) -> Option<(String, &str)> {
    if let Some(raw) = s.strip_prefix('`') {
        let end = raw.find('`')?;
        return Some((raw[..end].to_owned(), &raw[end + 1..]));
    }
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    None
}
