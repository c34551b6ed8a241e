//! The real `signoff` terminal client against the real server and the real test OpenID
//! Provider: signing in through the device flow (the browser side driven over HTTP), the
//! interactive client inside tmux (a request arriving live, approving one an agent waits
//! on, denying with a comment, keys that cannot apply, a resize, a network outage and
//! recovery, leaving the terminal as it found it, characters a reviewer could not see
//! marked as the console marks them), the scripting subcommands and their exit codes, and
//! signing out. Both stores.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::tmux::Tmux;
use signoff_tests::{AgentClient, Backend, TestServer, on_both_stores};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

on_both_stores!(
    login_through_the_device_flow_stores_private_credentials,
    a_live_request_is_approved_from_the_keyboard_and_the_agent_wakes,
    deny_needs_a_comment_and_records_it,
    scripting_commands_and_their_exit_codes,
    logout_revokes_the_token_and_forgets_it,
    the_token_never_reaches_the_clients_log,
    a_server_outage_does_not_break_the_client,
    invisible_characters_are_marked_as_the_console_marks_them,
);

/// Generous: the machine running the tests may be busy building.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

// ----- the binary and a private home for it --------------------------------------------

/// A fresh HOME, XDG_CONFIG_HOME and XDG_STATE_HOME for one person's `signoff`; removed
/// when dropped.
struct Home {
    root: PathBuf,
    /// `SIGNOFF_LOG`, when not the client's default.
    log_level: Option<&'static str>,
}

