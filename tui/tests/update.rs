//! `update` for every key path and every message, with fixed data and a fixed clock.

mod common;

use std::time::Duration as StdDuration;

use common::*;
use crossterm::event::{KeyCode, MouseEventKind};
use signoff_app::wire::{Eligibility, LiveEvent, LiveEventKind};
use signoff_app::{Status, Verdict};
use signoff_tui::error::ClientError;
use signoff_tui::reviewer::state::{
    Command, Connection, Modal, Msg, QueuePage, REFRESH_DEBOUNCE, Screen, State, Tone, update,
};
use time::Duration;

fn state() -> State {
    loaded(80, 24, queue())
}

fn selected_title(state: &State) -> String {
    state
        .current_list()
        .selected_item()
        .map(|item| item.title.clone())
        .unwrap_or_default()
}

fn flash(state: &State) -> String {
    state.live_flash().map(|f| f.text.clone()).unwrap_or_default()
}

fn press(state: &mut State, keys: &str) -> Vec<Command> {
    keys.chars().map(|c| update(state, char_key(c))).collect()
}

/// Opens request `n`'s detail and delivers it.
fn open(state: &mut State, n: u128, viewer: Eligibility) {
    let index = state
        .queue
        .visible_items()
        .position(|row| row.id == id(n))
        .expect("row");
    state.queue.selected = index;
    assert_eq!(update(state, key(KeyCode::Enter)), Command::LoadDetail { id: id(n) });
    update(
        state,
        Msg::DetailLoaded {
            id: id(n),
            result: Ok(review(n, Some(long_diff()), viewer)),
        },
    );
}

fn refused(code: &str, status: u16) -> ClientError {
    ClientError::Refused {
        status,
        code: code.into(),
        message: String::new(),
    }
}

// ----- navigation ------------------------------------------------------------------------

#[test]
fn j_k_and_arrows_move_and_stop_at_the_ends() {
    let mut state = state();
    assert_eq!(state.queue.selected, 0);
    update(&mut state, char_key('j'));
    update(&mut state, key(KeyCode::Down));
    assert_eq!(state.queue.selected, 2);
    update(&mut state, char_key('k'));
    assert_eq!(state.queue.selected, 1);
    update(&mut state, key(KeyCode::Up));
    update(&mut state, key(KeyCode::Up));
    assert_eq!(state.queue.selected, 0, "stops at the top");
    press(&mut state, "jjjjjjjjjj");
    assert_eq!(state.queue.selected, 5, "stops at the bottom");
}

#[test]
fn g_and_shift_g_home_end_jump() {
    let mut state = state();
    update(&mut state, char_key('G'));
    assert_eq!(state.queue.selected, 5);
    update(&mut state, char_key('g'));
    assert_eq!(state.queue.selected, 0);
    update(&mut state, key(KeyCode::End));
    assert_eq!(state.queue.selected, 5);
    update(&mut state, key(KeyCode::Home));
    assert_eq!(state.queue.selected, 0);
}

#[test]
fn page_keys_move_by_a_screen_and_keep_the_selection_in_view() {
    let many: Vec<_> = (0..100)
        .map(|n| {
            summary(
                100 + n,
                &format!("Request {n}"),
                "db.export",
                "db/x",
                Some("prod"),
                "bot",
                5,
                60,
                (0, 1),
                can_decide(),
            )
        })
        .collect();
    let mut state = loaded(80, 24, many);
    let rows = 20; // 24 less title, header, hints and status
    update(&mut state, key(KeyCode::PageDown));
    assert_eq!(state.queue.selected, rows);
    assert!(state.queue.offset <= state.queue.selected);
    assert!(state.queue.selected < state.queue.offset + rows);
    update(&mut state, key(KeyCode::PageDown));
    update(&mut state, key(KeyCode::PageUp));
    assert_eq!(state.queue.selected, rows);
    update(&mut state, ctrl('d'));
    assert_eq!(state.queue.selected, rows + rows / 2);
    update(&mut state, ctrl('u'));
    assert_eq!(state.queue.selected, rows);
    update(&mut state, char_key('G'));
    assert_eq!(state.queue.offset, 100 - rows);
}

