//! The shape ARCHITECTURE.md promises, checked on the source: modules import one way, an
//! event kind is spelled in one place, the engine builds no JSON by hand, and no engine
//! or console file grows past what one reader can hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use signoff_app::Kind;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                found.push((path, text));
            }
        }
    }
    found.sort();
    found
}

/// The code without its unit tests (`#[cfg(test)] mod tests { … }` at the end, or a
/// `mod tests;` file: tests may import what they test from anywhere) and without comment
/// lines, which may name any module.
fn product_text(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A file's module path within its crate, `depth` segments deep (`web::admin`).
fn module_of(src: &Path, file: &Path, depth: usize) -> Option<Vec<String>> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    if parts.last().is_some_and(|last| last == "tests") {
        return None;
    }
    (!parts.is_empty()).then(|| parts.into_iter().take(depth).collect())
}

/// The module paths `text` names after `prefix` (`crate::`, `super::`), each as its
/// segments, with one level of braces (`crate::{store::X, bus}`) opened.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let segments = |path: &str| -> Vec<String> {
        path.split("::")
            .map(|part| {
                part.trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|part| part.starts_with(|c: char| c.is_ascii_lowercase()))
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `signoff_crate::`, or `super::super::`
        }
        let rest = &text[at + prefix.len()..];
        match rest.strip_prefix('{') {
            Some(inner) => {
                let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
                found.extend(inner.split(',').map(segments));
            }
            None => found.push(segments(rest)),
        }
    }
    found.retain(|path| !path.is_empty());
    found
}

/// The modules `text` names through `crate::a::b` paths, `depth` segments deep.
fn imports(text: &str, depth: usize) -> BTreeSet<Vec<String>> {
    paths_after(text, "crate::")
        .into_iter()
        .map(|path| path.into_iter().take(depth).collect())
        .collect()
}

/// The module graph of the crate at `src`, `depth` segments deep, and its circles.
fn circles(src: &Path, depth: usize) -> Vec<BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<Vec<String>> = sources(src)
        .iter()
        .filter_map(|(file, _)| module_of(src, file, depth))
        .collect();
    for (file, text) in sources(src) {
        let Some(me) = module_of(src, &file, depth) else {
            continue;
        };
        let text = product_text(&text);
        let text = text.as_str();
        let mut targets = imports(text, depth);
        // `super::sibling` from a module two levels deep names its sibling.
        if me.len() == 2 && !file.ends_with("mod.rs") {
            for path in paths_after(text, "super::") {
                targets.insert([me[..1].to_vec(), path].concat().into_iter().take(depth).collect());
            }
        }
        for target in targets {
            // A path into a module: the deepest known module it names.
            let Some(target) = (1..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|prefix| modules.contains(prefix))
            else {
                continue;
            };
            // A module and its own parent or child are one unit at this depth.
            if target.starts_with(&me) || me.starts_with(&target) {
                continue;
            }
            edges.entry(me.join("::")).or_default().insert(target.join("::"));
        }
    }
    strongly_connected(&edges)
}

/// Tarjan's algorithm, returning the components of more than one module.
fn strongly_connected(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(walk: &mut Walk<'a>, node: &'a str) {
        let n = walk.index.len();
        walk.index.insert(node, n);
        walk.low.insert(node, n);
        walk.stack.push(node);
        for next in walk.edges.get(node).into_iter().flatten() {
            if !walk.index.contains_key(next.as_str()) {
                visit(walk, next);
                let low = walk.low[node].min(walk.low[next.as_str()]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&next.as_str()) {
                let low = walk.low[node].min(walk.index[next.as_str()]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut component = BTreeSet::new();
            while let Some(top) = walk.stack.pop() {
                component.insert(top.to_string());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                walk.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    for krate in ["app", "server", "tui"] {
        let src = root().join(krate).join("src");
        for depth in [1, 2] {
            let found = circles(&src, depth);
            assert!(
                found.is_empty(),
                "{krate}, {depth} level(s) deep: import circles {found:?}"
            );
        }
    }
}

#[test]
fn the_checker_finds_a_circle_when_there_is_one() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    edges.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    let found = strongly_connected(&edges);
    assert_eq!(found, vec![BTreeSet::from(["a".into(), "b".into(), "c".into()])]);
    assert_eq!(
        imports(
            "use crate::web::admin::{x}; crate::Result; signoff_crate::z; use crate::{bus::Y, Error};",
            2
        ),
        BTreeSet::from([vec!["bus".to_string()], vec!["web".to_string(), "admin".to_string()]])
    );
}

/// Product files (not tests) that spell event kinds as strings.
#[test]
fn event_kinds_are_spelled_in_at_most_two_product_files() {
    let mut files = Vec::new();
    for krate in ["app", "server", "tui"] {
        for (file, text) in sources(&root().join(krate).join("src")) {
            if file.components().any(|part| part.as_os_str() == "tests") {
                continue;
            }
            let text = product_text(&text);
            if Kind::ALL
                .iter()
                .any(|kind| text.contains(&format!("\"{}\"", kind.as_str())))
            {
                files.push(file);
            }
        }
    }
    let script = std::fs::read_to_string(root().join("style/console.js")).expect("the console's script");
    assert!(
        !Kind::ALL.iter().any(|kind| script.contains(kind.as_str())),
        "the console's script takes its kinds from the page"
    );
    assert!(
        files.len() <= 2,
        "event kinds are spelled in {} product files: {files:?}",
        files.len()
    );
    assert!(
        files.iter().any(|file| file.ends_with("app/src/model/event.rs")),
        "the vocabulary itself spells them: {files:?}"
    );
}

#[test]
fn the_engine_builds_no_json_by_hand_and_its_files_stay_small() {
    for (file, text) in sources(&root().join("server/src/engine")) {
        assert!(!text.contains("json!"), "{} builds JSON by hand", file.display());
        let lines = text.lines().count();
        assert!(lines <= 500, "{} has {lines} lines", file.display());
    }
}

#[test]
fn console_files_stay_under_700_lines() {
    for dir in ["app/src/ui", "server/src/web"] {
        for (file, text) in sources(&root().join(dir)) {
            let lines = text.lines().count();
            assert!(lines <= 700, "{} has {lines} lines", file.display());
        }
    }
}