/// What a `signoff` run ended with.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Home {
    fn new() -> Home {
        let root = std::env::temp_dir().join(format!("signoff-tui-test-{}", uuid::Uuid::now_v7().simple()));
        for dir in ["home", "config", "state", "data"] {
            std::fs::create_dir_all(root.join(dir)).expect("create the test home");
        }
        Home { root, log_level: None }
    }

    /// A home whose client logs at `level` (`SIGNOFF_LOG`).
    fn logging(level: &'static str) -> Home {
        let mut home = Home::new();
        home.log_level = Some(level);
        home
    }

    /// The whole environment `signoff` runs with (nothing inherited but PATH).
    fn env(&self) -> Vec<(String, String)> {
        let bin = signoff_tests::client_binary();
        let bin_dir = bin.parent().expect("binary dir");
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let dir = |name: &str| self.root.join(name).display().to_string();
        let mut env = vec![
            ("PATH".into(), path),
            ("HOME".into(), dir("home")),
            ("XDG_CONFIG_HOME".into(), dir("config")),
            ("XDG_STATE_HOME".into(), dir("state")),
            ("XDG_DATA_HOME".into(), dir("data")),
        ];
        if let Some(level) = self.log_level {
            env.push(("SIGNOFF_LOG".into(), level.into()));
        }
        env
    }

    fn credentials(&self) -> PathBuf {
        self.root.join("config/signoff/credentials.json")
    }

    fn log(&self) -> PathBuf {
        self.root.join("state/signoff/signoff.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// The stored token.
    fn token(&self) -> String {
        let text = std::fs::read_to_string(self.credentials()).expect("read credentials");
        let stored: Value = serde_json::from_str(&text).expect("credentials are JSON");
        stored["token"].as_str().expect("token").to_string()
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(signoff_tests::client_binary());
        command
            .args(args)
            .env_clear()
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `signoff ARGS` to the end.
    async fn signoff(&self, args: &[&str]) -> Run {
        let output = tokio::time::timeout(COMMAND_TIMEOUT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("signoff {args:?} did not finish within {COMMAND_TIMEOUT:?}"))
            .expect("run signoff");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `signoff login --server URL`, confirmed in the browser as `login`.
    async fn login(&self, server: &TestServer, login: &str) -> Run {
        self.login_at(&server.base_url, server, login).await
    }

    /// `signoff login --server URL` for a `url` that leads to `server` (through a proxy).
    async fn login_at(&self, url: &str, server: &TestServer, login: &str) -> Run {
        let mut child = self
            .command(&["login", "--server", url])
            .spawn()
            .expect("start signoff login");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut printed = Vec::new();
        let (open, code) = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let mut open = None;
            while let Some(line) = lines.next_line().await.expect("read signoff output") {
                printed.push(line.clone());
                if let Some(url) = line.strip_prefix("Open: ") {
                    open = Some(url.trim().to_string());
                }
                if let Some(code) = line.strip_prefix("Code: ") {
                    return (open.expect("Open: comes before Code:"), code.trim().to_string());
                }
            }
            panic!("signoff login ended without a code: {printed:?}");
        })
        .await
        .expect("signoff login prints a code");
        confirm_in_browser(server, &open, &code, login, "approve").await;
        let mut stderr = String::new();
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let finished = tokio::time::timeout(COMMAND_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("read signoff output") {
                printed.push(line);
            }
            let _ = stderr_pipe.read_to_string(&mut stderr).await;
            child.wait().await.expect("wait for signoff login")
        })
        .await
        .expect("signoff login finishes once confirmed");
        Run {
            code: finished.code().unwrap_or(-1),
            stdout: printed.join("\n"),
            stderr,
        }
    }

    /// Signs in as `login`, asserting it worked.
    async fn signed_in(server: &TestServer, login: &str) -> Home {
        Home::signed_in_at(&server.base_url, server, login).await
    }

    async fn signed_in_at(url: &str, server: &TestServer, login: &str) -> Home {
        let home = Home::new();
        let run = home.login_at(url, server, login).await;
        assert_eq!(run.code, 0, "{run:?}");
        home
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The reviewer's side of the device flow: sign in at the provider, open the address the
/// terminal printed, type the code it shows, check the page names it, and answer.
async fn confirm_in_browser(server: &TestServer, open: &str, code: &str, login: &str, answer: &str) {
    assert_eq!(
        open,
        format!("{}/device", server.base_url),
        "the terminal points at this server's confirmation page, with no code in the link"
    );
    let browser = server.browser();
    let landed = browser.sign_in(login).await;
    assert_eq!(landed.status, 200, "{login} signs in: {}", landed.body);
    let page = browser.type_device_code(code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(code),
        "the page shows the code {code}: {}",
        page.body
    );
    let csrf = page.csrf();
    let done = browser
        .post_form("/device", &[("csrf", &csrf), ("user_code", code), ("answer", answer)])
        .await;
    let expected = if answer == "approve" {
        "Terminal signed in"
    } else {
        "Sign-in refused"
    };
    assert!(done.body.contains(expected), "{}", done.body);
}

/// A TCP proxy in front of the server that can be cut (connections closed, new ones
/// refused) and restored on the same address: a network outage as the client sees it.
/// (The in-process server itself cannot be stopped while an events stream is open.)
struct Proxy {
    address: SocketAddr,
    upstream: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(server: &TestServer) -> Proxy {
        let upstream: SocketAddr = server
            .base_url
            .trim_start_matches("http://")
            .parse()
            .expect("server address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address");
        let mut proxy = Proxy {
            address,
            upstream,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task: every connection is closed at once.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Closes every connection and stops listening.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    async fn restore(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(error) if tries < 50 => {
                    tries += 1;
                    eprintln!("rebinding {}: {error}; retrying", self.address);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("cannot listen on {} again: {error}", self.address),
            }
        };
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `GET /api/v1/me` with a terminal token: the status.
async fn me_status(server: &TestServer, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /api/v1/me")
        .status()
        .as_u16()
}

/// The request as its agent sees it, asserting it exists.
async fn request(agent: &AgentClient, id: &str) -> Value {
    let reply = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// A shell in tmux with `home`'s environment.
fn terminal(home: &Home, width: u16, height: u16) -> Tmux {
    Tmux::start(width, height, &home.env())
}

/// `stty -g` as the shell in the pane sees it, read from a row the command prints.
async fn tty_settings(tmux: &Tmux, tag: &str) -> String {
    tmux.run(&format!("echo \"{tag}=$(stty -g)\""));
    let marker = format!("{tag}=");
    let screen = tmux
        .wait_for(&format!("the output of stty ({tag})"), SCREEN_TIMEOUT, |screen| {
            screen.lines().any(|row| row.starts_with(&marker))
        })
        .await;
    let row = screen.lines().find(|row| row.starts_with(&marker)).expect("row");
    row[marker.len()..].trim().to_string()
}

/// The row of the queue that is selected (starts with `> `).
fn selected_row(screen: &str) -> Option<&str> {
    screen.lines().find(|row| row.starts_with("> "))
}

/// The queue's rows that show `title` (rows start with the selection marker or its room).
fn queue_rows_with<'s>(screen: &'s str, title: &str) -> Vec<&'s str> {
    screen
        .lines()
        .filter(|row| (row.starts_with("> ") || row.starts_with("  ")) && row.contains(title))
        .collect()
}

// ----- 1. signing in -------------------------------------------------------------------

async fn login_through_the_device_flow_stores_private_credentials(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let home = Home::new();

    let run = home.login(&server, "alice").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("Signed in to {} as Alice Reviewer.", server.base_url)),
        "{}",
        run.stdout
    );
    assert!(run.stderr.is_empty(), "nothing on stderr: {}", run.stderr);

    // Stored for its owner only, and naming the server it came from.
    let credentials = home.credentials();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&credentials), 0o600, "credentials.json is 0600");
        assert_eq!(mode(credentials.parent().expect("dir")), 0o700, "its directory is 0700");
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&credentials).expect("read")).expect("JSON");
    assert_eq!(stored["server"], server.base_url.as_str());
    let token = home.token();
    assert!(token.starts_with("so_term_"), "{token}");
    assert_eq!(me_status(&server, &token).await, 200, "the token works");
    assert!(home.log().exists(), "the client logs to its state dir");

    // A sign-in refused in the browser fails with the auth exit code and stores nothing.
    let refused = Home::new();
    let mut child = refused
        .command(&["login", "--server", &server.base_url])
        .spawn()
        .expect("start signoff login");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut open, mut code) = (String::new(), String::new());
    while let Some(line) = tokio::time::timeout(COMMAND_TIMEOUT, lines.next_line())
        .await
        .expect("output")
        .expect("read")
    {
        if let Some(url) = line.strip_prefix("Open: ") {
            open = url.trim().to_string();
        }
        if let Some(user_code) = line.strip_prefix("Code: ") {
            code = user_code.trim().to_string();
            break;
        }
    }
    confirm_in_browser(&server, &open, &code, "bob", "deny").await;
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("stderr");
    let status = tokio::time::timeout(COMMAND_TIMEOUT, async {
        while let Ok(Some(_)) = lines.next_line().await {}
        let _ = pipe.read_to_string(&mut stderr).await;
        child.wait().await.expect("wait")
    })
    .await
    .expect("signoff login ends once refused");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the sign-in was denied in the browser"), "{stderr}");
    assert!(!refused.credentials().exists());
}