#[test]
fn mouse_wheel_moves_in_lists_and_scrolls_the_detail() {
    let mut state = state();
    update(&mut state, Msg::Mouse(MouseEventKind::ScrollDown));
    assert_eq!(state.queue.selected, 1);
    update(&mut state, Msg::Mouse(MouseEventKind::ScrollUp));
    assert_eq!(state.queue.selected, 0);
    open(&mut state, 1, eligible());
    update(&mut state, Msg::Mouse(MouseEventKind::ScrollDown));
    assert_eq!(state.detail.as_ref().map(|d| d.scroll), Some(3));
    update(&mut state, Msg::Mouse(MouseEventKind::ScrollUp));
    assert_eq!(state.detail.as_ref().map(|d| d.scroll), Some(0));
}

// ----- filter and toggle -----------------------------------------------------------------

#[test]
fn slash_filters_as_you_type_and_keys_are_text_meanwhile() {
    let mut state = state();
    update(&mut state, char_key('/'));
    assert!(state.filter_editing);
    let commands = press(&mut state, "prod qx");
    assert!(commands.iter().all(|c| *c == Command::None), "q is text here, not quit");
    assert!(!state.quit);
    assert_eq!(state.filter, "prod qx");
    assert_eq!(state.queue.visible.len(), 0);
    for _ in 0..3 {
        update(&mut state, key(KeyCode::Backspace));
    }
    assert_eq!(state.filter, "prod");
    // Matches labels (env=prod) and resources.
    assert_eq!(state.queue.visible.len(), 4);
    update(&mut state, key(KeyCode::Enter));
    assert!(!state.filter_editing);
    assert_eq!(state.filter, "prod", "Enter keeps the filter");
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(state.filter, "", "Esc in the list clears it");
    assert_eq!(state.queue.visible.len(), 6);
}

#[test]
fn filter_words_all_match_and_esc_while_typing_clears() {
    let mut state = state();
    update(&mut state, char_key('/'));
    press(&mut state, "checkout REPLICAS");
    assert_eq!(state.queue.visible.len(), 1);
    assert_eq!(selected_title(&state), "Scale checkout to 6 replicas");
    update(&mut state, ctrl('u'));
    assert_eq!(state.filter, "");
    press(&mut state, "zzz");
    update(&mut state, key(KeyCode::Esc));
    assert!(!state.filter_editing);
    assert_eq!(state.filter, "");
    assert_eq!(state.queue.visible.len(), 6);
}

#[test]
fn tab_toggles_needs_my_vote_and_reloads() {
    let mut state = state();
    let generation = state.queue.generation;
    let command = update(&mut state, key(KeyCode::Tab));
    assert!(state.needs_my_vote);
    assert_eq!(
        command,
        Command::LoadQueue {
            generation: generation + 1,
            needs_my_vote: true
        }
    );
    // Rows I cannot decide disappear at once, before the server answers.
    assert_eq!(state.queue.visible.len(), 4);
    assert!(
        state
            .queue
            .visible_items()
            .all(|row| row.viewer.as_ref().is_some_and(|v| v.can_decide))
    );
    let command = update(&mut state, key(KeyCode::Tab));
    assert!(!state.needs_my_vote);
    assert_eq!(
        command,
        Command::LoadQueue {
            generation: generation + 2,
            needs_my_vote: false
        }
    );
    assert_eq!(state.queue.visible.len(), 6);
}

// ----- detail ----------------------------------------------------------------------------

#[test]
fn enter_opens_the_detail_and_esc_goes_back() {
    let mut state = state();
    update(&mut state, char_key('j'));
    assert_eq!(
        update(&mut state, key(KeyCode::Enter)),
        Command::LoadDetail { id: id(2) }
    );
    assert_eq!(state.screen, Screen::Detail);
    let detail = state.detail.as_ref().expect("detail");
    assert!(detail.loading);
    assert_eq!(detail.title, "Scale checkout to 6 replicas");
    update(
        &mut state,
        Msg::DetailLoaded {
            id: id(2),
            result: Ok(review(2, Some(long_diff()), eligible())),
        },
    );
    let detail = state.detail.as_ref().expect("detail");
    assert!(!detail.loading);
    assert!(!detail.doc.lines.is_empty());
    assert_eq!(detail.doc.file_starts.len(), 3);
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(state.screen, Screen::Queue);
    assert!(state.detail.is_none());
    assert_eq!(state.queue.selected, 1, "selection kept");
}

