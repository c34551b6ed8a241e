//! Text inside a `<textarea>`. Leptos writes a textarea's children without escaping them,
//! as it does for `<script>` and `<style>`, so text typed there could close the element and
//! put markup on the page (`</textarea><meta http-equiv=refresh …>`, or a button that reuses
//! the page's CSRF token). Every textarea's content goes through [`textarea_text`]; a test
//! below reads the views' sources to hold every page to it.

/// `text` escaped for a textarea's content, as the textarea will show it.
pub fn textarea_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    // An HTML parser drops one newline right after `<textarea>`: lead with one, so text
    // that starts with a newline keeps it.
    out.push('\n');
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use leptos::prelude::*;

    use super::textarea_text;

    const BREAKOUT: &str = "</textarea><meta http-equiv=refresh content=\"0;url=https://evil.example\"><button formaction=/admin/agents/x/revoke>&amp;";

    #[test]
    fn textarea_text_cannot_close_its_textarea() {
        let value = textarea_text(BREAKOUT);
        let html = view! { <textarea name="x">{value}</textarea> }.to_html();
        assert_eq!(html.matches("</textarea").count(), 1, "{html}");
        assert!(!html.contains("<meta") && !html.contains("<button"), "{html}");
        // Shown as typed: escaped once, never twice (were Leptos to start escaping a
        // textarea's children itself, `&amp;amp;` would show up here).
        assert!(html.contains("&lt;/textarea&gt;&lt;meta http-equiv"), "{html}");
        assert!(html.contains("&amp;amp;</textarea>"), "{html}");
        assert!(html.starts_with("<textarea name=\"x\">\n&lt;"), "{html}");
    }

    /// Every `<textarea>` in the views takes its content from `textarea_text`, and no view
    /// writes raw HTML.
    #[test]
    fn every_view_escapes_its_textareas_and_writes_no_raw_html() {
        // Every view's source, sections in subfolders (`admin/`) included.
        let mut sources = Vec::new();
        let mut folders = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("the views' sources") {
                let path = entry.expect("a source file").path();
                let file = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or_default()
                    .to_string();
                if path.is_dir() {
                    folders.push(path);
                } else if file.ends_with(".rs") && file != "textarea.rs" {
                    sources.push((file, std::fs::read_to_string(&path).expect("readable source")));
                }
            }
        }
        let mut textareas = 0;
        for (file, source) in &sources {
            for (at, _) in source.match_indices("<textarea") {
                textareas += 1;
                let element = &source[at..];
                let end = element.find("</textarea>").unwrap_or(element.len());
                let open_end = element.find('>').unwrap_or(0);
                let content = element[open_end + 1..end].trim();
                assert!(
                    content.starts_with("{textarea_text(") && content.ends_with(")}"),
                    "{file}: a textarea's content must go through textarea_text: {}",
                    &element[..end]
                );
            }
            for raw in ["inner_html", "<noscript", "<style"] {
                assert!(!source.contains(raw), "{file} writes raw HTML ({raw})");
            }
        }
        assert!(textareas >= 5, "the views' textareas were found ({textareas})");
    }
}
