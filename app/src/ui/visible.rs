//! Agent text, with nothing hidden: characters a reviewer could not see (zero-width and
//! other format characters, controls) or that reorder the text around them (bidirectional
//! overrides, "trojan source") are shown as a visible `⟨U+202E⟩` that names them.

use leptos::prelude::*;

pub use crate::model::hidden_char_name;

fn marker(c: char) -> String {
    format!("⟨U+{:04X}⟩", u32::from(c))
}

/// `text` with every hidden character written as `⟨U+202E⟩`, for places that hold only
/// plain text (the page title, attributes).
pub fn visible_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match hidden_char_name(c) {
            Some(_) => out.push_str(&marker(c)),
            None => out.push(c),
        }
    }
    out
}

/// Text from an agent (or anyone but Signoff) for a page: escaped by Leptos like any text,
/// with every hidden character shown as a marked `⟨U+202E⟩` whose tooltip names it.
pub fn agent_text(text: impl Into<String>) -> AnyView {
    let text: String = text.into();
    if !text.chars().any(|c| hidden_char_name(c).is_some()) {
        return text.into_any();
    }
    let mut parts: Vec<AnyView> = Vec::new();
    let mut plain = String::new();
    for c in text.chars() {
        let Some(name) = hidden_char_name(c) else {
            plain.push(c);
            continue;
        };
        if !plain.is_empty() {
            parts.push(std::mem::take(&mut plain).into_any());
        }
        let title = format!("U+{:04X} {name}", u32::from(c));
        parts.push(view! { <span class="invisible-char" title=title>{marker(c)}</span> }.into_any());
    }
    if !plain.is_empty() {
        parts.push(plain.into_any());
    }
    parts.into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_get_a_visible_name() {
        assert_eq!(visible_text("abc\u{202E}fed"), "abc⟨U+202E⟩fed");
        assert_eq!(
            visible_text("a\u{200B}b\u{2066}c\u{FEFF}d\u{E0041}\u{1b}"),
            "a⟨U+200B⟩b⟨U+2066⟩c⟨U+FEFF⟩d⟨U+E0041⟩⟨U+001B⟩"
        );
        assert_eq!(visible_text("line\nnext\tcol\r\n"), "line\nnext\tcol\r\n");
        assert_eq!(visible_text("Grüße, 日本語, עברית"), "Grüße, 日本語, עברית");
        assert_eq!(hidden_char_name('\u{200F}'), Some("RIGHT-TO-LEFT MARK"));
    }

    #[test]
    fn agent_text_marks_hidden_characters_and_stays_escaped() {
        let html = view! { <p>{agent_text("<b>ok</b>\u{202E}txt.exe")}</p> }.to_html();
        assert!(!html.contains('\u{202E}'), "{html}");
        assert!(html.contains("&lt;b&gt;ok&lt;/b&gt;"), "{html}");
        let marked = html.split("<span ").nth(1).unwrap_or_default();
        assert!(
            marked.contains(r#"class="invisible-char""#)
                && marked.contains(r#"title="U+202E RIGHT-TO-LEFT OVERRIDE""#)
                && marked.contains(">⟨U+202E⟩</span>"),
            "{html}"
        );
        assert!(html.contains("txt.exe"), "{html}");
        let plain = view! { <p>{agent_text("plain")}</p> }.to_html();
        assert_eq!(plain, "<p>plain</p>");
    }
}