#[test]
fn backspace_also_goes_back_and_answers_for_another_request_are_ignored() {
    let mut state = state();
    update(&mut state, key(KeyCode::Enter));
    update(
        &mut state,
        Msg::DetailLoaded {
            id: id(3),
            result: Ok(review(3, None, eligible())),
        },
    );
    assert!(state.detail.as_ref().is_some_and(|d| d.review.is_none()));
    update(&mut state, key(KeyCode::Backspace));
    assert_eq!(state.screen, Screen::Queue);
}

#[test]
fn detail_scrolls_and_jumps_between_files() {
    let mut state = state();
    open(&mut state, 1, eligible());
    let (starts, total) = {
        let detail = state.detail.as_ref().expect("detail");
        (detail.doc.file_starts.clone(), detail.doc.lines.len())
    };
    let rows = 21; // 24 less title, hints and status
    let scroll = |state: &State| state.detail.as_ref().map(|d| d.scroll).unwrap_or(usize::MAX);
    update(&mut state, char_key('j'));
    update(&mut state, key(KeyCode::Down));
    assert_eq!(scroll(&state), 2);
    update(&mut state, char_key('k'));
    assert_eq!(scroll(&state), 1);
    update(&mut state, key(KeyCode::PageDown));
    assert_eq!(scroll(&state), 1 + rows - 1);
    update(&mut state, key(KeyCode::PageUp));
    assert_eq!(scroll(&state), 1);
    update(&mut state, char_key('G'));
    assert_eq!(scroll(&state), total - rows);
    update(&mut state, char_key('j'));
    assert_eq!(scroll(&state), total - rows, "no scrolling past the end");
    update(&mut state, char_key('g'));
    assert_eq!(scroll(&state), 0);
    update(&mut state, char_key('n'));
    assert_eq!(scroll(&state), starts[0]);
    update(&mut state, char_key('n'));
    assert_eq!(scroll(&state), starts[1]);
    update(&mut state, char_key('p'));
    assert_eq!(scroll(&state), starts[0]);
    update(&mut state, char_key('p'));
    assert_eq!(scroll(&state), starts[0]);
    assert_eq!(flash(&state), "First file");
    update(&mut state, char_key('r'));
    assert!(state.detail.as_ref().is_some_and(|d| d.loading));
}

#[test]
fn resize_relayouts_the_detail() {
    let mut state = state();
    open(&mut state, 1, eligible());
    let narrow = state.detail.as_ref().map(|d| d.doc.lines.len()).unwrap_or(0);
    update(&mut state, Msg::Resize(160, 48));
    assert_eq!(state.viewport.width, 160);
    let wide = state.detail.as_ref().map(|d| d.doc.lines.len()).unwrap_or(0);
    assert!(wide < narrow, "fewer wrapped lines when wider ({wide} < {narrow})");
}

// ----- deciding --------------------------------------------------------------------------