// ----- 2. the interactive client: live arrival, approve, quit ----------------------------

async fn a_live_request_is_approved_from_the_keyboard_and_the_agent_wakes(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let earlier = agent.submit(&request_body("Rotate the audit bucket key")).await;

    let home = Home::new();
    let tmux = terminal(&home, 120, 40);
    tmux.wait_for_prompt(SCREEN_TIMEOUT).await;

    // Sign in from the terminal itself.
    tmux.run(&format!("signoff login --server {}", server.base_url));
    let screen = tmux.wait_for_text("Code: ", SCREEN_TIMEOUT).await;
    let field = |prefix: &str| {
        screen
            .lines()
            .find_map(|row| row.strip_prefix(prefix))
            .map(|value| value.trim().to_string())
            .unwrap_or_else(|| panic!("no {prefix} row:\n{screen}"))
    };
    let (open, code) = (field("Open: "), field("Code: "));
    confirm_in_browser(&server, &open, &code, "alice", "approve").await;
    tmux.wait_for_text(
        &format!("Signed in to {} as Alice Reviewer.", server.base_url),
        SCREEN_TIMEOUT,
    )
    .await;
    tmux.wait_for_prompt(SCREEN_TIMEOUT).await;
    let tty_before = tty_settings(&tmux, "tty-before").await;

    // The stored login is enough to open the client.
    tmux.run("signoff; echo \"signoff exited $?\"");
    let log = || async { format!("----- signoff.log -----\n{}", home.log_text()) };
    tmux.wait_for_with(
        "the queue, live, with the earlier request",
        SCREEN_TIMEOUT,
        |screen| {
            screen.contains("● live")
                && screen.contains("Queue (1 pending)")
                && selected_row(screen).is_some_and(|row| row.contains("Rotate the audit bucket key"))
        },
        log,
    )
    .await;
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "the client uses the alternate screen"
    );

    // A request arrives while the client is open.
    let id = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let screen = tmux
        .wait_for_with(
            "the new request to arrive live",
            SCREEN_TIMEOUT,
            |screen| screen.contains("Queue (2 pending)") && screen.contains("Deploy payments-api 1.5.0"),
            log,
        )
        .await;
    let rows = queue_rows_with(&screen, "Deploy payments-api 1.5.0");
    assert_eq!(rows.len(), 1, "one row for the new request:\n{screen}");
    let row = rows[0];
    let position = |title: &str| screen.lines().position(|row| row.contains(title));
    assert!(
        position("Rotate the audit bucket key") < position("Deploy payments-api 1.5.0"),
        "oldest first:\n{screen}"
    );
    assert!(
        row.contains("deploy.service") && row.contains("prod") && row.contains("deploy-bot") && row.contains("0/1"),
        "the row shows action, env, agent and approvals: {row}"
    );
    assert!(
        selected_row(&screen).is_some_and(|row| row.contains("Rotate the audit bucket key")),
        "the selection stays where it was:\n{screen}"
    );

    // A resize redraws for the new size, and back.
    tmux.resize(80, 24);
    tmux.wait_for("a redraw at 80x24", SCREEN_TIMEOUT, |screen| {
        let rows: Vec<&str> = screen.lines().collect();
        rows.len() == 24
            && rows[0].contains("Queue (2 pending)")
            && rows[1].contains("Title")
            && !rows[1].contains("Agent")
            && rows[23].contains("● live")
    })
    .await;
    tmux.resize(120, 40);
    tmux.wait_for("a redraw at 120x40", SCREEN_TIMEOUT, |screen| {
        let rows: Vec<&str> = screen.lines().collect();
        rows.len() == 40 && rows[1].contains("Agent") && rows[39].contains("● live")
    })
    .await;

    let waiter = {
        let agent = agent.clone();
        let id = id.clone();
        tokio::spawn(async move { agent.wait(&id, 60).await })
    };

    // Select it, approve it with a comment, confirm exactly what is signed off.
    tmux.press(&["j"]);
    tmux.wait_for("the new request to be selected", SCREEN_TIMEOUT, |screen| {
        selected_row(screen).is_some_and(|row| row.contains("Deploy payments-api 1.5.0"))
    })
    .await;
    tmux.press(&["a"]);
    let screen = tmux
        .wait_for_with(
            "the approval comment prompt",
            SCREEN_TIMEOUT,
            |screen| screen.contains("Comment (optional):"),
            log,
        )
        .await;
    assert!(screen.contains("Approve “Deploy payments-api 1.5.0”"), "{screen}");
    tmux.type_text("diff matches the release notes");
    tmux.wait_for_text("> diff matches the release notes", SCREEN_TIMEOUT)
        .await;
    tmux.press(&["Enter"]);
    let screen = tmux.wait_for_text("Approve this request?", SCREEN_TIMEOUT).await;
    let digest = request(&agent, &id).await["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    for shown in [
        "Deploy payments-api 1.5.0",
        "deploy.service",
        "k8s://prod/payments-api",
        &format!("{}…", &digest[..12]),
        "diff matches the release notes",
        "y / Enter: approve",
    ] {
        assert!(screen.contains(shown), "the confirmation shows {shown}:\n{screen}");
    }
    assert!(!waiter.is_finished(), "nothing is sent before the confirmation");
    tmux.press(&["y"]);

    let reply = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the agent's waiter wakes")
        .expect("join");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "approved", "{:?}", reply.body);
    let decisions = reply.body["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["verdict"], "approve");
    assert_eq!(decisions[0]["channel"], "terminal");
    assert_eq!(decisions[0]["comment"], "diff matches the release notes");
    assert_eq!(decisions[0]["reviewer"]["subject"], "u-alice");
    assert_eq!(decisions[0]["reviewer"]["email"], "alice@example.com");

    // The client says so and the request leaves the queue; the other one stays pending.
    tmux.wait_for_with(
        "the approval to be reported and the queue updated",
        SCREEN_TIMEOUT,
        |screen| {
            screen.contains("Approved “Deploy payments-api 1.5.0”: now approved")
                && screen.contains("Queue (1 pending)")
                && queue_rows_with(screen, "Deploy payments-api 1.5.0").is_empty()
        },
        log,
    )
    .await;
    assert_eq!(request(&agent, &earlier).await["status"], "pending");

    // `q` quits and gives the terminal back as it was.
    tmux.press(&["q"]);
    tmux.wait_for_line("signoff exited 0", SCREEN_TIMEOUT).await;
    let screen = tmux.wait_for_prompt(SCREEN_TIMEOUT).await;
    assert!(
        screen.contains(&format!("Signed in to {} as Alice Reviewer.", server.base_url)),
        "the normal screen is back, with what was on it before:\n{screen}"
    );
    assert!(!screen.contains("● live"), "no trace of the client is left:\n{screen}");
    assert_eq!(
        tmux.format("#{alternate_on} #{cursor_flag} #{mouse_any_flag} #{mouse_button_flag} #{mouse_standard_flag} #{mouse_sgr_flag}"),
        "0 1 0 0 0 0",
        "alternate screen left, cursor shown, mouse capture off"
    );
    let tty_after = tty_settings(&tmux, "tty-after").await;
    assert_eq!(tty_after, tty_before, "the terminal modes are restored (raw mode off)");
    let log = home.log_text();
    assert!(log.contains("sending decision"), "{log}");
}

