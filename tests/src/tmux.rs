//! A real terminal for end-to-end tests of the `signoff` client: a private tmux server
//! (its own socket, so parallel tests never meet) running a plain bash, driven with
//! `send-keys` and read with `capture-pane`. Dropping it kills that tmux server and
//! everything running in it, even when the test panics.

use std::future::Future;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How often `wait_for` looks at the screen again.
const POLL: Duration = Duration::from_millis(100);

/// The prompt of the shell in the pane: easy to find, and unlike anything `signoff` prints.
pub const PROMPT: &str = "tmux-test$ ";

pub struct Tmux {
    socket: String,
    /// Where tmux put the socket, removed on drop (`kill-server` leaves it behind).
    socket_path: Option<std::path::PathBuf>,
    /// The pane everything is sent to (`session:0.0`).
    target: String,
}

impl Tmux {
    /// A `width` x `height` terminal running `bash` (no rc files, prompt [`PROMPT`]) whose
    /// environment is exactly `env` (plus UTF-8 and what tmux adds, such as `TERM`).
    pub fn start(width: u16, height: u16, env: &[(String, String)]) -> Tmux {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let mut tmux = Tmux {
            socket: format!("signoff-test-{unique}"),
            socket_path: None,
            target: "signoff:0.0".into(),
        };
        let mut command = Command::new("tmux");
        command
            .args(["-u", "-L", &tmux.socket, "-f", "/dev/null"])
            .args(["new-session", "-d", "-s", "signoff", "-x", &width.to_string(), "-y"])
            .arg(height.to_string())
            .args(["bash", "--noprofile", "--norc"])
            .env_clear()
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("PS1", PROMPT)
            // Keep bash from writing a history file into whatever HOME is.
            .env("HISTFILE", "/dev/null")
            .envs(env.iter().map(|(name, value)| (name.as_str(), value.as_str())))
            .stdin(Stdio::null());
        let output = command
            .output()
            .expect("run tmux (is it installed? `just test-deps` installs it)");
        assert!(
            output.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The guard exists from here on, so a failure below still kills the server.
        tmux.socket_path = Some(tmux.format("#{socket_path}").into());
        tmux.tmux(&["set-option", "-t", "signoff", "status", "off"]);
        tmux
    }

    /// Runs a tmux command against this server; panics if tmux fails.
    pub fn tmux(&self, args: &[&str]) -> String {
        let output = self.tmux_output(args);
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn tmux_output(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-u", "-L", &self.socket])
            .args(args)
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// Types `text` literally (no key names interpreted).
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.target, "-l", text]);
    }

    /// Presses keys by tmux name: `Enter`, `Escape`, `Down`, `C-c`, or single characters.
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.target];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types a shell command line and presses Enter.
    pub fn run(&self, command_line: &str) {
        self.type_text(command_line);
        self.press(&["Enter"]);
    }

    /// Resizes the terminal (the program in it gets SIGWINCH).
    pub fn resize(&self, width: u16, height: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            &self.target,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// What the screen shows now, one string per row (wrapped rows joined), trailing
    /// blanks trimmed.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", &self.target])
    }

    /// A tmux format evaluated for the pane, e.g. `#{alternate_on}`.
    pub fn format(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", &self.target, format])
            .trim()
            .to_string()
    }

    /// Waits until the screen satisfies `ready`, looking every 100 ms; returns that screen.
    /// Panics after `timeout` showing `what` was awaited and the last screen seen.
    pub async fn wait_for(&self, what: &str, timeout: Duration, ready: impl Fn(&str) -> bool) -> String {
        self.wait_for_with(what, timeout, ready, || async { String::new() })
            .await
    }

    /// As [`Tmux::wait_for`]; on timeout the panic also shows what `context` returns (a log
    /// file, the server's view of things).
    pub async fn wait_for_with<F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&str) -> bool,
        context: F,
    ) -> String
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = String>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                let context = context().await;
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n----- screen -----\n{screen}\n------------------\n{context}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the screen shows `text` anywhere.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) -> String {
        self.wait_for(&format!("“{text}” on screen"), timeout, |screen| {
            screen.contains(text)
        })
        .await
    }

    /// Waits until a row of the screen is exactly `line` (trailing blanks ignored): output of
    /// a command rather than the command line that asked for it.
    pub async fn wait_for_line(&self, line: &str, timeout: Duration) -> String {
        self.wait_for(&format!("a row reading “{line}”"), timeout, |screen| {
            screen.lines().any(|row| row.trim_end() == line)
        })
        .await
    }

    /// Waits until the shell is back at an empty prompt on the normal screen.
    pub async fn wait_for_prompt(&self, timeout: Duration) -> String {
        self.wait_for("the shell prompt", timeout, |screen| {
            screen
                .lines()
                .rev()
                .find(|row| !row.trim().is_empty())
                .is_some_and(|row| row.trim_end() == PROMPT.trim_end())
        })
        .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Kills the shell and whatever runs in it (SIGHUP), and removes the socket.
        let _ = self.tmux_output(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}
