//! Unified diffs, understood: files, hunks and numbered lines, for the console and the
//! terminal client to render. Pure; anything that is not a diff stays readable as text.

/// One file's changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    /// The file's name (the new path, or the old one for deletions); empty for a diff
    /// without file headers.
    pub path: String,
    pub hunks: Vec<Hunk>,
    pub added: usize,
    pub removed: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ …` line.
    pub header: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
    /// `\ No newline at end of file` and similar.
    Note,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    pub text: String,
}

/// Parses unified diff text. Text that has no hunks comes back as one file whose lines
/// are all context, numbered from 1, so nothing submitted is ever hidden.
pub fn parse(diff: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut lines = diff.lines().peekable();
    let (mut old, mut new) = (0_u32, 0_u32);
    while let Some(line) = lines.next() {
        if let Some(old_path) = line.strip_prefix("--- ")
            && let Some(new_path) = lines.peek().and_then(|next| next.strip_prefix("+++ "))
        {
            let path = pick_path(old_path, new_path);
            lines.next();
            files.push(FileDiff {
                path,
                hunks: Vec::new(),
                added: 0,
                removed: 0,
            });
            continue;
        }
        if line.starts_with("@@")
            && let Some((old_start, new_start)) = hunk_starts(line)
        {
            if files.is_empty() {
                files.push(FileDiff {
                    path: String::new(),
                    hunks: Vec::new(),
                    added: 0,
                    removed: 0,
                });
            }
            (old, new) = (old_start, new_start);
            if let Some(file) = files.last_mut() {
                file.hunks.push(Hunk {
                    header: line.to_string(),
                    lines: Vec::new(),
                });
            }
            continue;
        }
        let Some(file) = files.last_mut() else { continue };
        let Some(hunk) = file.hunks.last_mut() else { continue };
        let (kind, text) = match line.chars().next() {
            Some('+') => (LineKind::Added, &line[1..]),
            Some('-') => (LineKind::Removed, &line[1..]),
            Some(' ') => (LineKind::Context, &line[1..]),
            Some('\\') => (LineKind::Note, line),
            None => (LineKind::Context, ""),
            // Headers between files (`diff --git`, `index …`) are not content.
            Some(_) => continue,
        };
        let (old_no, new_no) = match kind {
            LineKind::Added => (None, Some(bump(&mut new))),
            LineKind::Removed => (Some(bump(&mut old)), None),
            LineKind::Context => (Some(bump(&mut old)), Some(bump(&mut new))),
            LineKind::Note => (None, None),
        };
        match kind {
            LineKind::Added => file.added += 1,
            LineKind::Removed => file.removed += 1,
            _ => {}
        }
        hunk.lines.push(DiffLine {
            kind,
            old: old_no,
            new: new_no,
            text: text.to_string(),
        });
    }
    files.retain(|file| !file.hunks.is_empty());
    if files.is_empty() && !diff.trim().is_empty() {
        let lines = diff
            .lines()
            .enumerate()
            .map(|(n, text)| DiffLine {
                kind: LineKind::Context,
                old: Some(n as u32 + 1),
                new: Some(n as u32 + 1),
                text: text.to_string(),
            })
            .collect();
        files.push(FileDiff {
            path: String::new(),
            hunks: vec![Hunk {
                header: String::new(),
                lines,
            }],
            added: 0,
            removed: 0,
        });
    }
    files
}

fn bump(counter: &mut u32) -> u32 {
    let current = *counter;
    *counter += 1;
    current
}

/// `a/src/x.rs` and `b/src/x.rs` name `src/x.rs`; `/dev/null` means created or deleted;
/// two different names (a rename, or `current` and `proposed`) are shown as `old → new`.
fn pick_path(old: &str, new: &str) -> String {
    let clean = |path: &str| {
        let path = path.split('\t').next().unwrap_or(path).trim();
        path.strip_prefix("a/")
            .or_else(|| path.strip_prefix("b/"))
            .unwrap_or(path)
            .to_string()
    };
    let (old, new) = (clean(old), clean(new));
    if new == "/dev/null" || old == new {
        old
    } else if old == "/dev/null" {
        new
    } else {
        format!("{old} → {new}")
    }
}

/// The starting line numbers of a hunk header `@@ -a[,b] +c[,d] @@`.
fn hunk_starts(header: &str) -> Option<(u32, u32)> {
    let mut parts = header.split_whitespace().skip(1);
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let start = |range: &str| range.split(',').next()?.parse::<u32>().ok();
    Some((start(old)?, start(new)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_FILES: &str = "diff --git a/app.yaml b/app.yaml\nindex 1..2 100644\n--- a/app.yaml\n+++ b/app.yaml\n@@ -3,3 +3,3 @@ spec:\n   replicas: 6\n-  image: api:1.4.2\n+  image: api:1.5.0\n   strategy: rolling\n--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-gone\n-too\n\\ No newline at end of file\n";

    #[test]
    fn files_hunks_and_line_numbers() {
        let files = parse(TWO_FILES);
        assert_eq!(files.len(), 2);
        assert_eq!(
            (files[0].path.as_str(), files[0].added, files[0].removed),
            ("app.yaml", 1, 1)
        );
        let lines = &files[0].hunks[0].lines;
        assert_eq!(
            lines[0],
            DiffLine {
                kind: LineKind::Context,
                old: Some(3),
                new: Some(3),
                text: "  replicas: 6".into()
            }
        );
        assert_eq!(
            (lines[1].kind, lines[1].old, lines[1].new),
            (LineKind::Removed, Some(4), None)
        );
        assert_eq!(
            (lines[2].kind, lines[2].old, lines[2].new),
            (LineKind::Added, None, Some(4))
        );
        assert_eq!((lines[3].old, lines[3].new), (Some(5), Some(5)));
        assert_eq!((files[1].path.as_str(), files[1].removed), ("old.txt", 2));
        assert_eq!(files[1].hunks[0].lines[2].kind, LineKind::Note);
    }

    #[test]
    fn text_that_is_not_a_diff_is_kept_whole() {
        let files = parse("just a note\nsecond line");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].hunks[0].lines.len(), 2);
        assert!(parse("").is_empty());
    }

    #[test]
    fn renamed_or_computed_files_show_both_names() {
        let files = parse("--- current\n+++ proposed\n@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!(files[0].path, "current → proposed");
        let created = parse("--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n");
        assert_eq!(created[0].path, "new.txt");
    }

    #[test]
    fn hunks_without_file_headers() {
        let files = parse("@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!((files.len(), files[0].added, files[0].removed), (1, 1, 1));
    }
}
