//! Real Chromium, headless, driven over WebDriver by `chromedriver`: one browser (its own
//! chromedriver, port and fresh profile) per `Browser`, torn down by a Drop guard even
//! when a test panics.
//!
//! The WebDriver protocol is JSON over HTTP; this speaks the few commands the console
//! tests need through `reqwest` (already a dependency), so no TLS stack or second HTTP
//! client is pulled into the workspace.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key under which WebDriver names an element (W3C).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How often wait-for helpers look again.
const POLL: Duration = Duration::from_millis(50);

/// How long a navigation may take before the WebDriver command fails.
pub const PAGE_LOAD: Duration = Duration::from_secs(30);

/// WebDriver's name for the Enter key.
pub const ENTER: &str = "\u{E007}";

/// WebDriver's name for the Escape key.
pub const ESCAPE: &str = "\u{E00C}";

fn chromium_binary() -> String {
    std::env::var("SIGNOFF_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver_binary() -> String {
    std::env::var("SIGNOFF_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// Where screenshots go: `target/screenshots/` at the workspace root.
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// A WebDriver error answer (`{"value": {"error": ..., "message": ...}}`).
#[derive(Debug, Clone)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// The chromedriver process and the profile directory of the Chromium it starts. Dropping
/// it kills chromedriver and every process using the profile, then removes the profile.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    fn start() -> Driver {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "signoff-chromium-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&profile).expect("create the Chromium profile directory");
        // chromedriver picks a free port itself with --port=0 and names it; older ones that
        // do not get a port found here (bound, released, retried if someone took it).
        let mut last_failure = String::new();
        for attempt in 0..5 {
            let port = if attempt == 0 { 0 } else { free_port() };
            match spawn_chromedriver(port) {
                Ok((child, port)) => {
                    let driver = Driver { child, port, profile };
                    driver.wait_ready();
                    return driver;
                }
                Err(failure) => last_failure = failure,
            }
        }
        let _ = std::fs::remove_dir_all(&profile);
        panic!("chromedriver did not start: {last_failure}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `/status` until chromedriver says it is ready.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = raw_http(self.port, "GET", "/status", Duration::from_secs(2));
            let ready = answer.is_some_and(|(status, body)| {
                status == 200
                    && serde_json::from_str::<Value>(&body).is_ok_and(|v| v["value"]["ready"] == Value::Bool(true))
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver on port {} never became ready",
                self.port
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver, then any Chromium process still using this profile. (They stay in
        // the test's process group, so an interrupted run (Ctrl-C) takes them along too.)
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_processes_using(&self.profile);
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Any process still running with this profile (Chromium and its helpers), by pid.
fn kill_processes_using(profile: &Path) {
    let marker = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()) {
            let _ = Command::new("kill").args(["-KILL", pid]).stderr(Stdio::null()).status();
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Starts chromedriver on `port` (0: its choice) and returns it with the port it serves.
fn spawn_chromedriver(port: u16) -> Result<(Child, u16), String> {
    let mut child = Command::new(chromedriver_binary())
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}); `just test-deps` installs it",
                chromedriver_binary()
            )
        })?;
    let stdout = child.stdout.take().expect("chromedriver stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Reads the start-up lines, then keeps draining so chromedriver never blocks on a pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let fail = |mut child: Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(why)
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    return match digits.parse::<u16>() {
                        Ok(actual) if actual != 0 => Ok((child, actual)),
                        _ => fail(child, format!("unreadable port in {line:?}")),
                    };
                }
                if line.contains("started successfully") && port != 0 {
                    return Ok((child, port));
                }
                if line.contains("started successfully") {
                    return fail(child, "this chromedriver does not name the port it chose".into());
                }
                seen.push(line);
            }
            Err(_) => return fail(child, format!("no start-up line within 20 s; output: {seen:?}")),
        }
    }
}

/// A minimal blocking HTTP/1.1 call to chromedriver (used from Drop and readiness checks,
/// where no async runtime may be used). Returns (status, body).
fn raw_http(port: u16, method: &str, path: &str, timeout: Duration) -> Option<(u16, String)> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// One headless Chromium with its own chromedriver, for the Signoff server at `base_url`.
pub struct Browser {
    /// The Signoff server (no trailing slash).
    pub base_url: String,
    /// `http://127.0.0.1:PORT/session/ID`.
    session_url: String,
    session_id: String,
    http: reqwest::Client,
    driver: Driver,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session makes chromedriver quit Chromium cleanly; the Driver's own
        // Drop then kills whatever is left.
        let _ = raw_http(
            self.driver.port,
            "DELETE",
            &format!("/session/{}", self.session_id),
            Duration::from_secs(5),
        );
    }
}

