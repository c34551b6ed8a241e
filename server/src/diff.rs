//! Diffs as reviewers read them: unified text, computed from before/after JSON if needed.

use serde_json::Value;
use similar::TextDiff;

use signoff_app::wire::{DiffInput, limits};

use crate::{Error, Result};

/// The unified diff to store for `input`, refusing diffs over the limit.
pub fn unified(input: DiffInput) -> Result<String> {
    let text = match input {
        DiffInput::Unified(text) => text,
        DiffInput::BeforeAfter { before, after } => {
            let (before, after) = (document(&before), document(&after));
            TextDiff::from_lines(&before, &after)
                .unified_diff()
                .context_radius(3)
                .header("current", "proposed")
                .to_string()
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

    #[test]
    fn before_after_json_becomes_a_unified_diff() {
        let diff = unified(DiffInput::BeforeAfter {
            before: json!({"image": "api:1.4.2", "replicas": 2}),
            after: json!({"image": "api:1.5.0", "replicas": 2}),
        })
        .expect("diff");
        assert!(diff.starts_with("--- current\n+++ proposed\n"), "{diff}");
        assert!(diff.contains("-  \"image\": \"api:1.4.2\",\n"), "{diff}");
        assert!(diff.contains("+  \"image\": \"api:1.5.0\",\n"), "{diff}");
        assert!(diff.contains("   \"replicas\": 2\n"), "{diff}");
    }

    #[test]
    fn oversized_diffs_are_refused_with_the_limit() {
        let err = unified(DiffInput::Unified("+x\n".repeat(100_000))).expect_err("too large");
        assert!(matches!(err, Error::PayloadTooLarge(ref message) if message.contains("256 KiB")));
    }
}
