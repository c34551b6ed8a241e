//! Reading a unified diff: what each line is, and which files it touches.

/// What a line of a unified diff is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// `diff --git …`, `--- a/x`, `+++ b/x`, `index …` and similar.
    FileHeader,
    /// `@@ -1,3 +1,4 @@`
    Hunk,
    Added,
    Removed,
    Context,
    /// Anything else (`\ No newline at end of file`, free text).
    Other,
}

/// One file of a (possibly multi-file) diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffFile {
    pub name: String,
    /// Index of the file's first header line among the diff's lines.
    pub first_line: usize,
    pub added: usize,
    pub removed: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    pub kinds: Vec<LineKind>,
    pub files: Vec<DiffFile>,
}

/// Classifies every line of `diff` (split on `\n`). Hunk headers' line counts are followed,
/// so a removed line that happens to start with `---` is not taken for a file header.
pub fn analyse(diff: &str) -> Analysis {
    let lines: Vec<&str> = diff.lines().collect();
    let mut analysis = Analysis::default();
    let mut old_left = 0u64;
    let mut new_left = 0u64;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let in_hunk = old_left > 0 || new_left > 0;
        let kind = if in_hunk {
            match line.as_bytes().first() {
                Some(b'+') => {
                    new_left = new_left.saturating_sub(1);
                    LineKind::Added
                }
                Some(b'-') => {
                    old_left = old_left.saturating_sub(1);
                    LineKind::Removed
                }
                Some(b'\\') => LineKind::Other,
                _ => {
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                    LineKind::Context
                }
            }
        } else if line.starts_with("diff --git ") {
            analysis.files.push(DiffFile {
                name: git_header_name(line),
                first_line: index,
                added: 0,
                removed: 0,
            });
            LineKind::FileHeader
        } else if line.starts_with("--- ") && lines.get(index + 1).is_some_and(|next| next.starts_with("+++ ")) {
            let new_name = header_name(&lines[index + 1][4..]);
            let old_name = header_name(&line[4..]);
            let name = if new_name == "/dev/null" { old_name } else { new_name };
            // A `diff --git` line just before already opened this file.
            let opened_by_git = analysis.files.last().is_some_and(|file| {
                analysis.kinds[file.first_line..]
                    .iter()
                    .all(|kind| *kind == LineKind::FileHeader)
            });
            match analysis.files.last_mut() {
                Some(file) if opened_by_git => file.name = name,
                _ => analysis.files.push(DiffFile {
                    name,
                    first_line: index,
                    added: 0,
                    removed: 0,
                }),
            }
            analysis.kinds.push(LineKind::FileHeader);
            analysis.kinds.push(LineKind::FileHeader);
            index += 2;
            continue;
        } else if let Some((old, new)) = hunk_counts(line) {
            old_left = old;
            new_left = new;
            LineKind::Hunk
        } else if analysis.files.last().is_some_and(|file| {
            analysis.kinds[file.first_line..]
                .iter()
                .all(|kind| *kind == LineKind::FileHeader)
        }) {
            // `index …`, `new file mode …`, `similarity index …` between headers.
            LineKind::FileHeader
        } else {
            LineKind::Other
        };
        if let Some(file) = analysis.files.last_mut() {
            match kind {
                LineKind::Added => file.added += 1,
                LineKind::Removed => file.removed += 1,
                _ => {}
            }
        }
        analysis.kinds.push(kind);
        index += 1;
    }
    analysis
}

/// `b/src/main.rs` → `src/main.rs`; a tab-separated timestamp after the name is dropped.
fn header_name(raw: &str) -> String {
    let name = raw.split('\t').next().unwrap_or(raw).trim();
    name.strip_prefix("a/")
        .or_else(|| name.strip_prefix("b/"))
        .unwrap_or(name)
        .to_string()
}

fn git_header_name(line: &str) -> String {
    // `diff --git a/x b/x`: take the second path.
    let rest = &line["diff --git ".len()..];
    match rest.rsplit_once(" b/") {
        Some((_, new)) => new.to_string(),
        None => rest.to_string(),
    }
}

/// `@@ -l,s +l,s @@` → (old count, new count); a missing count means 1.
fn hunk_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let count = |range: &str| -> Option<u64> {
        match range.split_once(',') {
            Some((_, count)) => count.parse().ok(),
            None => range.parse::<u64>().ok().map(|_| 1),
        }
    };
    Some((count(old)?, count(new)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineKind::*;

    #[test]
    fn multi_file_diff_lists_files_with_counts() {
        let diff = "diff --git a/app.toml b/app.toml\nindex 1..2 100644\n--- a/app.toml\n+++ b/app.toml\n@@ -1,2 +1,2 @@\n name = \"x\"\n-replicas = 2\n+replicas = 3\n--- a/db.sql\n+++ b/db.sql\n@@ -0,0 +1,2 @@\n+-- comment\n+DROP TABLE t;\n";
        let analysis = analyse(diff);
        assert_eq!(
            analysis.files,
            vec![
                DiffFile {
                    name: "app.toml".into(),
                    first_line: 0,
                    added: 1,
                    removed: 1
                },
                DiffFile {
                    name: "db.sql".into(),
                    first_line: 8,
                    added: 2,
                    removed: 0
                },
            ]
        );
        assert_eq!(
            analysis.kinds,
            vec![
                FileHeader, FileHeader, FileHeader, FileHeader, Hunk, Context, Removed, Added, FileHeader, FileHeader,
                Hunk, Added, Added
            ]
        );
    }

    #[test]
    fn a_removed_line_starting_with_dashes_stays_removed() {
        let diff = "--- a/x.sql\n+++ b/x.sql\n@@ -1,2 +1,2 @@\n--- old comment\n+++ new\n keep\n";
        let analysis = analyse(diff);
        assert_eq!(analysis.files.len(), 1);
        // The hunk says one line leaves and one enters besides the kept one.
        assert_eq!(analysis.kinds[3], Removed);
        assert_eq!(analysis.kinds[4], Added);
    }

    #[test]
    fn deleted_file_is_named_by_its_old_path_and_plain_text_is_other() {
        let analysis = analyse("--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n");
        assert_eq!(analysis.files[0].name, "gone.txt");
        assert_eq!(analyse("just words").kinds, vec![Other]);
        assert_eq!(hunk_counts("@@ -3 +4,0 @@ fn x"), Some((1, 0)));
    }
}
