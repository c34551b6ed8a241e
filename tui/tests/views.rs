//! Snapshots of every view at 80x24 and 160x48, with a fixed clock and fixed data.

mod common;

use common::*;
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use signoff_app::wire::Eligibility;
use signoff_app::{Status, Verdict};
use signoff_tui::error::ClientError;
use signoff_tui::reviewer::state::{Msg, State, update};
use signoff_tui::reviewer::theme::Theme;
use signoff_tui::view;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn render(state: &State) -> TestBackend {
    let mut terminal =
        Terminal::new(TestBackend::new(state.viewport.width, state.viewport.height)).expect("test terminal");
    terminal.draw(|frame| view(state, frame)).expect("draw");
    terminal.backend().clone()
}

/// Builds the state at each size with `setup`, then snapshots it as `name_WxH`.
fn snapshot_each_size(name: &str, setup: impl Fn(&mut State)) {
    for (width, height) in SIZES {
        let mut state = loaded(width, height, queue());
        setup(&mut state);
        let screen = render(&state);
        insta::assert_snapshot!(format!("{name}_{width}x{height}"), screen.to_string());
    }
}

fn apply(state: &mut State, messages: Vec<Msg>) {
    for message in messages {
        update(state, message);
    }
}

fn type_text(state: &mut State, text: &str) {
    for c in text.chars() {
        update(state, char_key(c));
    }
}

/// Opens request `n` with the long multi-file diff.
fn open(state: &mut State, n: u128, viewer: Eligibility) {
    let index = state
        .queue
        .visible_items()
        .position(|row| row.id == id(n))
        .expect("row");
    state.queue.selected = index;
    update(state, key(KeyCode::Enter));
    update(
        state,
        Msg::DetailLoaded {
            id: id(n),
            result: Ok(review(n, Some(long_diff()), viewer)),
        },
    );
}

#[test]
fn queue_view() {
    snapshot_each_size("queue", |state| {
        update(state, Msg::Tick(NOW + time::Duration::seconds(4)));
    });
}

#[test]
fn queue_empty() {
    for (width, height) in SIZES {
        let state = loaded(width, height, vec![]);
        insta::assert_snapshot!(format!("queue_empty_{width}x{height}"), render(&state).to_string());
    }
}

#[test]
fn queue_loading() {
    for (width, height) in SIZES {
        let state = State::new(
            SERVER,
            NOW,
            Theme::COLOR,
            signoff_tui::reviewer::state::Viewport { width, height },
        );
        insta::assert_snapshot!(format!("queue_loading_{width}x{height}"), render(&state).to_string());
    }
}

#[test]
fn queue_filter_typing() {
    snapshot_each_size("queue_filter_typing", |state| {
        update(state, char_key('/'));
        type_text(state, "prod");
    });
}

#[test]
fn queue_needs_my_vote_with_filter() {
    snapshot_each_size("queue_needs_my_vote", |state| {
        update(state, key(KeyCode::Tab));
        update(state, char_key('/'));
        type_text(state, "export");
        update(state, key(KeyCode::Enter));
    });
}

#[test]
fn queue_offline() {
    snapshot_each_size("queue_offline", |state| {
        update(state, char_key('j'));
        for attempt in 1..=3 {
            update(
                state,
                Msg::StreamDown {
                    attempt,
                    reason: "connection failed".into(),
                    retry_in: std::time::Duration::from_secs(2),
                },
            );
        }
        update(state, Msg::Tick(NOW + time::Duration::seconds(95)));
    });
}

#[test]
fn queue_offline_before_anything_loaded() {
    for (width, height) in SIZES {
        let mut state = State::new(
            SERVER,
            NOW,
            Theme::COLOR,
            signoff_tui::reviewer::state::Viewport { width, height },
        );
        update(
            &mut state,
            Msg::QueueLoaded {
                generation: 0,
                result: Err(ClientError::Unreachable {
                    server: SERVER.into(),
                    detail: "connection failed".into(),
                }),
            },
        );
        insta::assert_snapshot!(
            format!("queue_unreachable_{width}x{height}"),
            render(&state).to_string()
        );
    }
}

