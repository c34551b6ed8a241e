//! The interactive client's moving parts: the terminal, the tasks that turn keys, ticks,
//! server answers and live events into messages, and the loop that applies them.

use std::io::{self, Stdout};
use std::time::Duration;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use signoff_app::wire::LiveEvent;
use time::OffsetDateTime;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::reviewer::client::{Client, ListQuery, ListStatus, PAGE_LIMIT};
use crate::reviewer::sse::{Backoff, SseParser};
use crate::reviewer::state::{Command, Msg, QueuePage, State, Viewport, update};
use crate::reviewer::theme::Theme;
use crate::reviewer::view::view;

/// The queue is kept whole up to this many requests.
pub const MAX_QUEUE_ITEMS: usize = 20_000;
/// History shows the most recent decisions.
pub const HISTORY_ITEMS: u32 = 200;

/// Restores the terminal when dropped, whatever way the client leaves (return, error,
/// panic unwinding).
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(error) = execute!(stdout, EnterAlternateScreen, EnableMouseCapture) {
            restore_terminal();
            return Err(error);
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| {
            restore_terminal();
        })?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        let _ = self.terminal.show_cursor();
    }
}

/// Leaves raw mode, the alternate screen and mouse capture; safe to call twice.
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// A panic prints its message on a usable terminal, not into the alternate screen.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        tracing::error!("panic: {info}");
        previous(info);
    }));
}

/// Runs the interactive client until the person quits.
pub async fn run(client: Client, theme: Theme) -> Result<(), ClientError> {
    let mut guard = TerminalGuard::enter().map_err(|e| ClientError::Local(format!("cannot use the terminal: {e}")))?;
    let size = guard
        .terminal
        .size()
        .map_err(|e| ClientError::Local(format!("cannot read the terminal size: {e}")))?;
    let mut state = State::new(
        client.server(),
        OffsetDateTime::now_utc(),
        theme,
        Viewport {
            width: size.width,
            height: size.height,
        },
    );
    let (sender, receiver) = unbounded_channel();
    let mut runtime = Runtime {
        client,
        sender: sender.clone(),
        queue_task: None,
        history_task: None,
    };
    let background = vec![
        tokio::spawn(read_terminal(sender.clone())),
        tokio::spawn(tick(sender.clone())),
        tokio::spawn(follow_events(runtime.client.clone(), sender.clone())),
    ];
    let start = state.start();
    runtime.execute(start);
    let result = main_loop(&mut guard, &mut state, &mut runtime, receiver).await;
    for task in background {
        task.abort();
    }
    runtime.abort_loads();
    drop(guard);
    result
}

async fn main_loop(
    guard: &mut TerminalGuard,
    state: &mut State,
    runtime: &mut Runtime,
    mut receiver: UnboundedReceiver<Msg>,
) -> Result<(), ClientError> {
    let draw_error = |e: io::Error| ClientError::Local(format!("cannot draw: {e}"));
    guard.terminal.draw(|frame| view(state, frame)).map_err(draw_error)?;
    let terminated = termination();
    tokio::pin!(terminated);
    loop {
        let message = tokio::select! {
            message = receiver.recv() => message,
            // SIGTERM, SIGHUP (the SSH session went away), SIGQUIT: leave like `q` does,
            // so the terminal is restored.
            () = &mut terminated => {
                tracing::info!("stopped by a signal");
                break;
            }
        };
        let Some(message) = message else { break };
        runtime.execute(update(state, message));
        // Apply whatever else is already waiting, then draw once.
        while let Ok(message) = receiver.try_recv() {
            runtime.execute(update(state, message));
        }
        if state.quit {
            break;
        }
        guard.terminal.draw(|frame| view(state, frame)).map_err(draw_error)?;
    }
    Ok(())
}

/// Resolves when the process is asked to stop by a signal.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup), Ok(mut quit)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::quit()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = quit.recv() => {}
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

/// Carries out commands by starting tasks that answer with messages.
struct Runtime {
    client: Client,
    sender: UnboundedSender<Msg>,
    queue_task: Option<JoinHandle<()>>,
    history_task: Option<JoinHandle<()>>,
}

impl Runtime {
    fn abort_loads(&mut self) {
        for task in [self.queue_task.take(), self.history_task.take()].into_iter().flatten() {
            task.abort();
        }
    }

    fn execute(&mut self, command: Command) {
        for command in command.into_vec() {
            let client = self.client.clone();
            let sender = self.sender.clone();
            match command {
                Command::None | Command::Quit | Command::Batch(_) => {}
                Command::LoadMe => {
                    tokio::spawn(async move {
                        let _ = sender.send(Msg::MeLoaded(client.me().await));
                    });
                }
                Command::LoadQueue {
                    generation,
                    needs_my_vote,
                } => {
                    // A newer load makes the older one pointless.
                    if let Some(task) = self.queue_task.take() {
                        task.abort();
                    }
                    self.queue_task = Some(tokio::spawn(load_queue(client, sender, generation, needs_my_vote)));
                }
                Command::LoadHistory { generation } => {
                    if let Some(task) = self.history_task.take() {
                        task.abort();
                    }
                    self.history_task = Some(tokio::spawn(async move {
                        let query = ListQuery {
                            status: ListStatus::Decided,
                            limit: HISTORY_ITEMS,
                            ..ListQuery::default()
                        };
                        let result = client.list(&query).await.map(|page| page.items);
                        let _ = sender.send(Msg::HistoryLoaded { generation, result });
                    }));
                }
                Command::LoadDetail { id } => {
                    tokio::spawn(async move {
                        let result = client.get(id).await;
                        let _ = sender.send(Msg::DetailLoaded { id, result });
                    });
                }
                Command::Decide { id, verdict, comment } => {
                    tokio::spawn(async move {
                        tracing::info!(%id, verdict = verdict.as_str(), "sending decision");
                        let result = client.decide(id, verdict, &comment).await;
                        if let Err(error) = &result {
                            tracing::warn!(%id, %error, "decision refused or failed");
                        }
                        let _ = sender.send(Msg::Decided { id, verdict, result });
                    });
                }
                Command::RefreshAfter(delay) => {
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = sender.send(Msg::RefreshDue);
                    });
                }
            }
        }
    }
}