// ----- 3. deny ---------------------------------------------------------------------------

async fn deny_needs_a_comment_and_records_it(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("db-bot").await;
    let id = agent.submit(&request_body("Drop staging db")).await;
    // Made on bob's behalf: not his to decide.
    let mut own_body = request_body("Grant bob prod access");
    own_body["on_behalf_of"] = "bob@example.com".into();
    let own = agent.submit(&own_body).await;
    let home = Home::signed_in(&server, "bob").await;

    // A small terminal, as on a phone over SSH at 3 a.m.
    let tmux = terminal(&home, 80, 24);
    tmux.wait_for_prompt(SCREEN_TIMEOUT).await;
    tmux.run(&format!(
        "signoff --server {}; echo \"signoff exited $?\"",
        server.base_url
    ));
    let log = || async { format!("----- signoff.log -----\n{}", home.log_text()) };
    tmux.wait_for_with(
        "the queue with the request selected",
        SCREEN_TIMEOUT,
        |screen| {
            screen.contains("● live")
                && screen.contains("Queue (2 pending)")
                && selected_row(screen).is_some_and(|row| row.contains("Drop staging db"))
        },
        log,
    )
    .await;

    // Keys that cannot apply say why, and send nothing.
    tmux.press(&["j"]);
    let screen = tmux
        .wait_for("bob's own request to be selected", SCREEN_TIMEOUT, |screen| {
            selected_row(screen).is_some_and(|row| row.contains("Grant bob prod access"))
        })
        .await;
    assert!(
        screen.contains("a/d unavailable: you cannot decide a request made for you"),
        "the hints show a/d disabled with the reason:\n{screen}"
    );
    tmux.press(&["d"]);
    let screen = tmux
        .wait_for_text("Cannot deny: you cannot decide", SCREEN_TIMEOUT)
        .await;
    assert!(!screen.contains("Comment ("), "no comment prompt opens:\n{screen}");
    assert_eq!(request(&agent, &own).await["decisions"], serde_json::json!([]));
    tmux.press(&["k"]);
    tmux.wait_for("the first request to be selected again", SCREEN_TIMEOUT, |screen| {
        selected_row(screen).is_some_and(|row| row.contains("Drop staging db"))
    })
    .await;

    // `d` asks why; an empty comment is refused by the client and nothing is sent.
    tmux.press(&["d"]);
    let screen = tmux
        .wait_for_with(
            "the deny comment prompt",
            SCREEN_TIMEOUT,
            |screen| screen.contains("Comment (required, say why):"),
            log,
        )
        .await;
    assert!(screen.contains("Deny “Drop staging db”"), "{screen}");
    tmux.type_text("   ");
    tmux.press(&["Enter"]);
    tmux.wait_for_text("A deny needs a comment: say why.", SCREEN_TIMEOUT)
        .await;
    let screen = tmux.screen();
    assert!(
        screen.contains("Comment (required, say why):") && !screen.contains("Deny this request?"),
        "the prompt stays open:\n{screen}"
    );
    let pending = request(&agent, &id).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["decisions"], serde_json::json!([]), "nothing was sent");
    assert!(!home.log_text().contains("sending decision"), "{}", home.log_text());

    // With a reason it is confirmed (Enter) and recorded.
    tmux.press(&["C-u"]);
    tmux.type_text("no change window today");
    tmux.wait_for_text("> no change window today", SCREEN_TIMEOUT).await;
    tmux.press(&["Enter"]);
    let screen = tmux.wait_for_text("Deny this request?", SCREEN_TIMEOUT).await;
    assert!(
        screen.contains("no change window today") && screen.contains("y / Enter: deny"),
        "{screen}"
    );
    tmux.press(&["Enter"]);
    tmux.wait_for_with(
        "the denial to be reported",
        SCREEN_TIMEOUT,
        |screen| screen.contains("Denied “Drop staging db”: now denied") && screen.contains("Queue (1 pending)"),
        log,
    )
    .await;

    let denied = request(&agent, &id).await;
    assert_eq!(denied["status"], "denied", "{denied:?}");
    let decisions = denied["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["verdict"], "deny");
    assert_eq!(decisions[0]["comment"], "no change window today");
    assert_eq!(decisions[0]["channel"], "terminal");
    assert_eq!(decisions[0]["reviewer"]["subject"], "u-bob");
    // And the service agrees.
    let stored = server
        .service
        .store()
        .audit_events_for(id.parse().expect("id"))
        .await
        .expect("audit");
    assert!(
        stored.iter().any(|event| event.kind == "decision.recorded"),
        "the audit trail records the decision: {stored:?}"
    );

    // Ctrl-C quits as well, and cleanly.
    tmux.press(&["C-c"]);
    tmux.wait_for_line("signoff exited 0", SCREEN_TIMEOUT).await;
    assert_eq!(tmux.format("#{alternate_on}"), "0");
}