#[test]
fn queue_after_approving() {
    snapshot_each_size("queue_after_approving", |state| {
        open(state, 3, eligible());
        update(state, char_key('a'));
        update(state, key(KeyCode::Enter));
        update(state, char_key('y'));
        let mut answer = review(3, None, eligible());
        answer.request.status = Status::Approved;
        answer.request.approvals = 1;
        update(
            state,
            Msg::Decided {
                id: id(3),
                verdict: Verdict::Approve,
                result: Ok(answer),
            },
        );
    });
}

#[test]
fn queue_row_that_cannot_be_decided() {
    snapshot_each_size("queue_disabled_keys", |state| {
        update(state, char_key('j'));
        update(state, char_key('a'));
    });
}

#[test]
fn detail_top() {
    snapshot_each_size("detail_top", |state| open(state, 2, eligible()));
}

#[test]
fn detail_long_multi_file_diff() {
    snapshot_each_size("detail_diff_second_file", |state| {
        open(state, 2, eligible());
        update(state, char_key('n'));
        update(state, char_key('n'));
    });
}

#[test]
fn detail_diff_end() {
    snapshot_each_size("detail_end", |state| {
        open(state, 2, eligible());
        update(state, char_key('G'));
    });
}

#[test]
fn detail_cannot_decide() {
    snapshot_each_size("detail_cannot_decide", |state| {
        open(
            state,
            4,
            Eligibility {
                can_decide: false,
                reason: Some("own request".into()),
            },
        );
    });
}

#[test]
fn detail_loading_and_failed() {
    snapshot_each_size("detail_loading", |state| {
        update(state, key(KeyCode::Enter));
    });
    snapshot_each_size("detail_failed", |state| {
        update(state, key(KeyCode::Enter));
        update(
            state,
            Msg::DetailLoaded {
                id: id(1),
                result: Err(ClientError::Refused {
                    status: 404,
                    code: "not_found".into(),
                    message: String::new(),
                }),
            },
        );
    });
}

#[test]
fn comment_prompt_deny_empty() {
    snapshot_each_size("comment_deny_required", |state| {
        open(state, 1, eligible());
        update(state, char_key('d'));
        update(state, key(KeyCode::Enter));
    });
}

#[test]
fn comment_prompt_typing() {
    snapshot_each_size("comment_approve_typing", |state| {
        open(state, 1, eligible());
        update(state, char_key('a'));
        type_text(state, "Checked the bucket policy; export is encrypted.");
    });
}

#[test]
fn confirmation() {
    snapshot_each_size("confirm_deny", |state| {
        open(state, 1, eligible());
        update(state, char_key('d'));
        type_text(
            state,
            "Not during the freeze: please wait until Monday and attach the ticket.",
        );
        update(state, key(KeyCode::Enter));
    });
}

#[test]
fn submitting() {
    snapshot_each_size("submitting", |state| {
        open(state, 1, eligible());
        update(state, char_key('a'));
        update(state, key(KeyCode::Enter));
        update(state, char_key('y'));
    });
}

#[test]
fn refusal() {
    snapshot_each_size("refused_already_decided", |state| {
        open(state, 1, eligible());
        update(state, char_key('a'));
        update(state, key(KeyCode::Enter));
        update(state, char_key('y'));
        apply(
            state,
            vec![Msg::Decided {
                id: id(1),
                verdict: Verdict::Approve,
                result: Err(ClientError::Refused {
                    status: 409,
                    code: "already_decided".into(),
                    message: "denied by Carol Reviewer at 08:58".into(),
                }),
            }],
        );
    });
}

#[test]
fn help() {
    snapshot_each_size("help", |state| {
        update(state, char_key('?'));
    });
    snapshot_each_size("help_scrolled", |state| {
        update(state, char_key('?'));
        for _ in 0..40 {
            update(state, char_key('j'));
        }
    });
}

