//! The real test OpenID Provider (npm `oidc-provider`, `tests/oidc-provider/server.mjs`),
//! one per test, on 127.0.0.1 with a free port.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

pub struct Provider {
    pub issuer: String,
    _child: Child,
    /// The provider exits when this closes, so a crashed test leaves nothing running.
    _stdin: ChildStdin,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc-provider")
}

/// Installs the provider's packages once per test run if `just test-deps` has not.
fn ensure_installed() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if !provider_dir().join("node_modules").exists() {
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(provider_dir())
                .status()
                .expect("run npm ci (is Node installed? `just test-deps` installs it)");
            assert!(status.success(), "npm ci failed in tests/oidc-provider");
        }
    });
}

impl Provider {
    pub async fn start() -> Provider {
        ensure_installed();
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(provider_dir())
            .env("OIDC_CONFIG", r#"{"port":0}"#)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the test OpenID Provider");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("provider starts within 30 s")
            .expect("read provider output")
            .expect("provider printed its issuer");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("issuer line is JSON");
        let issuer = ready["issuer"].as_str().expect("issuer").to_string();
        Provider {
            issuer,
            _child: child,
            _stdin: stdin,
        }
    }

    /// Shifts the provider's clock (tokens it issues then are from the past or future).
    pub async fn set_clock_offset(&self, seconds: i64) {
        let response = reqwest::Client::new()
            .post(format!("{}/__test/clock", self.issuer))
            .json(&serde_json::json!({ "offset_s": seconds }))
            .send()
            .await
            .expect("clock control");
        assert!(
            response.status().is_success(),
            "clock control answered {}",
            response.status()
        );
    }
}