/// An element on the current page.
#[derive(Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    pub id: String,
    /// How it was found, for messages.
    pub selector: String,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium for the server at `base_url`.
    pub async fn start(base_url: &str) -> Browser {
        let driver = tokio::task::spawn_blocking(Driver::start)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("WebDriver client");
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--password-store=basic",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", driver.profile.display())])
        // Extra switches when debugging, e.g. SIGNOFF_CHROMIUM_ARGS="--disable-features=X".
        .chain(
            std::env::var("SIGNOFF_CHROMIUM_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
        .collect::<Vec<_>>();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    // A page that cannot load in this time is a failure, not a 5-minute wait.
                    "timeouts": {"pageLoad": PAGE_LOAD.as_millis() as u64, "script": 30_000, "implicit": 0},
                    // An alert must stay open so a test can see it (see `alert_text`).
                    "unhandledPromptBehavior": "ignore",
                    "goog:chromeOptions": {
                        "binary": chromium_binary(),
                        "args": args,
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        });
        let response = http
            .post(format!("{}/session", driver.url()))
            .json(&capabilities)
            .send()
            .await
            .expect("ask chromedriver for a session");
        let body: Value = response.json().await.expect("session answer is JSON");
        let session_id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {body}"))
            .to_string();
        let session_url = format!("{}/session/{session_id}", driver.url());
        Browser {
            base_url: base_url.trim_end_matches('/').to_string(),
            session_url,
            session_id,
            http,
            driver,
        }
    }

    /// One WebDriver command; `Err` when WebDriver answers with an error.
    pub async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let url = format!("{}{path}", self.session_url);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.map_err(|e| WdError {
            error: "transport".into(),
            message: format!("{method} {path}: {e}"),
        })?;
        let body: Value = response.json().await.map_err(|e| WdError {
            error: "transport".into(),
            message: format!("{method} {path}: unreadable answer: {e}"),
        })?;
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        match value.get("error").and_then(Value::as_str) {
            Some(error) => Err(WdError {
                error: error.to_string(),
                message: value["message"].as_str().unwrap_or_default().to_string(),
            }),
            None => Ok(value),
        }
    }

    async fn must(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.command(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"))
    }

    /// `path` on the Signoff server, or any absolute URL.
    pub fn url(&self, path: &str) -> String {
        if path.contains("://") || path.starts_with("data:") {
            path.to_string()
        } else {
            format!("{}{path}", self.base_url)
        }
    }

    /// Navigates and waits for the page to load (at most [`PAGE_LOAD`]).
    pub async fn goto(&self, path: &str) {
        if let Err(e) = self.try_goto(path).await {
            panic!("loading {path}: {e}");
        }
    }

    /// Navigates; `Err` when the page did not load in time (`timeout`) or at all.
    pub async fn try_goto(&self, path: &str) -> Result<(), WdError> {
        let url = self.url(path);
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(|_| ())
    }

    /// Sets how long navigations may take from now on.
    pub async fn set_page_load_timeout(&self, limit: Duration) {
        self.must(
            reqwest::Method::POST,
            "/timeouts",
            Some(json!({"pageLoad": limit.as_millis() as u64})),
        )
        .await;
    }

    /// Goes back in history (the page may come from the back/forward cache).
    pub async fn back(&self) {
        self.must(reqwest::Method::POST, "/back", None).await;
    }

    pub async fn current_url(&self) -> String {
        self.must(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The current URL's path and query, e.g. `/requests/…?view=split`.
    pub async fn current_path(&self) -> String {
        let url = self.current_url().await;
        match reqwest::Url::parse(&url) {
            Ok(parsed) => match parsed.query() {
                Some(query) => format!("{}?{query}", parsed.path()),
                None => parsed.path().to_string(),
            },
            Err(_) => url,
        }
    }

    pub async fn title(&self) -> String {
        self.must(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn reload(&self) {
        self.must(reqwest::Method::POST, "/refresh", None).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page, returning its
    /// value. WebDriver scripts are not subject to the page's CSP.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.must(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The HTTP status of the page now shown (Navigation Timing `responseStatus`).
    pub async fn page_status(&self) -> u16 {
        let status = self
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus : 0;",
                vec![],
            )
            .await;
        status.as_u64().unwrap_or(0) as u16
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn page_text(&self) -> String {
        self.execute("return document.body ? document.body.innerText : '';", vec![])
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as the browser now holds it.
    pub async fn page_source(&self) -> String {
        self.must(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn element_from(&self, value: &Value, selector: &str) -> Element<'_> {
        Element {
            browser: self,
            id: value[ELEMENT_KEY].as_str().expect("element reference").to_string(),
            selector: selector.to_string(),
        }
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        match self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
        {
            Ok(value) => Some(self.element_from(&value, css)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("finding {css:?}: {e}"),
        }
    }

    /// The first element matching `css`; panics (naming the page) when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        match self.try_find(css).await {
            Some(element) => element,
            None => panic!(
                "no element matches {css:?} on {} (title {:?})",
                self.current_url().await,
                self.title().await
            ),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let value = self
            .must(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        value
            .as_array()
            .map(|items| items.iter().map(|v| self.element_from(v, css)).collect())
            .unwrap_or_default()
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await;
    }

    /// Types `text` into the element matching `css` (after what it already holds).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await;
    }

    /// Presses keys on whatever has the focus (as a person would), one after the other.
    /// Use [`ENTER`] for Enter.
    pub async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.must(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
        let _ = self.command(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// The text of an open alert/confirm/prompt, if one is open.
    pub async fn alert_text(&self) -> Option<String> {
        match self.command(reqwest::Method::GET, "/alert/text", None).await {
            Ok(value) => Some(value.as_str().unwrap_or_default().to_string()),
            Err(e) if e.error == "no such alert" => None,
            Err(e) => panic!("asking for an alert: {e}"),
        }
    }

    /// The browser console's messages since the last call (level, text). A reader that
    /// cannot read fails the test: an empty list must mean an empty console.
    pub async fn console_messages(&self) -> Vec<(String, String)> {
        match self
            .command(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await
        {
            Ok(Value::Array(entries)) => entries
                .iter()
                .map(|e| {
                    (
                        e["level"].as_str().unwrap_or_default().to_string(),
                        e["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            Ok(other) => panic!("reading the browser console: not a list of entries: {other}"),
            Err(e) => panic!("reading the browser console: {e}"),
        }
    }

    /// Every console message up to now, proven complete: a deliberate `console.error` is
    /// written last and waited for (up to 20 s), so a reader that sees nothing fails.
    pub async fn console_messages_through_probe(&self) -> Vec<(String, String)> {
        let probe = format!("signoff-console-probe-{}", uuid::Uuid::now_v7().simple());
        self.execute("console.error(arguments[0]);", vec![json!(probe)]).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            seen.extend(self.console_messages().await);
            if let Some(at) = seen.iter().position(|(_, text)| text.contains(&probe)) {
                seen.remove(at);
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "the console reader never saw the deliberate console.error {probe:?}; it read {seen:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The browser's cookies for the current page as a `Cookie` header value (HttpOnly
    /// ones included), to look at the same pages with a plain HTTP client.
    pub async fn cookie_header(&self) -> String {
        let cookies = self.must(reqwest::Method::GET, "/cookie", None).await;
        cookies
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|c| {
                        format!(
                            "{}={}",
                            c["name"].as_str().unwrap_or(""),
                            c["value"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png` and returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.must(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let path = dir.join(format!("{name}.png"));
        // Written whole then renamed: tests running at once never leave half a file.
        let partial = dir.join(format!(".{name}.{}.partial", uuid::Uuid::now_v7().simple()));
        std::fs::write(&partial, png).expect("write screenshot");
        std::fs::rename(&partial, &path).expect("move screenshot into place");
        path
    }

    /// Polls `probe` every 50 ms for up to `seconds` until it gives `Some`; panics naming
    /// `what` (and the page) otherwise.
    pub async fn wait_until<T>(&self, what: &str, seconds: u64, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if Instant::now() >= deadline {
                let url = self.current_url().await;
                let title = self.title().await;
                let text: String = self.page_text().await.chars().take(1500).collect();
                panic!("waited {seconds} s for {what}; on {url} (title {title:?}), the page reads:\n{text}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str, seconds: u64) -> Element<'_> {
        self.wait_until(&format!("an element matching {css:?}"), seconds, async || {
            self.try_find(css).await
        })
        .await
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str, seconds: u64) {
        self.wait_until(&format!("no element matching {css:?}"), seconds, async || {
            self.try_find(css).await.is_none().then_some(())
        })
        .await
    }

    /// Waits for `text` to be visible on the page.
    pub async fn wait_text(&self, text: &str, seconds: u64) {
        self.wait_until(&format!("the text {text:?}"), seconds, async || {
            self.page_text().await.contains(text).then_some(())
        })
        .await
    }

    /// Waits for `text` to leave the page.
    pub async fn wait_no_text(&self, text: &str, seconds: u64) {
        self.wait_until(&format!("the text {text:?} to go"), seconds, async || {
            (!self.page_text().await.contains(text)).then_some(())
        })
        .await
    }

    /// Waits for the URL's path (and query) to satisfy `accept`; returns it.
    pub async fn wait_path(&self, what: &str, seconds: u64, accept: impl Fn(&str) -> bool) -> String {
        self.wait_until(what, seconds, async || {
            let path = self.current_path().await;
            let ours = self.current_url().await.starts_with(&self.base_url);
            (ours && accept(&path)).then_some(path)
        })
        .await
    }

    /// Waits for the document title to satisfy `accept`; returns it.
    pub async fn wait_title(&self, what: &str, seconds: u64, accept: impl Fn(&str) -> bool) -> String {
        self.wait_until(what, seconds, async || {
            let title = self.title().await;
            accept(&title).then_some(title)
        })
        .await
    }

    /// Signs in as `login` (password "pw") through the test provider's own login page, and
    /// waits to be back on the console, signed in.
    pub async fn sign_in(&self, login: &str) {
        self.goto("/auth/login").await;
        self.wait_for("input[name=login]", 20).await;
        assert!(
            !self.current_url().await.starts_with(&self.base_url),
            "/auth/login should lead to the provider's page"
        );
        self.type_into("input[name=login]", login).await;
        self.type_into("input[name=password]", "pw").await;
        self.click("button[type=submit]").await;
        self.wait_until(&format!("{login} to land on the console, signed in"), 20, async || {
            let url = self.current_url().await;
            if !url.starts_with(&self.base_url) {
                return None;
            }
            self.try_find("a.person").await.map(|_| ())
        })
        .await;
    }
}

impl<'a> Element<'a> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub async fn click(&self) {
        self.browser
            .command(reqwest::Method::POST, &self.path("/click"), None)
            .await
            .unwrap_or_else(|e| panic!("clicking {:?}: {e}", self.selector));
    }

    pub async fn send_keys(&self, text: &str) {
        self.browser
            .command(
                reqwest::Method::POST,
                &self.path("/value"),
                Some(json!({ "text": text })),
            )
            .await
            .unwrap_or_else(|e| panic!("typing into {:?}: {e}", self.selector));
    }

    pub async fn clear(&self) {
        self.browser
            .command(reqwest::Method::POST, &self.path("/clear"), None)
            .await
            .unwrap_or_else(|e| panic!("clearing {:?}: {e}", self.selector));
    }

    /// The rendered text (as a person sees it).
    pub async fn text(&self) -> String {
        self.browser
            .command(reqwest::Method::GET, &self.path("/text"), None)
            .await
            .unwrap_or_else(|e| panic!("reading {:?}: {e}", self.selector))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// An HTML attribute (`None` when absent).
    pub async fn attr(&self, name: &str) -> Option<String> {
        self.browser
            .command(reqwest::Method::GET, &self.path(&format!("/attribute/{name}")), None)
            .await
            .unwrap_or_else(|e| panic!("reading {name} of {:?}: {e}", self.selector))
            .as_str()
            .map(String::from)
    }

    /// A DOM property (`disabled`, `value`, …).
    pub async fn prop(&self, name: &str) -> Value {
        self.browser
            .command(reqwest::Method::GET, &self.path(&format!("/property/{name}")), None)
            .await
            .unwrap_or_else(|e| panic!("reading {name} of {:?}: {e}", self.selector))
    }

    /// Whether a person would see it.
    pub async fn is_displayed(&self) -> bool {
        self.browser
            .command(reqwest::Method::GET, &self.path("/displayed"), None)
            .await
            .unwrap_or_else(|e| panic!("checking {:?}: {e}", self.selector))
            .as_bool()
            .unwrap_or(false)
    }

    /// Elements inside this one matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'a>> {
        let value = self
            .browser
            .command(
                reqwest::Method::POST,
                &self.path("/elements"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .unwrap_or_else(|e| panic!("finding {css:?} in {:?}: {e}", self.selector));
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|v| self.browser.element_from(v, &format!("{} {css}", self.selector)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element inside this one matching `css`.
    pub async fn find(&self, css: &str) -> Element<'a> {
        self.find_all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("nothing matches {css:?} inside {:?}", self.selector))
    }
}

/// A fresh browser signed in to `server` as `login`.
pub async fn signed_in(server: &crate::TestServer, login: &str) -> Browser {
    let browser = Browser::start(&server.base_url).await;
    browser.sign_in(login).await;
    browser
}