async fn load_queue(client: Client, sender: UnboundedSender<Msg>, generation: u64, needs_my_vote: bool) {
    let query = ListQuery {
        status: ListStatus::Pending,
        needs_my_vote,
        limit: PAGE_LIMIT,
        ..ListQuery::default()
    };
    let mut first = true;
    let outcome = client
        .list_all(&query, MAX_QUEUE_ITEMS, |items, last| {
            let page = QueuePage {
                items,
                first,
                last,
                truncated: false,
            };
            first = false;
            let _ = sender.send(Msg::QueueLoaded {
                generation,
                result: Ok(page),
            });
        })
        .await;
    match outcome {
        Ok(true) => {
            // Tell the state the list was cut (an empty last page carrying the flag).
            let _ = sender.send(Msg::QueueLoaded {
                generation,
                result: Ok(QueuePage {
                    items: Vec::new(),
                    first: false,
                    last: true,
                    truncated: true,
                }),
            });
        }
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(%error, "loading the queue failed");
            let _ = sender.send(Msg::QueueLoaded {
                generation,
                result: Err(error),
            });
        }
    }
}

/// Keys, mouse and resizes, as messages.
async fn read_terminal(sender: UnboundedSender<Msg>) {
    let mut events = EventStream::new();
    while let Some(event) = events.next().await {
        let message = match event {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => Msg::Key(key),
            Ok(Event::Mouse(mouse)) => Msg::Mouse(mouse.kind),
            Ok(Event::Resize(width, height)) => Msg::Resize(width, height),
            Ok(_) => continue,
            Err(error) => {
                tracing::error!(%error, "reading the terminal failed");
                break;
            }
        };
        if sender.send(message).is_err() {
            break;
        }
    }
}

/// The clock, once a second.
async fn tick(sender: UnboundedSender<Msg>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if sender.send(Msg::Tick(OffsetDateTime::now_utc())).is_err() {
            break;
        }
    }
}

/// Follows `GET /api/v1/events` for as long as the client runs: reconnects with backoff
/// and resumes with `Last-Event-ID`.
async fn follow_events(client: Client, sender: UnboundedSender<Msg>) {
    let mut backoff = Backoff::default();
    let mut last_event_id: Option<String> = None;
    let mut attempt = 0u32;
    loop {
        let reason = match client.events(last_event_id.as_deref()).await {
            Ok(response) => {
                if sender.send(Msg::StreamUp).is_err() {
                    return;
                }
                attempt = 0;
                backoff.reset();
                let mut parser = SseParser::resume(last_event_id.clone());
                let mut body = response.bytes_stream();
                let reason = loop {
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            for event in parser.feed(&chunk) {
                                if event.event == "resync" {
                                    if sender.send(Msg::Resync).is_err() {
                                        return;
                                    }
                                    continue;
                                }
                                match serde_json::from_str::<LiveEvent>(&event.data) {
                                    Ok(live) => {
                                        if sender.send(Msg::Live(live)).is_err() {
                                            return;
                                        }
                                    }
                                    Err(error) => tracing::debug!(
                                        kind = event.event,
                                        %error,
                                        "ignoring an event the client does not know"
                                    ),
                                }
                            }
                            last_event_id = parser.last_event_id().map(str::to_string);
                        }
                        Some(Err(error)) => {
                            break if error.is_timeout() {
                                "the server went silent".to_string()
                            } else {
                                "the connection dropped".to_string()
                            };
                        }
                        None => break "the server closed the stream".to_string(),
                    }
                };
                if let Some(retry) = parser.retry() {
                    backoff = Backoff::new(retry.max(Duration::from_millis(100)), Duration::from_secs(30));
                }
                reason
            }
            Err(error) => {
                tracing::info!(%error, "events stream unavailable");
                short_reason(&error)
            }
        };
        attempt += 1;
        let delay = backoff.next_delay() + jitter();
        let down = Msg::StreamDown {
            attempt,
            reason,
            retry_in: delay,
        };
        if sender.send(down).is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

/// A few words for the status line.
fn short_reason(error: &ClientError) -> String {
    match error {
        ClientError::NotSignedIn { .. } | ClientError::Unauthorized { .. } => {
            "sign-in no longer valid: run `signoff login`".into()
        }
        ClientError::Unreachable { detail, .. } => detail.clone(),
        ClientError::Protocol(_) => "server error".into(),
        ClientError::Refused { code, .. } => format!("refused ({code})"),
        other => other.to_string(),
    }
}

/// Up to a quarter second, so many clients do not all reconnect at the same instant.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    Duration::from_millis(u64::from(nanos % 250))
}
