//! Agent text, with nothing hidden: characters a reviewer could not see (zero-width and
//! other format characters, controls) or that reorder the text around them (bidirectional
//! overrides, "trojan source") are shown as a visible `⟨U+202E⟩` that names them.

use leptos::prelude::*;

/// The name of a character that a reader could not see, or that reorders the text around
/// it; `None` for ordinary characters (newlines and tabs included).
pub fn hidden_char_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{00AD}' => "SOFT HYPHEN",
        '\u{034F}' => "COMBINING GRAPHEME JOINER",
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{115F}' => "HANGUL CHOSEONG FILLER",
        '\u{1160}' => "HANGUL JUNGSEONG FILLER",
        '\u{17B4}' => "KHMER VOWEL INHERENT AQ",
        '\u{17B5}' => "KHMER VOWEL INHERENT AA",
        '\u{180B}'..='\u{180D}' | '\u{180F}' => "MONGOLIAN FREE VARIATION SELECTOR",
        '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2061}' => "FUNCTION APPLICATION",
        '\u{2062}' => "INVISIBLE TIMES",
        '\u{2063}' => "INVISIBLE SEPARATOR",
        '\u{2064}' => "INVISIBLE PLUS",
        '\u{2065}' => "RESERVED INVISIBLE CHARACTER",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{206A}'..='\u{206F}' => "DEPRECATED FORMAT CHARACTER",
        '\u{3164}' => "HANGUL FILLER",
        // Invisible after any character; a run of them can carry a hidden message.
        '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' => "VARIATION SELECTOR",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE",
        '\u{FFA0}' => "HALFWIDTH HANGUL FILLER",
        '\u{FFF9}'..='\u{FFFB}' => "INTERLINEAR ANNOTATION CHARACTER",
        '\u{1BCA0}'..='\u{1BCA3}' => "SHORTHAND FORMAT CONTROL",
        '\u{1D173}'..='\u{1D17A}' => "MUSICAL SYMBOL FORMAT CONTROL",
        // Invisible copies of ASCII: text for a model that a person never sees.
        '\u{E0000}'..='\u{E007F}' => "TAG CHARACTER",
        '\n' | '\t' | '\r' => return None,
        c if c.is_control() => "CONTROL CHARACTER",
        _ => return None,
    })
}

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
