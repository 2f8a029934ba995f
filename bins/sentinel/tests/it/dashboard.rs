//! The dashboard in a real browser: Debian's Chromium, headless, driven through ChromeDriver.
//! The store holds hostile log lines (script tags, an attribute break-out, right-to-left
//! overrides, a 10 KB line); every page must show them as text, run no script of theirs and
//! raise no alert; the sign-in form must let the browser in; a live update must reach the
//! overview; screenshots of the overview and an error's page are kept as test artifacts.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_test_util::binary::{Running, http_get};
use bulwark_test_util::loki::FakeLoki;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::EXE;

const TOKEN: &str = "browser-t0ken";

/// Lines an attacker could get into any pod's log.
fn hostile() -> Vec<(String, String)> {
    vec![
        (
            "evil-1".into(),
            "error <script>document.title='pwned';alert(1)</script> in handler".into(),
        ),
        (
            "evil-2".into(),
            "error \"><img src=x onerror=\"document.title='pwned';alert(2)\"> while parsing".into(),
        ),
        (
            "evil-3".into(),
            "error user \u{202E}gnp.exe\u{202C} uploaded".into(),
        ),
        (
            "evil-4".into(),
            format!("error blob {}", "A".repeat(10 * 1024)),
        ),
    ]
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// ChromeDriver on a free loopback port, killed on drop.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; the test command installs it)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            // The machine's network is closed: without these, Chromium keeps dialling out.
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display())],
        }),
    );
    // An alert left open must fail the next command, not be dismissed silently.
    caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a ChromeDriver session")
}