#[test]
fn approve_asks_a_comment_then_confirms_then_sends() {
    let mut state = state();
    open(&mut state, 1, eligible());
    assert_eq!(update(&mut state, char_key('a')), Command::None);
    assert!(matches!(
        state.modal,
        Some(Modal::Comment {
            verdict: Verdict::Approve,
            ..
        })
    ));
    press(&mut state, "ok q");
    assert!(!state.quit, "q is text in the comment");
    update(&mut state, key(KeyCode::Backspace));
    update(&mut state, key(KeyCode::Enter));
    assert_eq!(
        state.modal,
        Some(Modal::Confirm {
            verdict: Verdict::Approve,
            comment: "ok".into()
        })
    );
    let command = update(&mut state, char_key('y'));
    assert_eq!(
        command,
        Command::Decide {
            id: id(1),
            verdict: Verdict::Approve,
            comment: "ok".into()
        }
    );
    assert_eq!(
        state.modal,
        Some(Modal::Submitting {
            verdict: Verdict::Approve
        })
    );
    // Keys wait while the decision travels.
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(
        state.modal,
        Some(Modal::Submitting {
            verdict: Verdict::Approve
        })
    );

    let mut answer = review(
        1,
        None,
        Eligibility {
            can_decide: false,
            reason: Some("you already approved".into()),
        },
    );
    answer.request.approvals = 1;
    let generation = state.queue.generation;
    let command = update(
        &mut state,
        Msg::Decided {
            id: id(1),
            verdict: Verdict::Approve,
            result: Ok(answer),
        },
    );
    assert_eq!(
        command,
        Command::LoadQueue {
            generation: generation + 1,
            needs_my_vote: false
        }
    );
    assert_eq!(state.modal, None);
    assert_eq!(state.screen, Screen::Queue, "back to the queue for the next one");
    assert!(flash(&state).starts_with("Approved “Export customers"));
    assert!(flash(&state).ends_with("1 of 2 approvals, still pending"));
    assert_eq!(state.live_flash().map(|f| f.tone), Some(Tone::Good));
    let row = state
        .queue
        .items
        .iter()
        .find(|row| row.id == id(1))
        .expect("still pending");
    assert_eq!(row.approvals, 1);
    assert_eq!(row.viewer.as_ref().map(|v| v.can_decide), Some(false));
}

#[test]
fn enter_also_confirms_and_a_final_decision_removes_the_row() {
    let mut state = state();
    open(&mut state, 3, eligible());
    update(&mut state, char_key('a'));
    update(&mut state, key(KeyCode::Enter));
    assert_eq!(
        state.modal,
        Some(Modal::Confirm {
            verdict: Verdict::Approve,
            comment: String::new()
        }),
        "an approval comment is optional"
    );
    let command = update(&mut state, key(KeyCode::Enter));
    assert!(matches!(command, Command::Decide { .. }));
    let mut answer = review(3, None, eligible());
    answer.request.status = Status::Approved;
    update(
        &mut state,
        Msg::Decided {
            id: id(3),
            verdict: Verdict::Approve,
            result: Ok(answer),
        },
    );
    assert!(state.queue.items.iter().all(|row| row.id != id(3)));
    assert!(flash(&state).ends_with("now approved"));
}

#[test]
fn deny_refuses_an_empty_comment() {
    let mut state = state();
    open(&mut state, 1, eligible());
    update(&mut state, char_key('d'));
    update(&mut state, key(KeyCode::Enter));
    match &state.modal {
        Some(Modal::Comment {
            verdict: Verdict::Deny,
            error: Some(error),
            ..
        }) => {
            assert_eq!(error, "A deny needs a comment: say why.")
        }
        other => panic!("expected the comment prompt with an error, got {other:?}"),
    }
    press(&mut state, "   ");
    update(&mut state, key(KeyCode::Enter));
    assert!(
        matches!(state.modal, Some(Modal::Comment { error: Some(_), .. })),
        "blank is empty"
    );
    press(&mut state, "too risky");
    update(&mut state, key(KeyCode::Enter));
    assert_eq!(
        state.modal,
        Some(Modal::Confirm {
            verdict: Verdict::Deny,
            comment: "too risky".into()
        })
    );
    let command = update(&mut state, char_key('y'));
    assert_eq!(
        command,
        Command::Decide {
            id: id(1),
            verdict: Verdict::Deny,
            comment: "too risky".into()
        }
    );
}

#[test]
fn esc_cancels_the_comment_and_n_or_esc_cancel_the_confirmation() {
    let mut state = state();
    open(&mut state, 1, eligible());
    update(&mut state, char_key('a'));
    assert_eq!(update(&mut state, key(KeyCode::Esc)), Command::None);
    assert_eq!(state.modal, None);
    assert_eq!(flash(&state), "Cancelled: nothing was sent");
    for cancel in [char_key('n'), key(KeyCode::Esc)] {
        update(&mut state, char_key('a'));
        update(&mut state, key(KeyCode::Enter));
        assert!(matches!(state.modal, Some(Modal::Confirm { .. })));
        assert_eq!(update(&mut state, cancel), Command::None);
        assert_eq!(state.modal, None);
        assert_eq!(state.screen, Screen::Detail);
    }
}