// ----- 4. scripting ----------------------------------------------------------------------

async fn scripting_commands_and_their_exit_codes(backend: Backend) {
    let provider = Provider::start().await;
    // Two approvals, so that a second approve by the same person meets a pending request.
    let server = TestServer::start_with_sso(backend, &provider, |config| config.default_approvals = 2).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let alice = Home::signed_in(&server, "alice").await;

    let list = alice.signoff(&["list", "--json"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let items: Value = serde_json::from_str(&list.stdout).expect("list --json prints JSON");
    let items = items.as_array().expect("an array");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[0]["title"], "Deploy payments-api 1.5.0");
    assert_eq!(items[0]["approvals_required"], 2);
    let table = alice.signoff(&["list"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table.stdout.contains(&id) && table.stdout.contains("Deploy payments-api 1.5.0"),
        "{}",
        table.stdout
    );

    let approve = alice.signoff(&["approve", &id, "-m", "ok"]).await;
    assert_eq!(approve.code, 0, "{approve:?}");
    assert!(
        approve.stdout.contains("1 of 2 approvals, still pending"),
        "{}",
        approve.stdout
    );

    let again = alice.signoff(&["approve", &id, "-m", "ok"]).await;
    assert_eq!(again.code, 1, "the server refuses a second vote: {again:?}");
    assert!(
        again
            .stderr
            .contains("This request was already decided (by you or another reviewer)."),
        "{}",
        again.stderr
    );
    assert!(again.stdout.is_empty(), "{}", again.stdout);

    // A second reviewer completes it; `show --json` tells the whole story.
    let bob = Home::signed_in(&server, "bob").await;
    let second = bob.signoff(&["approve", &id]).await;
    assert_eq!(second.code, 0, "{second:?}");
    assert!(second.stdout.contains("now approved"), "{}", second.stdout);
    let show = alice.signoff(&["show", &id, "--json"]).await;
    assert_eq!(show.code, 0, "{show:?}");
    let shown: Value = serde_json::from_str(&show.stdout).expect("show --json prints JSON");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["status"], "approved");
    let who: Vec<(&str, &str, &str)> = shown["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| {
            (
                d["reviewer"]["subject"].as_str().unwrap_or(""),
                d["channel"].as_str().unwrap_or(""),
                d["comment"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(who, [("u-alice", "terminal", "ok"), ("u-bob", "terminal", "")]);
    let plain = alice.signoff(&["show", &id]).await;
    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(plain.stdout.contains("Deploy payments-api 1.5.0"), "{}", plain.stdout);

    // Deciding what is no longer pending is refused (1); usage errors are 2.
    let late = bob.signoff(&["deny", &id, "-m", "too late"]).await;
    assert_eq!(late.code, 1, "{late:?}");
    assert!(late.stderr.contains("no longer pending"), "{}", late.stderr);
    let no_comment = bob.signoff(&["deny", &id]).await;
    assert_eq!(no_comment.code, 2, "{no_comment:?}");
    let not_an_id = bob.signoff(&["approve", "not-a-uuid"]).await;
    assert_eq!(not_an_id.code, 2, "{not_an_id:?}");
    let unknown = bob.signoff(&["show", &uuid::Uuid::now_v7().to_string()]).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");

    // Without credentials: not signed in (3), whether or not a server is named.
    let nobody = Home::new();
    let anonymous = nobody.signoff(&["list", "--server", &server.base_url]).await;
    assert_eq!(anonymous.code, 3, "{anonymous:?}");
    assert!(anonymous.stderr.contains("not signed in"), "{}", anonymous.stderr);
    let nowhere = nobody.signoff(&["list"]).await;
    assert_eq!(nowhere.code, 3, "{nowhere:?}");

    // A server that does not answer: 4.
    server.stop().await;
    let down = alice.signoff(&["list"]).await;
    assert_eq!(down.code, 4, "{down:?}");
}

// ----- 5. signing out --------------------------------------------------------------------

async fn logout_revokes_the_token_and_forgets_it(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let home = Home::signed_in(&server, "carol").await;
    let token = home.token();
    assert_eq!(me_status(&server, &token).await, 200);

    let logout = home.signoff(&["logout"]).await;
    assert_eq!(logout.code, 0, "{logout:?}");
    assert!(
        logout.stdout.contains(&format!("Signed out of {}", server.base_url)),
        "{}",
        logout.stdout
    );
    assert!(!home.credentials().exists(), "the credentials file is removed");
    assert_eq!(
        me_status(&server, &token).await,
        401,
        "the token is revoked on the server"
    );

    let list = home.signoff(&["list", "--server", &server.base_url]).await;
    assert_eq!(list.code, 3, "{list:?}");
    let again = home.signoff(&["logout"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("Not signed in"), "{}", again.stdout);
}

// ----- 6. the server goes away ------------------------------------------------------------

async fn a_server_outage_does_not_break_the_client(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let mut proxy = Proxy::start(&server).await;
    let agent = server.agent("deploy-bot").await;
    agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let home = Home::signed_in_at(&proxy.url(), &server, "erin").await;
    let tmux = terminal(&home, 100, 30);
    tmux.wait_for_prompt(SCREEN_TIMEOUT).await;
    let tty_before = tty_settings(&tmux, "tty-before").await;
    tmux.run("signoff; echo \"signoff exited $?\"");
    let log = || async { format!("----- signoff.log -----\n{}", home.log_text()) };
    tmux.wait_for_with(
        "the queue, live",
        SCREEN_TIMEOUT,
        |screen| screen.contains("● live") && screen.contains("Deploy payments-api 1.5.0"),
        log,
    )
    .await;

    // The network goes away: the client says so and keeps what it had.
    proxy.cut().await;
    tmux.wait_for_with(
        "the status line to say the connection is down",
        SCREEN_TIMEOUT,
        |screen| screen.contains("◌ reconnecting…") || screen.contains("○ offline"),
        log,
    )
    .await;
    tmux.press(&["r"]);
    let screen = tmux
        .wait_for_with(
            "the status line to say offline",
            SCREEN_TIMEOUT,
            |screen| screen.contains("○ offline"),
            log,
        )
        .await;
    assert!(
        selected_row(&screen).is_some_and(|row| row.contains("Deploy payments-api 1.5.0")),
        "the queue it had stays on screen:\n{screen}"
    );
    tmux.press(&["Enter"]);
    tmux.wait_for_with(
        "the detail to say it could not load",
        SCREEN_TIMEOUT,
        |screen| screen.contains("Could not load this request"),
        log,
    )
    .await;
    tmux.press(&["Escape"]);
    tmux.wait_for("the queue again", SCREEN_TIMEOUT, |screen| {
        screen.contains("Signoff · Queue")
    })
    .await;

    // What happens meanwhile shows up once the network is back.
    agent.submit(&request_body("Scale payments-api to 6")).await;
    proxy.restore().await;
    tmux.wait_for_with(
        "the client to be live again with what it missed",
        Duration::from_secs(60),
        |screen| {
            screen.contains("● live")
                && screen.contains("Queue (2 pending)")
                && screen.contains("Scale payments-api to 6")
        },
        log,
    )
    .await;

    tmux.press(&["q"]);
    tmux.wait_for_line("signoff exited 0", SCREEN_TIMEOUT).await;
    tmux.wait_for_prompt(SCREEN_TIMEOUT).await;
    assert_eq!(tmux.format("#{alternate_on} #{cursor_flag} #{mouse_any_flag}"), "0 1 0");
    assert_eq!(tty_settings(&tmux, "tty-after").await, tty_before);
    let log = home.log_text();
    assert!(!log.contains("panic"), "{log}");
}

/// Everything the client does with its token, logged at debug: the token is not in the log.
async fn the_token_never_reaches_the_clients_log(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let home = Home::logging("debug");
    let run = home.login(&server, "alice").await;
    assert_eq!(run.code, 0, "{run:?}");
    let token = home.token();
    assert!(token.starts_with("so_term_"), "{token}");
    for args in [
        vec!["list", "--json"],
        vec!["show", id.as_str(), "--json"],
        vec!["approve", id.as_str(), "-m", "ok"],
        vec!["logout"],
    ] {
        let run = home.signoff(&args).await;
        assert_eq!(run.code, 0, "signoff {args:?}: {run:?}");
        assert!(
            !run.stdout.contains(&token) && !run.stderr.contains(&token),
            "{args:?}: {run:?}"
        );
    }
    assert_eq!(
        me_status(&server, &token).await,
        401,
        "logout revoked the token it used"
    );

    let log = home.log();
    assert!(log.exists(), "the client logs to {}", log.display());
    let log = home.log_text();
    assert!(
        log.contains("DEBUG"),
        "the log is at debug, so it holds all the client says:\n{log}"
    );
    assert!(!log.contains(&token), "the token is in the client's log:\n{log}");
    // Nor any long part of it (a prefix shown for recognition is fine, the secret part is not).
    let secret = &token["so_term_".len()..];
    for start in (0..secret.len().saturating_sub(16)).step_by(8) {
        assert!(
            !log.contains(&secret[start..start + 16]),
            "part of the token is in the client's log:\n{log}"
        );
    }
}

// ----- 7. what a reviewer cannot see is shown ----------------------------------------------

async fn invisible_characters_are_marked_as_the_console_marks_them(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let mut body = request_body("Hidden text");
    // Zero-width space, byte-order mark, word joiner, and TAG characters spelling "ig":
    // text a model reads and a person does not see.
    body["reason"] = json!("ok\u{200B}\u{FEFF}\u{2060}\u{E0069}\u{E0067}done");
    let id = agent.submit(&body).await;
    let marked = "ok⟨U+200B⟩⟨U+FEFF⟩⟨U+2060⟩⟨U+E0069⟩⟨U+E0067⟩done";

    // The console's marking, which the terminal must match.
    let browser = server.browser();
    browser.sign_in("alice").await;
    let page = browser.get(&format!("{}/requests/{id}", server.base_url)).await;
    for marker in ["⟨U+200B⟩", "⟨U+FEFF⟩", "⟨U+2060⟩", "⟨U+E0069⟩", "⟨U+E0067⟩"] {
        assert!(page.body.contains(marker), "{marker} not in {}", page.body);
    }

    let alice = Home::signed_in(&server, "alice").await;
    let shown = alice.signoff(&["show", &id]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.stdout.contains(marked), "{}", shown.stdout);
    assert!(!shown.stdout.contains('\u{200B}'), "{}", shown.stdout);

    // What a reviewer sees on a terminal: `signoff show`, then the interactive client.
    let tmux = terminal(&alice, 160, 40);
    tmux.wait_for_prompt(SCREEN_TIMEOUT).await;
    tmux.run(&format!("signoff show {id}"));
    tmux.wait_for_text(marked, SCREEN_TIMEOUT).await;
    let screen = tmux.wait_for_prompt(COMMAND_TIMEOUT).await;
    assert!(!screen.contains('\u{200B}'), "{screen}");
    tmux.run("clear");
    tmux.wait_for_prompt(SCREEN_TIMEOUT).await;
    tmux.run("signoff");
    tmux.wait_for("the queue with the request", SCREEN_TIMEOUT, |screen| {
        selected_row(screen).is_some_and(|row| row.contains("Hidden text"))
    })
    .await;
    tmux.press(&["Enter"]);
    let screen = tmux.wait_for_text(marked, SCREEN_TIMEOUT).await;
    assert!(!screen.contains('\u{FEFF}'), "{screen}");
    server.stop().await;
}