/// Fails if the page raised an alert, let a hostile script run, or holds an element the log
/// lines tried to inject.
async fn assert_inert(c: &Client, page: &str) {
    if let Ok(text) = c.get_alert_text().await {
        panic!("{page}: an alert is open: {text:?}");
    }
    let title = c.execute("return document.title", vec![]).await.unwrap();
    assert_ne!(title, json!("pwned"), "{page}: a hostile script ran");
    let injected = c
        .execute(
            "return document.querySelectorAll('img, script:not([src]), [onerror]').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!(0), "{page}: injected elements");
}

/// The text of the first element `locator` finds.
async fn text(c: &Client, locator: Locator<'_>) -> String {
    c.find(locator).await.unwrap().text().await.unwrap()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sentinel-dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_show_hostile_lines_as_text_and_update_live() {
    let loki = FakeLoki::start().unwrap();
    let at = now_ns();
    for (i, (pod, line)) in hostile().iter().enumerate() {
        loki.push(
            &[
                ("namespace", "shop"),
                ("pod", pod.as_str()),
                ("container", "app"),
            ],
            at + i as i64,
            line,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "loki:\n  url: {}\n  query: '{{namespace=~\".+\"}}'\n  poll_interval: 1s\n  lookback: 2m\nweb:\n  listen: 127.0.0.1:0\n  base_path: /kube-sentinel\n  auth:\n    token_file: {}\nremediation:\n  enabled: false\n",
            loki.url(),
            dir.path().join("token").display()
        ),
    )
    .unwrap();
    let mut bin =
        Running::start(Path::new(EXE), &["--config", cfg.to_str().unwrap()], &[]).unwrap();
    let addr: SocketAddr = bin.health_addr().unwrap();
    // Reads are closed: the API refuses, and the dashboard sends the browser to sign in.
    assert_eq!(http_get(addr, "/kube-sentinel/api/stats").unwrap().0, 401);
    let base = format!("http://{addr}/kube-sentinel");

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    c.goto(&format!("{base}/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    let form = c.form(Locator::Css("form.login")).await.unwrap();
    form.set_by_name("token", TOKEN).await.unwrap();
    form.submit().await.unwrap();
    // Signed in (an HttpOnly cookie); wait for ingestion to have stored the lines.
    let start = Instant::now();
    loop {
        c.goto(&format!("{base}/errors")).await.unwrap();
        let rows = c.find_all(Locator::Css("main tbody tr")).await.unwrap();
        if rows.len() >= 4 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "errors never showed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let cookie_visible = c.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(cookie_visible, json!(""), "the session cookie is HttpOnly");

    for page in ["/", "/errors", "/rules", "/remediations", "/settings"] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        assert_inert(&c, page).await;
    }
    // The errors list shows each line as text, the long one cut.
    c.goto(&format!("{base}/errors")).await.unwrap();
    let body = text(&c, Locator::Css("main")).await;
    assert!(
        body.contains("<script>document.title='pwned';alert(1)</script>"),
        "{body}"
    );
    assert!(body.contains("\"><img src=x onerror="), "{body}");
    assert!(
        body.contains("user ⟨U+202E⟩gnp.exe⟨U+202C⟩ uploaded"),
        "{body}"
    );
    assert!(
        body.contains("(500 characters)"),
        "{}",
        &body[body.find("blob").unwrap_or(0)..]
            .chars()
            .take(600)
            .collect::<String>()
    );
    // Every error's own page: the whole line, as text, inert.
    let links: Vec<String> = {
        let mut v = Vec::new();
        for a in c.find_all(Locator::Css("main tbody a")).await.unwrap() {
            v.push(a.attr("href").await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(links.len(), 4, "{links:?}");
    let mut shot_detail = None;
    for href in &links {
        c.goto(&format!("http://{addr}{href}")).await.unwrap();
        assert_inert(&c, href).await;
        let message = text(&c, Locator::Css("main pre bdi")).await;
        let wanted = hostile().into_iter().find(|(_, l)| {
            // The page shows the message after extraction ("error " gone), invisible
            // controls by their code points.
            let shown = l[6..]
                .replace('\u{202E}', "⟨U+202E⟩")
                .replace('\u{202C}', "⟨U+202C⟩");
            message.starts_with(&shown.chars().take(30).collect::<String>())
        });
        assert!(wanted.is_some(), "{href}: {message:.200}");
        if message.contains("<script>") {
            shot_detail = Some(c.screenshot().await.unwrap());
        }
    }

    // A live update reaches the overview without a reload.
    c.goto(&format!("{base}/")).await.unwrap();
    let live = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#live.on"))
        .await
        .unwrap();
    assert_eq!(live.text().await.unwrap(), "live");
    let before = text(&c, Locator::Css("[data-stat='occurrences']")).await;
    loki.push(
        &[
            ("namespace", "shop"),
            ("pod", "evil-5"),
            ("container", "app"),
        ],
        now_ns(),
        "error arrived while watching",
    );
    let start = Instant::now();
    loop {
        let updates = text(&c, Locator::Id("updates")).await;
        let now = text(&c, Locator::Css("[data-stat='occurrences']")).await;
        if updates != "0" && now != before {
            assert_eq!(now, "5", "the counters follow the store");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no live update: {updates} {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_inert(&c, "/ after the live update").await;
    let shot_overview = c.screenshot().await.unwrap();

    let out = artifacts();
    std::fs::write(out.join("overview.png"), &shot_overview).unwrap();
    std::fs::write(
        out.join("error-detail.png"),
        shot_detail.expect("a detail page with the script line"),
    )
    .unwrap();
    for name in ["overview.png", "error-detail.png"] {
        let png = std::fs::read(out.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }
    println!("screenshots: {}", out.display());
    let stats: Value = serde_json::from_str(
        &bulwark_test_util::binary::http_get(addr, "/kube-sentinel/api/stats")
            .unwrap()
            .1,
    )
    .unwrap_or(Value::Null);
    assert!(
        stats.get("error").is_some(),
        "still closed to the anonymous: {stats}"
    );
    c.close().await.unwrap();
    bin.terminate(Duration::from_secs(5)).unwrap();
}