#[test]
fn a_and_d_from_the_queue_open_the_request_then_ask_for_the_comment() {
    let mut state = state();
    assert_eq!(update(&mut state, char_key('d')), Command::LoadDetail { id: id(1) });
    assert_eq!(state.screen, Screen::Detail);
    assert_eq!(
        state.modal, None,
        "waits for the request (the confirmation needs its digest)"
    );
    update(
        &mut state,
        Msg::DetailLoaded {
            id: id(1),
            result: Ok(review(1, None, eligible())),
        },
    );
    assert!(matches!(
        state.modal,
        Some(Modal::Comment {
            verdict: Verdict::Deny,
            ..
        })
    ));
}

#[test]
fn a_from_the_queue_stops_if_the_loaded_request_cannot_be_decided() {
    let mut state = state();
    update(&mut state, char_key('a'));
    update(
        &mut state,
        Msg::DetailLoaded {
            id: id(1),
            result: Ok(review(
                1,
                None,
                Eligibility {
                    can_decide: false,
                    reason: Some("you are not in an approver group".into()),
                },
            )),
        },
    );
    assert_eq!(state.modal, None);
    assert_eq!(flash(&state), "Cannot approve: you are not in an approver group");
}

#[test]
fn disabled_keys_say_why_and_do_nothing() {
    let mut state = state();
    update(&mut state, char_key('j')); // "Scale checkout": already approved by me
    assert_eq!(state.decision_blocked().as_deref(), Some("you already approved"));
    assert_eq!(update(&mut state, char_key('a')), Command::None);
    assert_eq!(state.screen, Screen::Queue);
    assert_eq!(flash(&state), "Cannot approve: you already approved");
    assert_eq!(state.live_flash().map(|f| f.tone), Some(Tone::Bad));
    update(&mut state, char_key('G')); // expires now
    assert_eq!(update(&mut state, char_key('d')), Command::None);
    assert_eq!(flash(&state), "Cannot deny: the request has expired");

    open(
        &mut state,
        4,
        Eligibility {
            can_decide: false,
            reason: Some("own request".into()),
        },
    );
    assert_eq!(update(&mut state, char_key('a')), Command::None);
    assert_eq!(state.modal, None);
    assert_eq!(flash(&state), "Cannot approve: own request");
}

#[test]
fn a_refusal_is_shown_plainly_and_closes_with_enter() {
    let mut state = state();
    open(&mut state, 1, eligible());
    update(&mut state, char_key('a'));
    update(&mut state, key(KeyCode::Enter));
    update(&mut state, char_key('y'));
    let command = update(
        &mut state,
        Msg::Decided {
            id: id(1),
            verdict: Verdict::Approve,
            result: Err(refused("not_eligible", 403)),
        },
    );
    assert_eq!(command, Command::None);
    assert_eq!(
        state.modal,
        Some(Modal::Refused {
            verdict: Verdict::Approve,
            message: "Could not approve: You are not an eligible approver for this request.".into()
        })
    );
    update(&mut state, char_key('x'));
    assert!(state.modal.is_some(), "only Enter / Esc close it");
    update(&mut state, key(KeyCode::Enter));
    assert_eq!(state.modal, None);
    assert_eq!(state.screen, Screen::Detail);
}

#[test]
fn already_decided_or_expired_reloads_the_request_and_the_queue() {
    for code in ["already_decided", "expired", "not_pending"] {
        let mut state = state();
        open(&mut state, 1, eligible());
        update(&mut state, char_key('a'));
        update(&mut state, key(KeyCode::Enter));
        update(&mut state, char_key('y'));
        let generation = state.queue.generation;
        let command = update(
            &mut state,
            Msg::Decided {
                id: id(1),
                verdict: Verdict::Approve,
                result: Err(refused(code, 409)),
            },
        );
        assert_eq!(
            command.into_vec(),
            vec![
                Command::LoadDetail { id: id(1) },
                Command::LoadQueue {
                    generation: generation + 1,
                    needs_my_vote: false
                }
            ]
        );
        assert!(matches!(state.modal, Some(Modal::Refused { .. })));
    }
}

