//! Characters a reader could not see (zero-width and other format characters, controls)
//! or that reorder the text around them (bidirectional overrides, "trojan source"). The
//! console marks them where they are shown (`ui::visible`); names that people type for
//! others to read, such as an agent's owner and description, may not hold them at all.

use unicode_general_category::{GeneralCategory, get_general_category};

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
        // Any other format character (Unicode's Cf), such as the Arabic number signs.
        c if get_general_category(c) == GeneralCategory::Format => "FORMAT CHARACTER",
        _ => return None,
    })
}

/// `text` on one line with nothing hidden: every control character (newlines and tabs too)
/// and every hidden character written as `⟨U+202E⟩`. For listings on a terminal, where a
/// stored escape sequence would otherwise drive the terminal and a newline forge a row.
pub fn marked_for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || hidden_char_name(c).is_some() {
            out.push_str(&format!("⟨U+{:04X}⟩", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Refuses text for a one-line field that holds a control character (newlines and tabs
/// included) or a hidden one; the message names the field and the character.
pub fn check_visible_line(field: &str, text: &str) -> Result<(), String> {
    for (at, c) in text.chars().enumerate() {
        let name = if c.is_control() {
            Some(hidden_char_name(c).unwrap_or("CONTROL CHARACTER"))
        } else {
            hidden_char_name(c)
        };
        if let Some(name) = name {
            return Err(format!(
                "{field} may not hold control or invisible characters: U+{:04X} {name} at character {}",
                u32::from(c),
                at + 1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_format_characters_are_named_and_refused() {
        assert_eq!(hidden_char_name('\u{202E}'), Some("RIGHT-TO-LEFT OVERRIDE"));
        assert_eq!(hidden_char_name('\u{0600}'), Some("FORMAT CHARACTER"));
        assert_eq!(hidden_char_name('\u{1B}'), Some("CONTROL CHARACTER"));
        assert_eq!(hidden_char_name('\n'), None);
        assert_eq!(hidden_char_name('é'), None);
        for bad in [
            "a\nb",
            "tab\there",
            "\u{1b}[2J",
            "ops\u{202E}moc.elpmaxe",
            "x\u{200B}",
            "\u{0601}",
            "\u{E0041}",
        ] {
            let refused = check_visible_line("owner", bad).expect_err(bad);
            assert!(refused.starts_with("owner may not hold"), "{refused}");
        }
        assert_eq!(
            check_visible_line("description", "ok\u{7}"),
            Err(
                "description may not hold control or invisible characters: U+0007 CONTROL CHARACTER at character 3"
                    .into()
            )
        );
        for good in [
            "ops@example.com",
            "Deploys the payments services",
            "Grüße, 日本語, עברית",
        ] {
            assert_eq!(check_visible_line("owner", good), Ok(()));
        }
    }

    #[test]
    fn terminal_text_is_one_line_with_nothing_hidden() {
        assert_eq!(
            marked_for_terminal("ops\u{1b}[2J\nforged\trow\u{202E}"),
            "ops⟨U+001B⟩[2J⟨U+000A⟩forged⟨U+0009⟩row⟨U+202E⟩"
        );
        assert_eq!(marked_for_terminal("Grüße"), "Grüße");
    }
}
