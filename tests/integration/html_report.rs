//! The HTML report of the demo, opened in a real browser: headless Chromium driven over its
//! remote debugging protocol (CDP) lists every network request the page makes and every
//! console message, runs the page's own script and takes a screenshot.
//!
//! Checked: one grid row per lab domain with the status the JSON output gives it; no
//! console error, no exception, no request but the file itself; the inline script runs
//! under the page's Content-Security-Policy (it shows the filter and sorts the grid). Two
//! altered copies prove the checks can fail: a script one byte off its hash is refused with
//! an error, and an image from a local listener (in a copy without the policy) shows up as
//! a request. The screenshot goes to `target/tmp/html-report/demo.png`.
//!
//! Chromium is Debian's `chromium` (installed by `.ci/run`). When it is missing the test
//! says why on stderr and passes; under CI (`CI` set) it fails instead.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cannot_run;
use base64::Engine as _;
use mxprobe_core::output::Tag;
use mxprobe_core::result::DomainResult;
use scraper::{Html, Selector};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// What makes the Chromium test run: the package `.ci/run` installs.
const REMEDY: &str = "install Debian's chromium, as .ci/run does";

/// The longest Chromium may take to start, load the page or answer one command.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .chain([PathBuf::from("/usr/bin/chromium")])
        .find(|p| p.is_file())
}

