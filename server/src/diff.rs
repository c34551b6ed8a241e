//! Diffs as reviewers read them: unified text, computed from before/after JSON if needed.
//!
//! Computing a diff is the one piece of work whose cost an agent chooses, so it is
//! bounded before it starts (lines and bytes per side), given a deadline, and run on the
//! blocking pool, a few at a time, never on the threads that answer HTTP.

use std::sync::LazyLock;
use std::time::Duration;

use serde_json::Value;
use similar::TextDiff;
use tokio::sync::Semaphore;

use signoff_app::wire::{DiffInput, limits};

use crate::{Error, Result};

/// Lines per side a before/after diff may have.
pub const SIDE_LINES: usize = 20_000;
/// Bytes per side (as the reviewer reads it: pretty JSON, or the text itself).
pub const SIDE_BYTES: usize = 512 * 1024;
/// Past this, the diff settles for a correct but less minimal answer.
const DEADLINE: Duration = Duration::from_millis(500);
/// Diffs computed at once; more wait their turn.
static DIFF_WORKERS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// The unified diff to store for `input`, refusing diffs over the limits.
pub async fn unified(input: DiffInput) -> Result<String> {
    let text = match input {
        DiffInput::Unified(text) => text,
        // A small diff costs microseconds whatever its content (Myers' work grows with
        // the product of the sides' lengths), less than handing it to another thread.
        DiffInput::BeforeAfter { before, after } if is_small(&before) && is_small(&after) => compute(&before, &after)?,
        DiffInput::BeforeAfter { before, after } => {
            let _turn = DIFF_WORKERS
                .acquire()
                .await
                .map_err(|_| Error::Internal("the diff workers are closed".into()))?;
            tokio::task::spawn_blocking(move || compute(&before, &after))
                .await
                .map_err(|err| Error::Internal(format!("the diff worker failed: {err}")))??
        }
    };
    if text.len() > limits::DIFF_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "the diff is {} bytes; the limit is {} bytes (256 KiB)",
            text.len(),
            limits::DIFF_BYTES
        )));
    }
    Ok(text)
}

/// Values whose diff is computed in place: at most 64 leaves (lines, as pretty JSON) and
/// 4 KiB of text.
fn is_small(value: &Value) -> bool {
    fn leaves(value: &Value, budget: &mut i64) -> bool {
        *budget -= 1;
        match value {
            Value::String(text) => {
                *budget -= (text.len() / 64) as i64 + text.matches('\n').count() as i64;
            }
            Value::Array(items) => return items.iter().all(|item| leaves(item, budget)) && *budget >= 0,
            Value::Object(fields) => {
                return fields.iter().all(|(key, item)| key.len() < 256 && leaves(item, budget)) && *budget >= 0;
            }
            _ => {}
        }
        *budget >= 0
    }
    let mut budget = 64;
    leaves(value, &mut budget)
}

/// A unified diff of two texts an admin compares (policy versions as TOML), under the
/// same deadline and workers as a request's diff: stored text can be long.
pub async fn texts(old: String, new: String, old_name: String, new_name: String) -> Result<String> {
    let _turn = DIFF_WORKERS
        .acquire()
        .await
        .map_err(|_| Error::Internal("the diff workers are closed".into()))?;
    tokio::task::spawn_blocking(move || {
        TextDiff::configure()
            .timeout(DEADLINE)
            .diff_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string()
    })
    .await
    .map_err(|err| Error::Internal(format!("the diff worker failed: {err}")))
}

fn compute(before: &Value, after: &Value) -> Result<String> {
    let before = document(before);
    let after = document(after);
    check_side("before", &before)?;
    check_side("after", &after)?;
    Ok(TextDiff::configure()
        .timeout(DEADLINE)
        .diff_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("current", "proposed")
        .to_string())
}

fn check_side(name: &str, text: &str) -> Result<()> {
    if text.len() > SIDE_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "the diff's `{name}` side is {} bytes as text; the limit is {SIDE_BYTES} bytes (512 KiB) per side",
            text.len()
        )));
    }
    let lines = text.lines().count();
    if lines > SIDE_LINES {
        return Err(Error::PayloadTooLarge(format!(
            "the diff's `{name}` side is {lines} lines as text; the limit is {SIDE_LINES} lines per side: \
             send a unified diff of what changes instead"
        )));
    }
    Ok(())
}

/// Text documents compare as they are; anything else as pretty JSON (keys sorted).
fn document(value: &Value) -> String {
    let mut text = match value {
        Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn before_after_json_becomes_a_unified_diff() {
        let diff = unified(DiffInput::BeforeAfter {
            before: json!({"image": "api:1.4.2", "replicas": 2}),
            after: json!({"image": "api:1.5.0", "replicas": 2}),
        })
        .await
        .expect("diff");
        assert!(diff.starts_with("--- current\n+++ proposed\n"), "{diff}");
        assert!(diff.contains("-  \"image\": \"api:1.4.2\",\n"), "{diff}");
        assert!(diff.contains("+  \"image\": \"api:1.5.0\",\n"), "{diff}");
        assert!(diff.contains("   \"replicas\": 2\n"), "{diff}");
    }

    #[tokio::test]
    async fn oversized_diffs_are_refused_with_the_limit() {
        let err = unified(DiffInput::Unified("+x\n".repeat(100_000)))
            .await
            .expect_err("too large");
        assert!(matches!(err, Error::PayloadTooLarge(ref message) if message.contains("256 KiB")));
    }

    #[tokio::test]
    async fn sides_over_the_bounds_are_refused_before_any_diffing() {
        let long: Vec<u32> = (0..30_000).collect();
        let err = unified(DiffInput::BeforeAfter {
            before: json!(long),
            after: json!([]),
        })
        .await
        .expect_err("too many lines");
        assert!(
            matches!(err, Error::PayloadTooLarge(ref message) if message.contains("`before`") && message.contains("20000 lines")),
            "{err}"
        );
        let wide = "x".repeat(SIDE_BYTES + 1);
        let err = unified(DiffInput::BeforeAfter {
            before: json!(""),
            after: json!(wide),
        })
        .await
        .expect_err("too many bytes");
        assert!(
            matches!(err, Error::PayloadTooLarge(ref message) if message.contains("`after`")),
            "{err}"
        );
    }
}