#[test]
fn a_request_changing_while_deciding_is_said_plainly() {
    let mut state = state();
    open(&mut state, 1, eligible());
    update(&mut state, char_key('a'));
    let mut changed = review(
        1,
        None,
        Eligibility {
            can_decide: false,
            reason: Some("the request is no longer pending".into()),
        },
    );
    changed.request.status = Status::Denied;
    update(
        &mut state,
        Msg::DetailLoaded {
            id: id(1),
            result: Ok(changed),
        },
    );
    match &state.modal {
        Some(Modal::Refused { message, .. }) => {
            assert!(message.starts_with("This request changed while you were deciding"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// ----- help, history, quit -----------------------------------------------------------------

#[test]
fn question_mark_shows_help_which_scrolls_and_closes() {
    let mut state = state();
    update(&mut state, char_key('?'));
    assert_eq!(state.modal, Some(Modal::Help { scroll: 0 }));
    update(&mut state, char_key('j'));
    update(&mut state, char_key('j'));
    update(&mut state, char_key('k'));
    assert_eq!(state.modal, Some(Modal::Help { scroll: 1 }));
    update(&mut state, char_key('q'));
    assert_eq!(state.modal, None, "q closes the help, it does not quit");
    assert!(!state.quit);
    for close in [key(KeyCode::Esc), char_key('?')] {
        update(&mut state, char_key('?'));
        update(&mut state, close);
        assert_eq!(state.modal, None);
    }
}

#[test]
fn h_shows_history_and_back() {
    let mut state = state();
    let command = update(&mut state, char_key('h'));
    assert_eq!(state.screen, Screen::History);
    assert_eq!(command, Command::LoadHistory { generation: 1 });
    update(
        &mut state,
        Msg::HistoryLoaded {
            generation: 1,
            result: Ok(history()),
        },
    );
    assert_eq!(state.history.visible.len(), 5);
    update(&mut state, char_key('j'));
    assert_eq!(selected_title(&state), "Drop table sessions_old");
    update(&mut state, key(KeyCode::Tab));
    assert_eq!(flash(&state), "Tab (needs my vote) applies to the queue");
    assert_eq!(update(&mut state, char_key('a')), Command::None);
    assert_eq!(flash(&state), "Cannot approve: the request is denied");
    assert_eq!(
        update(&mut state, key(KeyCode::Enter)),
        Command::LoadDetail { id: id(21) }
    );
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(state.screen, Screen::History, "back to where the detail came from");
    update(&mut state, char_key('h'));
    assert_eq!(state.screen, Screen::Queue);
    assert_eq!(
        update(&mut state, char_key('h')),
        Command::None,
        "history already loaded"
    );
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(state.screen, Screen::Queue);
    update(&mut state, char_key('h'));
    assert_eq!(
        update(&mut state, char_key('r')),
        Command::LoadHistory { generation: 2 }
    );
}

#[test]
fn q_and_ctrl_c_quit() {
    let mut state = state();
    assert_eq!(update(&mut state, char_key('q')), Command::Quit);
    assert!(state.quit);
    let mut state = state_with_comment_open();
    assert_eq!(
        update(&mut state, ctrl('c')),
        Command::Quit,
        "Ctrl-C works even while typing"
    );
    let mut state = self::state();
    open(&mut state, 1, eligible());
    assert_eq!(update(&mut state, char_key('q')), Command::Quit);
}

fn state_with_comment_open() -> State {
    let mut state = state();
    open(&mut state, 1, eligible());
    update(&mut state, char_key('a'));
    state
}

// ----- server answers, events and the connection ---------------------------------------------

#[test]
fn answers_of_an_older_load_are_ignored_and_selection_follows_the_request() {
    let mut state = state();
    update(&mut state, char_key('j'));
    update(&mut state, char_key('j'));
    assert_eq!(selected_title(&state), "Grant admin on billing to Bob");
    update(&mut state, char_key('r'));
    let stale = state.queue.generation - 1;
    update(
        &mut state,
        Msg::QueueLoaded {
            generation: stale,
            result: Ok(QueuePage {
                items: vec![],
                first: true,
                last: true,
                truncated: false,
            }),
        },
    );
    assert_eq!(state.queue.items.len(), 6, "stale answer ignored");
    let mut fresh = queue();
    fresh.remove(0); // someone decided the first one
    let generation = state.queue.generation;
    update(
        &mut state,
        Msg::QueueLoaded {
            generation,
            result: Ok(QueuePage {
                items: fresh,
                first: true,
                last: true,
                truncated: false,
            }),
        },
    );
    assert_eq!(selected_title(&state), "Grant admin on billing to Bob");
    assert!(!state.queue.loading);
}

#[test]
fn pages_append_until_the_last() {
    let mut state = state();
    update(&mut state, char_key('r'));
    let generation = state.queue.generation;
    let items = queue();
    update(
        &mut state,
        Msg::QueueLoaded {
            generation,
            result: Ok(QueuePage {
                items: items[..3].to_vec(),
                first: true,
                last: false,
                truncated: false,
            }),
        },
    );
    assert!(state.queue.loading);
    assert_eq!(state.queue.items.len(), 3);
    update(
        &mut state,
        Msg::QueueLoaded {
            generation,
            result: Ok(QueuePage {
                items: items[3..].to_vec(),
                first: false,
                last: true,
                truncated: false,
            }),
        },
    );
    assert!(!state.queue.loading);
    assert_eq!(state.queue.visible.len(), 6);
}

#[test]
fn live_events_remove_decided_rows_and_debounce_a_refresh() {
    let mut state = state();
    let event = |n, kind, status| {
        Msg::Live(LiveEvent {
            kind,
            request_id: id(n),
            status,
        })
    };
    let command = update(&mut state, event(3, LiveEventKind::Decided, Status::Approved));
    assert_eq!(command, Command::RefreshAfter(REFRESH_DEBOUNCE));
    assert!(state.queue.items.iter().all(|row| row.id != id(3)));
    assert_eq!(state.last_update, Some(NOW));
    // A burst: one refresh only.
    assert_eq!(
        update(&mut state, event(9, LiveEventKind::Created, Status::Pending)),
        Command::None
    );
    assert_eq!(
        update(&mut state, event(5, LiveEventKind::Expired, Status::Expired)),
        Command::None
    );
    let generation = state.queue.generation;
    assert_eq!(
        update(&mut state, Msg::RefreshDue),
        Command::LoadQueue {
            generation: generation + 1,
            needs_my_vote: false
        }
    );
    assert_eq!(
        update(&mut state, event(9, LiveEventKind::Decided, Status::Denied)),
        Command::RefreshAfter(REFRESH_DEBOUNCE),
        "a new burst schedules again"
    );
}

#[test]
fn an_event_about_the_open_request_reloads_it_at_the_refresh() {
    let mut state = state();
    open(&mut state, 1, eligible());
    update(&mut state, char_key('h')); // no effect in the detail
    update(
        &mut state,
        Msg::Live(LiveEvent {
            kind: LiveEventKind::Decided,
            request_id: id(1),
            status: Status::Pending,
        }),
    );
    assert!(state.detail.as_ref().is_some_and(|d| d.stale));
    let commands = update(&mut state, Msg::RefreshDue).into_vec();
    assert!(commands.contains(&Command::LoadDetail { id: id(1) }));
    assert!(state.detail.as_ref().is_some_and(|d| !d.stale));
}

#[test]
fn connection_status_follows_the_stream() {
    let mut state = state();
    assert_eq!(state.connection, Connection::Live);
    let down = |attempt| Msg::StreamDown {
        attempt,
        reason: "connection failed".into(),
        retry_in: StdDuration::from_millis(500),
    };
    update(&mut state, down(1));
    assert_eq!(
        state.connection,
        Connection::Reconnecting {
            attempt: 1,
            retry_in_s: 1
        }
    );
    update(&mut state, down(2));
    update(&mut state, down(3));
    assert_eq!(
        state.connection,
        Connection::Offline {
            reason: "connection failed".into(),
            retry_in_s: 1
        }
    );
    update(&mut state, Msg::Tick(NOW + Duration::seconds(30)));
    let command = update(&mut state, Msg::StreamUp);
    assert_eq!(state.connection, Connection::Live);
    assert_eq!(state.last_update, Some(NOW + Duration::seconds(30)));
    assert_eq!(
        command,
        Command::RefreshAfter(REFRESH_DEBOUNCE),
        "catch up after an outage"
    );
}

#[test]
fn first_connection_does_not_refresh_again() {
    let mut state = State::new(
        SERVER,
        NOW,
        signoff_tui::reviewer::theme::Theme::MONO,
        signoff_tui::reviewer::state::Viewport { width: 80, height: 24 },
    );
    assert_eq!(state.connection, Connection::Connecting);
    assert_eq!(update(&mut state, Msg::StreamUp), Command::None);
}

#[test]
fn an_unreachable_server_shows_offline_and_retries_on_the_tick() {
    let mut state = state();
    update(&mut state, char_key('r'));
    let generation = state.queue.generation;
    let error = ClientError::Unreachable {
        server: SERVER.into(),
        detail: "connection failed".into(),
    };
    update(
        &mut state,
        Msg::QueueLoaded {
            generation,
            result: Err(error),
        },
    );
    assert!(matches!(state.connection, Connection::Offline { .. }));
    assert_eq!(state.queue.items.len(), 6, "what was loaded stays on screen");
    assert!(state.queue.error.is_some());
    assert_eq!(update(&mut state, Msg::Tick(NOW + Duration::seconds(5))), Command::None);
    assert_eq!(
        update(&mut state, Msg::Tick(NOW + Duration::seconds(10))),
        Command::LoadQueue {
            generation: generation + 1,
            needs_my_vote: false
        }
    );
}

#[test]
fn a_revoked_sign_in_says_to_log_in_again() {
    let mut state = state();
    let error = ClientError::Unauthorized {
        server: SERVER.into(),
        detail: "token revoked".into(),
    };
    update(&mut state, Msg::MeLoaded(Err(error)));
    assert!(matches!(&state.connection, Connection::Offline { reason, .. } if reason.contains("signoff login")));
    assert!(flash(&state).contains("signoff login"));
}

#[test]
fn ticks_move_the_clock_and_expire_messages() {
    let mut state = state();
    update(&mut state, char_key('j'));
    update(&mut state, char_key('a'));
    assert!(state.flash.is_some());
    update(&mut state, Msg::Tick(NOW + Duration::seconds(3)));
    assert_eq!(state.now, NOW + Duration::seconds(3));
    assert!(state.flash.is_some());
    update(&mut state, Msg::Tick(NOW + Duration::seconds(9)));
    assert!(state.flash.is_none());
}

#[test]
fn me_loaded_is_kept_and_start_loads_me_and_the_queue() {
    let mut state = State::new(
        SERVER,
        NOW,
        signoff_tui::reviewer::theme::Theme::COLOR,
        signoff_tui::reviewer::state::Viewport { width: 80, height: 24 },
    );
    assert_eq!(
        state.start().into_vec(),
        vec![
            Command::LoadMe,
            Command::LoadQueue {
                generation: 0,
                needs_my_vote: false
            }
        ]
    );
    update(&mut state, Msg::MeLoaded(Ok(me())));
    assert_eq!(state.me, Some(me()));
    assert_eq!(state.decision_blocked().as_deref(), Some("no request selected"));
    assert_eq!(
        update(&mut state, key(KeyCode::Enter)),
        Command::None,
        "nothing to open"
    );
}

#[test]
fn resync_reloads_the_list_and_the_open_request() {
    let mut state = state();
    open(&mut state, 1, eligible());
    assert_eq!(update(&mut state, Msg::Resync), Command::RefreshAfter(REFRESH_DEBOUNCE));
    let commands = update(&mut state, Msg::RefreshDue).into_vec();
    assert!(matches!(commands[0], Command::LoadQueue { .. }));
    assert!(commands.contains(&Command::LoadDetail { id: id(1) }));
}
