//! A submitted diff as the console shows it: per file, unified or side by side, long files
//! collapsed. Used by the request page and by the admin console's version comparison.

use leptos::prelude::*;

use super::visible::agent_text;
use crate::difftext::{DiffLine, FileDiff, LineKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffMode {
    Unified,
    Split,
}

/// Files longer than this start collapsed, with their +/- summary showing.
const COLLAPSE_LINES: usize = 200;

pub(super) fn diff_view(files: Vec<FileDiff>, mode: DiffMode) -> impl IntoView + use<> {
    if files.is_empty() {
        return view! { <p class="muted">"No diff was submitted."</p> }.into_any();
    }
    let total_added: usize = files.iter().map(|f| f.added).sum();
    let total_removed: usize = files.iter().map(|f| f.removed).sum();
    view! {
        <p class="diff-summary">
            {format!("{} file(s) ", files.len())}
            <span class="plus">{format!("+{total_added}")}</span> " " <span class="minus">{format!("−{total_removed}")}</span>
        </p>
        {files.into_iter().map(|file| {
            let lines = file.line_count();
            let open = lines <= COLLAPSE_LINES;
            let name = if file.path.is_empty() { "changes".to_string() } else { file.path.clone() };
            // Modes, renames, `index`, binary patches: part of what is signed, so shown.
            let meta = (!file.meta.is_empty()).then(|| {
                let text = file.meta.join("\n");
                view! { <pre class="diff-meta">{agent_text(text)}</pre> }
            });
            let table = (!file.hunks.is_empty()).then(|| match mode {
                DiffMode::Unified => unified_table(&file).into_any(),
                DiffMode::Split => split_table(&file).into_any(),
            });
            view! {
                <details class="file" open=open>
                    <summary>
                        <span class="path">{agent_text(name)}</span> " "
                        <span class="plus">{format!("+{}", file.added)}</span> " " <span class="minus">{format!("−{}", file.removed)}</span>
                        {(!open).then(|| view! { <span class="muted">{format!(" · {lines} lines, collapsed")}</span> })}
                    </summary>
                    {meta}
                    {table}
                </details>
            }
        }).collect_view()}
    }
    .into_any()
}

fn line_class(kind: LineKind) -> &'static str {
    match kind {
        LineKind::Added => "add",
        LineKind::Removed => "del",
        LineKind::Context => "ctx",
        LineKind::Note => "note",
    }
}

fn sign(kind: LineKind) -> &'static str {
    match kind {
        LineKind::Added => "+",
        LineKind::Removed => "−",
        _ => " ",
    }
}

fn number(n: Option<u32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

fn unified_table(file: &FileDiff) -> impl IntoView + use<> {
    let hunks = file.hunks.clone();
    view! {
        <table class="diff">
            {hunks.into_iter().map(|hunk| view! {
                <tbody>
                    {(!hunk.header.is_empty()).then(|| view! { <tr class="hunk"><td class="ln"></td><td class="ln"></td><td class="code">{agent_text(hunk.header.clone())}</td></tr> })}
                    {hunk.lines.into_iter().map(|line| {
                        let class = line_class(line.kind);
                        view! {
                            <tr class=class>
                                <td class="ln">{number(line.old)}</td>
                                <td class="ln">{number(line.new)}</td>
                                <td class="code"><span class="sign" aria-hidden="true">{sign(line.kind)}</span>{agent_text(line.text)}</td>
                            </tr>
                        }
                    }).collect_view()}
                    {hunk.outside.into_iter().map(|text| view! {
                        <tr class="outside"><td class="ln"></td><td class="ln"></td><td class="code">{agent_text(text)}</td></tr>
                    }).collect_view()}
                </tbody>
            }).collect_view()}
        </table>
    }
}

/// One row of the side-by-side table.
enum SplitRow {
    Hunk(String),
    /// Old beside new: a removed line paired with the added line that replaces it, or a
    /// context line on both sides.
    Pair(Option<DiffLine>, Option<DiffLine>),
    /// A line outside any hunk, across both sides.
    Outside(String),
}

/// Side by side: removed lines on the left paired with the added lines that replace them.
fn split_table(file: &FileDiff) -> impl IntoView + use<> {
    let mut rows: Vec<SplitRow> = Vec::new();
    for hunk in &file.hunks {
        if !hunk.header.is_empty() {
            rows.push(SplitRow::Hunk(hunk.header.clone()));
        }
        let mut removed: Vec<DiffLine> = Vec::new();
        let mut added: Vec<DiffLine> = Vec::new();
        let flush = |rows: &mut Vec<SplitRow>, removed: &mut Vec<DiffLine>, added: &mut Vec<DiffLine>| {
            let count = removed.len().max(added.len());
            let mut left = removed.drain(..);
            let mut right = added.drain(..);
            for _ in 0..count {
                rows.push(SplitRow::Pair(left.next(), right.next()));
            }
        };
        for line in &hunk.lines {
            match line.kind {
                LineKind::Removed => removed.push(line.clone()),
                LineKind::Added => added.push(line.clone()),
                _ => {
                    flush(&mut rows, &mut removed, &mut added);
                    rows.push(SplitRow::Pair(Some(line.clone()), Some(line.clone())));
                }
            }
        }
        flush(&mut rows, &mut removed, &mut added);
        rows.extend(hunk.outside.iter().cloned().map(SplitRow::Outside));
    }
    let cell = |line: Option<DiffLine>, old_side: bool| match line {
        Some(line) => {
            let class = format!("code {}", line_class(line.kind));
            let n = if old_side { line.old } else { line.new };
            view! { <td class="ln">{number(n)}</td><td class=class><span class="sign" aria-hidden="true">{sign(line.kind)}</span>{agent_text(line.text)}</td> }.into_any()
        }
        None => view! { <td class="ln"></td><td class="code empty"></td> }.into_any(),
    };
    view! {
        <table class="diff split">
            <tbody>
                {rows.into_iter().map(|row| match row {
                    SplitRow::Hunk(header) => view! {
                        <tr class="hunk"><td class="ln"></td><td class="code" colspan="3">{agent_text(header)}</td></tr>
                    }.into_any(),
                    SplitRow::Outside(text) => view! {
                        <tr class="outside"><td class="ln"></td><td class="code" colspan="3">{agent_text(text)}</td></tr>
                    }.into_any(),
                    SplitRow::Pair(left, right) => {
                        let class = match (&left, &right) {
                            (Some(l), Some(r)) if l.kind == LineKind::Context && r.kind == LineKind::Context => "ctx",
                            (Some(_), None) => "del",
                            (None, Some(_)) => "add",
                            _ => "change",
                        };
                        view! { <tr class=class>{cell(left, true)}{cell(right, false)}</tr> }.into_any()
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
