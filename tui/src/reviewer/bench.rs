//! `signoff --bench-first-frame`: how long until the first frame, and how much memory,
//! against a real server (for `just bench`).

use std::time::Instant;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use time::OffsetDateTime;

use crate::config::Target;
use crate::error::{ClientError, exit};
use crate::reviewer::client::{Client, ListQuery, ListStatus, PAGE_LIMIT};
use crate::reviewer::runtime::MAX_QUEUE_ITEMS;
use crate::reviewer::state::{Msg, QueuePage, State, Viewport, update};
use crate::reviewer::theme::Theme;
use crate::reviewer::view::view;

const WIDTH: u16 = 160;
const HEIGHT: u16 = 48;

/// Loads the queue as the interactive client does: the first frame is drawn as soon as
/// the first page arrives (160x48, off-screen), the rest streams in behind it. Prints
/// `first_frame_ms=…` (start to that frame), `full_queue_ms=…` (every page loaded and
/// drawn), `keystroke_redraw_us=…`, `queue_items=…` and `rss_kb=…`.
pub async fn first_frame(target: Target, started: Instant) -> Result<u8, ClientError> {
    let Some(token) = target.token.clone() else {
        return Err(ClientError::NotSignedIn { server: target.server });
    };
    let client = Client::new(&target.server, Some(token))?;
    let viewport = Viewport {
        width: WIDTH,
        height: HEIGHT,
    };
    let mut state = State::new(client.server(), OffsetDateTime::now_utc(), Theme::COLOR, viewport);
    let query = ListQuery {
        status: ListStatus::Pending,
        limit: PAGE_LIMIT,
        ..ListQuery::default()
    };
    let mut terminal =
        Terminal::new(TestBackend::new(WIDTH, HEIGHT)).map_err(|e| ClientError::Local(format!("test backend: {e}")))?;
    let generation = state.queue.generation;
    let mut first_frame = None;
    let mut draw_error = None;
    let mut first = true;
    client
        .list_all(&query, MAX_QUEUE_ITEMS, |items, last| {
            let page = QueuePage {
                items,
                first,
                last,
                truncated: false,
            };
            first = false;
            update(
                &mut state,
                Msg::QueueLoaded {
                    generation,
                    result: Ok(page),
                },
            );
            if let Err(e) = terminal.draw(|frame| view(&state, frame)) {
                draw_error = Some(e);
            }
            first_frame.get_or_insert_with(|| started.elapsed());
        })
        .await?;
    if let Some(e) = draw_error {
        return Err(ClientError::Local(format!("drawing: {e}")));
    }
    let elapsed = first_frame.unwrap_or_else(|| started.elapsed());
    let full = started.elapsed();

    // Keystroke to redraw: move the selection and draw again.
    let key_started = Instant::now();
    update(
        &mut state,
        Msg::Key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char('j'))),
    );
    terminal
        .draw(|frame| view(&state, frame))
        .map_err(|e| ClientError::Local(format!("drawing: {e}")))?;
    let keystroke = key_started.elapsed();

    println!("first_frame_ms={}", elapsed.as_millis());
    println!("full_queue_ms={}", full.as_millis());
    println!("keystroke_redraw_us={}", keystroke.as_micros());
    println!("queue_items={}", state.queue.items.len());
    match rss_kb() {
        Some(kb) => println!("rss_kb={kb}"),
        None => println!("rss_kb=unknown"),
    }
    Ok(exit::OK)
}

/// Resident memory of this process, from `/proc/self/status` (Linux).
pub fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}
