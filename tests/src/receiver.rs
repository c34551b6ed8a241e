//! The webhook receiver tests share: a real receiver (tests/webhooks/receiver.py) that
//! verifies every delivery with the official Standard Webhooks package and logs what it
//! accepted, one JSON line each.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What the receiver logged for a delivery it verified and accepted.
#[derive(Clone, Debug, Deserialize)]
pub struct Accepted {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: i64,
    pub request_id: Option<String>,
    pub actor: String,
}

/// A line of the receiver's log: an accepted delivery, or a refused signature.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Logged {
    Accepted(Accepted),
    Refused { bad: String },
}

/// The receiver, running.
pub struct Receiver {
    pub url: String,
    pub log: PathBuf,
    _dir: tempfile_dir::Dir,
    _child: Child,
}

/// A temporary directory removed on drop (the tests crate has no tempfile dependency).
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn create() -> Dir {
            let path = std::env::temp_dir().join(format!("signoff-webhooks-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("create a temporary directory");
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/.venv/bin/python");
    assert!(
        venv.exists(),
        "the webhook receiver's Python is missing: run `just test-deps` (it installs tests/webhooks/requirements.txt)"
    );
    venv
}

impl Receiver {
    pub async fn start(secret: &str, mode: &str) -> Receiver {
        let dir = tempfile_dir::Dir::create();
        let log = dir.0.join("received.jsonl");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(secret)
            .arg(&log)
            .arg(mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the webhook receiver");
        let stdout = child.stdout.take().expect("the receiver's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref line))) if line == "listening"),
            "the receiver did not start: {ready:?}"
        );
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            log,
            _dir: dir,
            _child: child,
        }
    }

    pub fn set_mode(&self, mode: &str) {
        std::fs::write(format!("{}.mode", self.log.display()), mode).expect("write the receiver's mode");
    }

    pub fn logged(&self) -> Vec<Logged> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a line the receiver wrote"))
            .collect()
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.logged()
            .into_iter()
            .filter_map(|logged| match logged {
                Logged::Accepted(accepted) => Some(accepted),
                Logged::Refused { .. } => None,
            })
            .collect()
    }

    pub fn refused(&self) -> Vec<String> {
        self.logged()
            .into_iter()
            .filter_map(|logged| match logged {
                Logged::Refused { bad } => Some(bad),
                Logged::Accepted(_) => None,
            })
            .collect()
    }

    /// Waits until `done` holds for what was accepted, or fails saying what arrived.
    pub async fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&[Accepted]) -> bool) -> Vec<Accepted> {
        let started = Instant::now();
        loop {
            let accepted = self.accepted();
            if done(&accepted) {
                return accepted;
            }
            assert!(
                started.elapsed() < timeout,
                "{what}: after {timeout:?} the receiver has {accepted:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