#[test]
fn history_view() {
    snapshot_each_size("history", |state| {
        update(state, char_key('h'));
        update(
            state,
            Msg::HistoryLoaded {
                generation: 1,
                result: Ok(history()),
            },
        );
        update(state, char_key('j'));
    });
}

#[test]
fn hostile_text_is_neutralised() {
    let mut rows = queue();
    rows[0].title = "\x1b\u{202E}\u{200B}".into();
    let state = loaded(120, 24, rows);
    let screen = render(&state).to_string();
    assert!(!screen.contains('\x1b'));
    assert!(!screen.contains('\u{202E}') && !screen.contains('\u{200B}'));
    // Marked as the console marks them.
    assert!(screen.contains("⟨U+001B⟩⟨U+202E⟩⟨U+200B⟩"), "{screen}");
}

// ----- styles: colour and its bold / reverse fallback --------------------------------------

fn find(backend: &TestBackend, needle: &str) -> (u16, u16) {
    let buffer = backend.buffer();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        if let Some(byte) = line.find(needle) {
            let x = line[..byte].chars().count() as u16;
            return (x, y);
        }
    }
    panic!("{needle:?} not on screen");
}

#[test]
fn diff_lines_are_coloured_or_bold_and_reversed_without_colour() {
    for theme in [Theme::COLOR, Theme::MONO] {
        let mut state = loaded(160, 48, queue());
        state.theme = theme;
        open(&mut state, 2, eligible());
        update(&mut state, char_key('n'));
        let backend = render(&state);
        let added = backend.buffer()[find(&backend, "+  replicas: 6")].style();
        let removed = backend.buffer()[find(&backend, "-  replicas: 3")].style();
        if theme.color {
            assert_eq!(added.fg, Some(Color::Green));
            assert_eq!(removed.fg, Some(Color::Red));
        } else {
            assert!(matches!(added.fg, None | Some(Color::Reset)));
            assert!(added.add_modifier.contains(Modifier::BOLD));
            assert!(removed.add_modifier.contains(Modifier::REVERSED));
        }
    }
}

#[test]
fn selection_is_reversed_without_colour() {
    let mut state = loaded(80, 24, queue());
    state.theme = Theme::MONO;
    let backend = render(&state);
    let style = backend.buffer()[find(&backend, "> Export")].style();
    assert!(style.add_modifier.contains(Modifier::REVERSED));
    assert!(matches!(style.bg, None | Some(Color::Reset)));
}

#[test]
fn tiny_windows_do_not_panic() {
    for (width, height) in [(1, 1), (19, 5), (20, 6), (30, 8), (40, 10)] {
        let mut state = loaded(width, height, queue());
        render(&state);
        open(&mut state, 1, eligible());
        render(&state);
        update(&mut state, char_key('d'));
        type_text(&mut state, "no");
        render(&state);
        update(&mut state, key(KeyCode::Enter));
        render(&state);
        update(&mut state, key(KeyCode::Esc));
        update(&mut state, char_key('?'));
        render(&state);
    }
}

#[test]
fn break_glass_and_why_the_policy_matched_are_shown() {
    let mut state = loaded(160, 48, queue());
    let index = state
        .queue
        .visible_items()
        .position(|row| row.id == id(1))
        .expect("row");
    state.queue.selected = index;
    update(&mut state, key(KeyCode::Enter));
    let mut answer = review(1, None, eligible());
    answer.request.break_glass = true;
    answer.request.policy.why = vec!["action deploy.service matches `deploy.*`".into()];
    update(
        &mut state,
        Msg::DetailLoaded {
            id: id(1),
            result: Ok(answer),
        },
    );
    let screen = render(&state).to_string();
    assert!(screen.contains("BREAK-GLASS"), "{screen}");
    assert!(screen.contains("matches `deploy.*`"), "{screen}");
}

#[test]
fn break_glass_rows_are_marked_in_lists() {
    let mut rows = queue();
    rows[0].break_glass = true;
    let screen = render(&loaded(160, 48, rows)).to_string();
    assert!(screen.contains("BREAK-GLASS"), "{screen}");
}