/// A headless Chromium of this test, stopped (and waited for) when dropped.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Every event received, in order.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(binary: &Path) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-sync",
                // Nothing can leave the machine even if the page tried: no name resolves,
                // and every request but to 127.0.0.1 goes to a proxy at a closed loopback
                // port.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
                "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=127.0.0.1",
                "--window-size=1400,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes its port and the browser's path once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.trim().parse::<u16>().unwrap(), path.trim().to_owned());
                }
            }
            assert!(
                started.elapsed() < BROWSER_TIMEOUT,
                "chromium wrote no DevToolsActivePort within {BROWSER_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(BROWSER_TIMEOUT)).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .expect("the debugging protocol's WebSocket");
        Self {
            child,
            ws,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        }
    }

    /// Sends a command (to a page when `session` is given) and returns its result; events
    /// that arrive meanwhile are kept.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .expect("sending a command");
        loop {
            let m = self.receive();
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
            self.events.push(m);
        }
    }

    fn receive(&mut self) -> Value {
        loop {
            match self.ws.read().expect("reading from chromium") {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(_) => panic!("chromium closed the connection"),
                _ => {}
            }
        }
    }

    /// Waits for an event of `method` on `session`.
    fn wait_for(&mut self, session: &str, method: &str) {
        let started = Instant::now();
        while !self
            .events
            .iter()
            .any(|e| e["method"] == method && e["sessionId"] == session)
        {
            assert!(started.elapsed() < BROWSER_TIMEOUT, "no {method}");
            let m = self.receive();
            self.events.push(m);
        }
    }

    /// Opens `url` in a new page with the network, console and log reported; returns the
    /// page's session once the page has loaded.
    fn open(&mut self, url: &str) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let session = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )["sessionId"]
            .as_str()
            .unwrap()
            .to_owned();
        let s = Some(session.as_str());
        for domain in ["Network", "Runtime", "Log", "Page"] {
            self.call(s, &format!("{domain}.enable"), json!({}));
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 2000, "deviceScaleFactor": 1, "mobile": false}),
        );
        self.call(s, "Page.navigate", json!({"url": url}));
        self.wait_for(&session, "Page.loadEventFired");
        // A round trip after the load, so that what the page did while loading is in.
        self.eval(&session, "document.readyState");
        session
    }

    /// Evaluates `expression` in the page; its value (JSON-compatible).
    fn eval(&mut self, session: &str, expression: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// The URLs the page requested.
    fn requests(&self, session: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["sessionId"] == session && e["method"] == "Network.requestWillBeSent")
            .map(|e| e["params"]["request"]["url"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Console errors and warnings, exceptions and log entries at warning or error.
    fn errors(&self, session: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["sessionId"] == session)
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.consoleAPICalled"
                        if ["error", "warning", "assert"].contains(&p["type"].as_str()?) =>
                    {
                        Some(format!("console {}: {}", p["type"], p["args"]))
                    }
                    "Runtime.exceptionThrown" => {
                        Some(format!("exception: {}", p["exceptionDetails"]))
                    }
                    "Log.entryAdded"
                        if ["error", "warning"].contains(&p["entry"]["level"].as_str()?) =>
                    {
                        Some(format!(
                            "log {}: {}",
                            p["entry"]["level"], p["entry"]["text"]
                        ))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.send(Message::text(
            json!({"id": 0, "method": "Browser.close"}).to_string(),
        ));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The demo run with `--html` (and JSON on standard output): the page and the statuses
/// the JSON gives each domain, in the words of the grid's `data-status`.
fn demo_report(dir: &Path) -> (PathBuf, Vec<(String, String)>) {
    let html = dir.join("demo.html");
    let out = Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(["demo", "--format", "json", "--html"])
        .arg(&html)
        .env("NO_COLOR", "1")
        .output()
        .expect("the mxprobe binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results: Vec<DomainResult> = serde_json::from_value(doc["domains"].clone()).unwrap();
    let statuses = results
        .iter()
        .map(|r| {
            (
                r.verdict.domain.to_string(),
                Tag::of(r).word().to_lowercase(),
            )
        })
        .collect();
    (html, statuses)
}

#[test]
fn the_demo_report_in_headless_chromium() {
    let test = "the_demo_report_in_headless_chromium";
    let Some(binary) = chromium() else {
        cannot_run(test, "no chromium in PATH or at /usr/bin/chromium", REMEDY);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (html_path, mut want) = demo_report(dir.path());
    let lab_domains = mxprobe_lab::scenario::Scenario::embedded()
        .expect("the embedded lab scenario")
        .domains
        .len();
    assert_eq!(want.len(), lab_domains, "one result per lab domain");
    let page = std::fs::read_to_string(&html_path).unwrap();

    // The parser's view first: well-formed, one row per domain.
    let doc = Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    let rows = Selector::parse("#grid tbody tr").unwrap();
    assert_eq!(doc.select(&rows).count(), want.len());

    let mut browser = Browser::start(&binary);
    let url = file_url(&html_path);
    let s = browser.open(&url);
    let errors = browser.errors(&s);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert_eq!(
        browser.requests(&s),
        std::slice::from_ref(&url),
        "requests beyond the file itself"
    );

    // One grid row per domain, with the JSON's status.
    let got: Vec<(String, String)> = serde_json::from_value(browser.eval(
        &s,
        "Array.from(document.querySelectorAll('#grid tbody tr'))\
         .map(r => [r.cells[0].textContent, r.dataset.status])",
    ))
    .unwrap();
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
    // Failing domains first.
    let rank = |s: &str| {
        ["fail", "inconclusive", "warn", "ok"]
            .iter()
            .position(|x| *x == s)
    };
    assert!(
        got.windows(2).all(|w| rank(&w[0].1) <= rank(&w[1].1)),
        "{got:?}"
    );
    // The grid stays light, for 10,000 rows to open quickly (docs/benchmarks.md): at most
    // 18 elements per row (the row, its 9 cells, the domain's link, one screen-reader word
    // per concern), the symbols drawn by the style sheet, no text repeated in attributes.
    let per_row = browser.eval(
        &s,
        "document.querySelectorAll('#grid tbody tr, #grid tbody tr *').length / \
         document.querySelectorAll('#grid tbody tr').length",
    );
    assert!(
        per_row.as_f64().unwrap() <= 18.0,
        "elements per grid row: {per_row}"
    );
    let attributes = browser.eval(
        &s,
        "Array.from(document.querySelectorAll('#grid tbody *')).flatMap(e => e.getAttributeNames()) \
         .filter(a => !['class', 'href', 'data-status'].includes(a))",
    );
    assert_eq!(attributes, json!([]), "attributes in the grid's rows");
    let symbol = browser.eval(
        &s,
        "getComputedStyle(document.querySelector('#grid tbody td.s-fail'), '::before').content",
    );
    assert!(
        symbol.as_str().unwrap().contains('\u{2717}'),
        "a failing cell's symbol: {symbol}"
    );
    // The TLS-RPT cell says whether reports reach each destination.
    let tlsrpt = browser.eval(
        &s,
        "Array.from(document.querySelectorAll('#grid tbody tr')) \
         .find(r => r.cells[0].textContent === 'rua-healthy.test').lastElementChild.textContent",
    );
    assert!(
        tlsrpt.as_str().unwrap().contains("(deliverable over TLS)"),
        "{tlsrpt}"
    );
    // The counts in the header agree.
    let fails = want.iter().filter(|(_, s)| s == "fail").count();
    let count = browser.eval(
        &s,
        "document.querySelector('[data-count=fail]').textContent",
    );
    assert!(
        count.as_str().unwrap().contains(&format!("{fails} FAIL")),
        "{count}"
    );
    // The timeline was drawn from certificates (the lab's MX and policy hosts).
    let bars = browser.eval(
        &s,
        "document.querySelectorAll('svg.timeline rect.bar').length",
    );
    assert!(bars.as_u64().unwrap() > 10, "{bars}");

    // The script ran under the policy: the controls are shown, filtering and sorting work.
    let shown = browser.eval(&s, "document.getElementById('shown').textContent");
    assert_eq!(
        shown,
        json!(format!("{0} of {0} domains shown", want.len()))
    );
    let dane = want.iter().filter(|(d, _)| d.contains("dane")).count();
    let visible = browser.eval(
        &s,
        "(() => { const f = document.getElementById('filter'); f.value = 'dane'; \
         f.dispatchEvent(new Event('input')); \
         return Array.from(document.querySelectorAll('#grid tbody tr')).filter(r => !r.hidden).length; })()",
    );
    assert_eq!(visible, json!(dane));
    browser.eval(
        &s,
        "(() => { const f = document.getElementById('filter'); f.value = ''; \
         f.dispatchEvent(new Event('input')); \
         document.querySelector('#grid thead th button').click(); })()",
    );
    let order: Vec<String> = serde_json::from_value(browser.eval(
        &s,
        "Array.from(document.querySelectorAll('#grid tbody tr')).map(r => r.cells[0].textContent)",
    ))
    .unwrap();
    let mut by_name = order.clone();
    by_name.sort();
    assert_eq!(order, by_name, "sorted by the Domain column");
    assert!(browser.errors(&s).is_empty(), "{:#?}", browser.errors(&s));

    // The screenshot, for a person to look at (the grid as opened, failing first).
    browser.call(Some(&s), "Page.reload", json!({}));
    browser.events.clear();
    browser.wait_for(&s, "Page.loadEventFired");
    let shot = browser.call(Some(&s), "Page.captureScreenshot", json!({"format": "png"}));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join("demo.png"), &png).unwrap();

    // The checks can fail: a script one byte off its hash is refused, with an error.
    let tampered = dir.path().join("tampered.html");
    std::fs::write(
        &tampered,
        page.replacen("\"use strict\";", "\"use strict\"; ", 1),
    )
    .unwrap();
    let t = browser.open(&file_url(&tampered));
    assert!(
        !browser.errors(&t).is_empty(),
        "a script off its hash runs silently"
    );
    assert_eq!(
        browser.eval(&t, "document.getElementById('controls').hidden"),
        json!(true)
    );
    // … and a request the page makes is seen: an image from a listener of this test, in a
    // copy without the policy.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let image = format!(
        "http://127.0.0.1:{}/probe.png",
        listener.local_addr().unwrap().port()
    );
    let csp_start = page
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let csp_end = csp_start + page[csp_start..].find('>').unwrap() + 1;
    let leaky = format!(
        "{}{}",
        &page[..csp_start],
        &page[csp_end..].replacen(
            "<main>",
            &format!("<main><img src=\"{image}\" alt=\"\">"),
            1
        )
    );
    let leaky_path = dir.path().join("leaky.html");
    std::fs::write(&leaky_path, leaky).unwrap();
    // Answers the image request with a 404 if it reaches the listener (Chromium may block
    // a file page's request to a local address before it is sent), so that the page
    // finishes loading either way.
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut line = String::new();
                    let _ = BufReader::new(&stream).read_line(&mut line);
                    let _ = (&stream).write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let l = browser.open(&file_url(&leaky_path));
    assert!(
        browser.requests(&l).contains(&image),
        "{:?}",
        browser.requests(&l)
    );
}
