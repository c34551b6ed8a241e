//! Unified diffs, understood: files, hunks and numbered lines, for the console and the
//! terminal client to render. Pure; anything that is not a diff stays readable as text.

/// One file's changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    /// The file's name (the new path, or the old one for deletions); empty for a diff
    /// without file headers.
    pub path: String,
    /// The lines before the first hunk, as sent, except the `---`/`+++` pair the path
    /// comes from: `diff --git`, modes, renames, `index`, `Binary files … differ`, a
    /// `GIT binary patch` and any other text. All a file without hunks has.
    pub meta: Vec<String>,
    pub hunks: Vec<Hunk>,
    pub added: usize,
    pub removed: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ …` line.
    pub header: String,
    pub lines: Vec<DiffLine>,
    /// Lines after the hunk's counted lines and before the next hunk or file, as sent:
    /// not part of the change as `git apply` reads it, but never hidden.
    pub outside: Vec<String>,
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

impl FileDiff {
    fn new(path: String) -> FileDiff {
        FileDiff {
            path,
            meta: Vec::new(),
            hunks: Vec::new(),
            added: 0,
            removed: 0,
        }
    }

    /// Every line it shows: meta, hunk headers, hunk lines and lines outside hunks.
    pub fn line_count(&self) -> usize {
        self.meta.len()
            + self
                .hunks
                .iter()
                .map(|hunk| 1 + hunk.lines.len() + hunk.outside.len())
                .sum::<usize>()
    }
}

/// Where the parser is.
struct Cursor {
    /// Lines the current hunk still declares, old and new side (from its header).
    old_left: u32,
    new_left: u32,
    /// The next line numbers.
    old: u32,
    new: u32,
    /// The current file was opened by `diff --git` and has not had its `---`/`+++` yet.
    awaiting_file_header: bool,
    /// A rename's old name, until `rename to` names the new one.
    renamed_from: Option<String>,
}

/// Parses unified diff text, following hunk headers' line counts (so a removed line that
/// starts with `--` is not taken for a file header). Nothing submitted is ever dropped but
/// the `---`/`+++` lines a file's path comes from: git's extended headers, binary patches
/// and text outside hunks are kept as lines of their file. Text that has no hunks and no
/// file headers comes back as one file whose lines are all context, numbered from 1.
pub fn parse(diff: &str) -> Vec<FileDiff> {
    parse_recording(diff, &mut Vec::new(), &mut Vec::new())
}

/// What one line of a diff is, for a screen that shows the text as sent (the terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRole {
    /// `diff --git`, `--- a/x`, `+++ b/x`, and whatever else a file has before its first
    /// hunk (modes, `index`, binary markers).
    FileHeader,
    /// `@@ -1,3 +1,4 @@`
    Hunk,
    Added,
    Removed,
    Context,
    /// Anything else: notes, text outside hunks, text that is no diff.
    Other,
}

/// A file a diff names, where its first line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStart {
    pub name: String,
    /// Index of the file's first line among the diff's lines.
    pub first_line: usize,
    pub added: usize,
    pub removed: usize,
}

/// The diff's lines as sent, each with its role, and the files its headers open: the
/// same reading as [`parse`], line by line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outline {
    pub roles: Vec<LineRole>,
    pub files: Vec<FileStart>,
}

/// Reads `diff` for a screen that shows it as sent: each line's role and where each file starts.
pub fn outline(diff: &str) -> Outline {
    let mut roles = Vec::new();
    let mut starts = Vec::new();
    let files = parse_recording(diff, &mut roles, &mut starts);
    let files = files
        .into_iter()
        .zip(starts)
        .filter_map(|(file, start)| {
            start.map(|first_line| FileStart {
                name: file.path,
                first_line,
                added: file.added,
                removed: file.removed,
            })
        })
        .collect();
    Outline { roles, files }
}

/// [`parse`], recording each line's role and, per file, the line its header starts at
/// (`None` for a file no header opened).
fn parse_recording(diff: &str, roles: &mut Vec<LineRole>, starts: &mut Vec<Option<usize>>) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut lines = diff.lines().enumerate().peekable();
    let mut at = Cursor {
        old_left: 0,
        new_left: 0,
        old: 0,
        new: 0,
        awaiting_file_header: false,
        renamed_from: None,
    };
    let mut saw_file_header = false;
    while let Some((index, line)) = lines.next() {
        if at.old_left > 0 || at.new_left > 0 {
            roles.push(match line.chars().next() {
                Some('+') => LineRole::Added,
                Some('-') => LineRole::Removed,
                Some('\\') => LineRole::Other,
                _ => LineRole::Context,
            });
            if let Some(file) = files.last_mut() {
                push_hunk_line(file, &mut at, line);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            saw_file_header = true;
            roles.push(LineRole::FileHeader);
            let mut file = FileDiff::new(git_header_path(rest));
            file.meta.push(line.to_string());
            files.push(file);
            starts.push(Some(index));
            at.awaiting_file_header = true;
            at.renamed_from = None;
            continue;
        }
        if let Some(old_path) = line.strip_prefix("--- ")
            && let Some(new_path) = lines.peek().and_then(|(_, next)| next.strip_prefix("+++ "))
        {
            saw_file_header = true;
            let path = pick_path(old_path, new_path);
            lines.next();
            roles.extend([LineRole::FileHeader, LineRole::FileHeader]);
            match files.last_mut() {
                Some(file) if at.awaiting_file_header => file.path = path,
                _ => {
                    files.push(FileDiff::new(path));
                    starts.push(Some(index));
                }
            }
            at.awaiting_file_header = false;
            continue;
        }
        if line.starts_with("@@")
            && let Some((old_start, old_count, new_start, new_count)) = hunk_ranges(line)
        {
            roles.push(LineRole::Hunk);
            if files.is_empty() {
                files.push(FileDiff::new(String::new()));
                starts.push(None);
            }
            (at.old, at.new) = (old_start, new_start);
            (at.old_left, at.new_left) = (old_count, new_count);
            at.awaiting_file_header = false;
            if let Some(file) = files.last_mut() {
                file.hunks.push(Hunk {
                    header: line.to_string(),
                    lines: Vec::new(),
                    outside: Vec::new(),
                });
            }
            continue;
        }
        if files.is_empty() {
            files.push(FileDiff::new(String::new()));
            starts.push(None);
        }
        let Some(file) = files.last_mut() else { continue };
        // Everything a header-opened file has before its first hunk is its heading: modes,
        // `index`, binary markers and patches, notes.
        let opened_by_header = matches!(starts.last(), Some(Some(_)));
        roles.push(if opened_by_header && file.hunks.is_empty() {
            LineRole::FileHeader
        } else {
            LineRole::Other
        });
        if at.awaiting_file_header {
            note_rename(file, &mut at, line);
            // A binary change has no `---`/`+++`: a pair after it starts another file.
            if line.starts_with("Binary files ") || line.starts_with("GIT binary patch") {
                at.awaiting_file_header = false;
            }
        }
        match file.hunks.last_mut() {
            // `\ No newline at end of file` right after a hunk's last line belongs to it.
            Some(hunk) if line.starts_with('\\') && hunk.outside.is_empty() => hunk.lines.push(DiffLine {
                kind: LineKind::Note,
                old: None,
                new: None,
                text: line.to_string(),
            }),
            Some(hunk) => hunk.outside.push(line.to_string()),
            None => file.meta.push(line.to_string()),
        }
    }
    let has_hunks = files.iter().any(|file| !file.hunks.is_empty());
    if has_hunks || saw_file_header {
        return files;
    }
    if diff.trim().is_empty() {
        return Vec::new();
    }
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
    let mut whole = FileDiff::new(String::new());
    whole.hunks.push(Hunk {
        header: String::new(),
        lines,
        outside: Vec::new(),
    });
    starts.clear();
    starts.push(None);
    vec![whole]
}

/// One line inside a hunk's declared length.
fn push_hunk_line(file: &mut FileDiff, at: &mut Cursor, line: &str) {
    let Some(hunk) = file.hunks.last_mut() else { return };
    let (kind, text) = match line.chars().next() {
        Some('+') => (LineKind::Added, &line[1..]),
        Some('-') => (LineKind::Removed, &line[1..]),
        Some(' ') => (LineKind::Context, &line[1..]),
        Some('\\') => (LineKind::Note, line),
        // An empty line (trailing spaces trimmed) or a malformed one: shown whole, as context.
        _ => (LineKind::Context, line),
    };
    let (old_no, new_no) = match kind {
        LineKind::Added => (None, Some(take_line(&mut at.new, &mut at.new_left))),
        LineKind::Removed => (Some(take_line(&mut at.old, &mut at.old_left)), None),
        LineKind::Context => (
            Some(take_line(&mut at.old, &mut at.old_left)),
            Some(take_line(&mut at.new, &mut at.new_left)),
        ),
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

/// `rename from x` / `rename to y` (and `copy …`) name a file that has no `---`/`+++`.
fn note_rename(file: &mut FileDiff, at: &mut Cursor, line: &str) {
    if let Some(from) = line
        .strip_prefix("rename from ")
        .or_else(|| line.strip_prefix("copy from "))
    {
        at.renamed_from = Some(from.to_string());
    } else if let Some(to) = line
        .strip_prefix("rename to ")
        .or_else(|| line.strip_prefix("copy to "))
        && let Some(from) = at.renamed_from.take()
    {
        file.path = format!("{from} → {to}");
    }
}

/// `a/x b/x` from `diff --git a/x b/x`: the file's name, or `old → new`.
fn git_header_path(names: &str) -> String {
    match names.rsplit_once(" b/") {
        Some((old, new)) => pick_path(old, &format!("b/{new}")),
        None => names.to_string(),
    }
}

/// The next line number on one side, counting the line against the hunk's length.
fn take_line(number: &mut u32, left: &mut u32) -> u32 {
    let current = *number;
    *number = number.saturating_add(1);
    *left = left.saturating_sub(1);
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

/// Start and length of each side of a hunk header `@@ -a[,b] +c[,d] @@`; a missing
/// length means 1.
fn hunk_ranges(header: &str) -> Option<(u32, u32, u32, u32)> {
    let mut parts = header.split_whitespace().skip(1);
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let range = |range: &str| -> Option<(u32, u32)> {
        match range.split_once(',') {
            Some((start, length)) => Some((start.parse().ok()?, length.parse().ok()?)),
            None => Some((range.parse().ok()?, 1)),
        }
    };
    let (old_start, old_length) = range(old)?;
    let (new_start, new_length) = range(new)?;
    Some((old_start, old_length, new_start, new_length))
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

    /// A mode change, a pure rename, an edited file and a binary patch, as `git diff --binary` writes them.
    const GIT_EXTENDED: &str = "\
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
diff --git a/old.txt b/new.txt
similarity index 100%
rename from old.txt
rename to new.txt
diff --git a/app.yaml b/app.yaml
index 1..2 100644
--- a/app.yaml
+++ b/app.yaml
@@ -1 +1 @@
-a
+b
diff --git a/logo.png b/logo.png
index 3..4 100644
GIT binary patch
literal 12
TcmZ?wbhEHbRA5kG00000

literal 0
HcmV?d00001

diff --git a/gone.bin b/gone.bin
deleted file mode 100644
Binary files a/gone.bin and /dev/null differ
";

    #[test]
    fn git_extended_headers_and_binary_patches_are_kept() {
        let files = parse(GIT_EXTENDED);
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(
            paths,
            ["run.sh", "old.txt → new.txt", "app.yaml", "logo.png", "gone.bin"]
        );
        assert_eq!(
            files[0].meta,
            ["diff --git a/run.sh b/run.sh", "old mode 100644", "new mode 100755"]
        );
        assert!(files[0].hunks.is_empty());
        assert_eq!(
            files[1].meta[1..],
            ["similarity index 100%", "rename from old.txt", "rename to new.txt"]
        );
        assert_eq!(files[2].meta, ["diff --git a/app.yaml b/app.yaml", "index 1..2 100644"]);
        assert_eq!((files[2].hunks.len(), files[2].added, files[2].removed), (1, 1, 1));
        assert_eq!(
            files[3].meta[1..],
            [
                "index 3..4 100644",
                "GIT binary patch",
                "literal 12",
                "TcmZ?wbhEHbRA5kG00000",
                "",
                "literal 0",
                "HcmV?d00001",
                ""
            ]
        );
        assert_eq!(
            files[4].meta[1..],
            [
                "deleted file mode 100644",
                "Binary files a/gone.bin and /dev/null differ"
            ]
        );
        // Every line of the input is somewhere, but the `---`/`+++` pair named by the path.
        let shown: usize = files.iter().map(FileDiff::line_count).sum();
        assert_eq!(shown, GIT_EXTENDED.lines().count() - 2);
    }

    #[test]
    fn a_binary_only_diff_is_its_lines() {
        let files = parse("diff --git a/x.bin b/x.bin\nBinary files a/x.bin and b/x.bin differ\n");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "x.bin");
        assert_eq!(files[0].meta.len(), 2);
        // A header pair after a binary change is another file.
        let files = parse(
            "diff --git a/x.bin b/x.bin\nBinary files a/x.bin and b/x.bin differ\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n",
        );
        assert_eq!((files[0].path.as_str(), files[1].path.as_str()), ("x.bin", "y"));
    }

    #[test]
    fn hunk_lengths_decide_what_is_inside() {
        // `--- x` and `+++ y` inside the declared length are a removed and an added line.
        let files = parse("--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,2 @@\n--- old comment\n+++ new comment\n keep\n");
        assert_eq!(files.len(), 1);
        let kinds: Vec<LineKind> = files[0].hunks[0].lines.iter().map(|line| line.kind).collect();
        assert_eq!(kinds, [LineKind::Removed, LineKind::Added, LineKind::Context]);
        // Past it, lines are outside the hunk (git apply ignores them) and shown as sent.
        let files = parse("@@ -1 +1 @@\n-a\n+b\n+c\nstray text\n@@ -9 +9 @@\n-x\n+y\n");
        let hunks = &files[0].hunks;
        assert_eq!(hunks.len(), 2);
        assert_eq!(hunks[0].lines.len(), 2);
        assert_eq!(hunks[0].outside, ["+c", "stray text"]);
        assert_eq!((files[0].added, files[0].removed), (2, 2));
        // Text before the first file is kept too.
        let files = parse("Here is the change:\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!(files[0].meta, ["Here is the change:"]);
        assert_eq!(files[1].path, "x");
    }

    #[test]
    fn the_outline_gives_each_line_its_role_and_lists_the_files() {
        use LineRole::*;
        let diff = "diff --git a/app.toml b/app.toml\nindex 1..2 100644\n--- a/app.toml\n+++ b/app.toml\n@@ -1,2 +1,2 @@\n name = \"x\"\n-replicas = 2\n+replicas = 3\n--- a/db.sql\n+++ b/db.sql\n@@ -0,0 +1,2 @@\n+-- comment\n+DROP TABLE t;\n";
        let outline = outline(diff);
        assert_eq!(
            outline.files,
            vec![
                FileStart {
                    name: "app.toml".into(),
                    first_line: 0,
                    added: 1,
                    removed: 1
                },
                FileStart {
                    name: "db.sql".into(),
                    first_line: 8,
                    added: 2,
                    removed: 0
                },
            ]
        );
        assert_eq!(
            outline.roles,
            vec![
                FileHeader, FileHeader, FileHeader, FileHeader, Hunk, Context, Removed, Added, FileHeader, FileHeader,
                Hunk, Added, Added
            ]
        );
    }

    #[test]
    fn the_outline_follows_hunk_lengths_and_leaves_plain_text_alone() {
        let tricky = outline("--- a/x.sql\n+++ b/x.sql\n@@ -1,2 +1,2 @@\n--- old comment\n+++ new\n keep\n");
        assert_eq!(tricky.files.len(), 1);
        assert_eq!(tricky.roles[3], LineRole::Removed);
        assert_eq!(tricky.roles[4], LineRole::Added);
        let deleted = outline("--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n");
        assert_eq!(deleted.files[0].name, "gone.txt");
        let words = outline("just words");
        assert_eq!(words.roles, vec![LineRole::Other]);
        assert!(words.files.is_empty());
    }

    #[test]
    fn a_file_is_all_heading_until_its_first_hunk() {
        use LineRole::*;
        let binary = outline(
            "diff --git a/logo.png b/logo.png\nindex 1..2\nGIT binary patch\nliteral 5\nzcmV\n--- a/x\n+++ b/x\nnote\n@@ -1 +1 @@\n-a\n+b\ntrailing",
        );
        assert_eq!(
            binary.roles,
            vec![
                FileHeader, FileHeader, FileHeader, FileHeader, FileHeader, FileHeader, FileHeader, FileHeader, Hunk,
                Removed, Added, Other
            ]
        );
        assert_eq!(binary.files.len(), 2);
        let preamble = outline("Here is the change:\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!(preamble.roles[0], Other);
        assert_eq!(preamble.files[0].first_line, 1);
    }
}
