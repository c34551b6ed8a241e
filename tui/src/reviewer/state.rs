//! The interactive client's state and its pure `update`: every key, network answer and
//! clock tick arrives as a [`Msg`]; `update` changes the [`State`] and says what to do next
//! as a [`Command`], which the runtime carries out (and answers with more messages).

use std::time::Duration as StdDuration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};
use signoff_app::wire::{Eligibility, LiveEvent, Me, RequestSummary, ReviewView, limits};
use signoff_app::{RequestId, Status, Verdict};
use time::{Duration, OffsetDateTime};

use crate::error::ClientError;
use crate::reviewer::detail::{self, Document};
use crate::reviewer::keys::{self, Action, Place};
use crate::reviewer::layout;
use crate::reviewer::theme::Theme;

/// How long a message in the status line stays.
const FLASH_SECONDS: i64 = 8;
/// Live events often come in bursts: refresh once they settle.
pub const REFRESH_DEBOUNCE: StdDuration = StdDuration::from_millis(300);
/// After a failed load, try again this long after.
const RETRY_SECONDS: i64 = 10;
/// The events stream counts as offline (not merely reconnecting) after this many failures.
const OFFLINE_AFTER_ATTEMPTS: u32 = 3;
/// Lines the mouse wheel scrolls in the detail view.
const WHEEL_LINES: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Queue,
    History,
    Detail,
}

/// A list of requests (the queue or history) with its selection and scroll position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListView {
    pub items: Vec<RequestSummary>,
    /// Indices into `items` of the rows that pass the filter, in order.
    pub visible: Vec<usize>,
    /// Index into `visible`.
    pub selected: usize,
    /// First row shown.
    pub offset: usize,
    pub loading: bool,
    pub loaded: bool,
    pub error: Option<String>,
    /// Answers of an older load are ignored.
    pub generation: u64,
    /// The server had more than the client keeps.
    pub truncated: bool,
    pub retry_at: Option<OffsetDateTime>,
}

impl ListView {
    pub fn selected_item(&self) -> Option<&RequestSummary> {
        self.visible.get(self.selected).and_then(|&index| self.items.get(index))
    }

    pub fn visible_items(&self) -> impl Iterator<Item = &RequestSummary> {
        self.visible.iter().filter_map(|&index| self.items.get(index))
    }

    /// Recomputes the visible rows; the selection stays on `keep` when it is still shown.
    fn refilter(&mut self, filter: &str, mine_only: bool, keep: Option<RequestId>) {
        let words: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
        self.visible = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| !mine_only || item.viewer.as_ref().is_none_or(|v| v.can_decide))
            .filter(|(_, item)| words.is_empty() || matches_words(item, &words))
            .map(|(index, _)| index)
            .collect();
        self.selected = keep
            .and_then(|id| self.visible_items().position(|item| item.id == id))
            .unwrap_or(self.selected)
            .min(self.visible.len().saturating_sub(1));
    }

    fn select(&mut self, index: usize, rows: usize) {
        self.selected = index.min(self.visible.len().saturating_sub(1));
        self.keep_in_view(rows);
    }

    fn move_by(&mut self, delta: isize, rows: usize) {
        let target = self.selected.saturating_add_signed(delta);
        self.select(target, rows);
    }

    fn keep_in_view(&mut self, rows: usize) {
        let rows = rows.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + rows {
            self.offset = self.selected + 1 - rows;
        }
        let last_start = self.visible.len().saturating_sub(rows);
        self.offset = self.offset.min(last_start);
    }
}

/// Whether every word of the filter appears somewhere in the row.
fn matches_words(item: &RequestSummary, words: &[String]) -> bool {
    let mut haystack = format!(
        "{} {} {} {} {}",
        item.title,
        item.action,
        item.resource,
        item.agent,
        item.on_behalf_of.as_deref().unwrap_or("")
    );
    for (key, value) in &item.labels {
        haystack.push_str(&format!(" {key}={value}"));
    }
    let haystack = haystack.to_lowercase();
    words.iter().all(|word| haystack.contains(word.as_str()))
}

/// The request opened with `Enter`.
#[derive(Clone, Debug, PartialEq)]
pub struct Detail {
    pub id: RequestId,
    /// From the list row, shown while the request loads.
    pub title: String,
    pub review: Option<ReviewView>,
    pub doc: Document,
    pub loading: bool,
    pub error: Option<String>,
    pub scroll: usize,
    /// Open the comment prompt for this verdict once the request has loaded (`a`/`d`
    /// pressed in a list).
    pub then_decide: Option<Verdict>,
    /// A live event said the request changed: reload it at the next refresh.
    pub stale: bool,
    pub back_to: Screen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modal {
    Help {
        scroll: usize,
    },
    /// Typing the decision's comment.
    Comment {
        verdict: Verdict,
        input: String,
        error: Option<String>,
    },
    /// Showing exactly what will be signed off.
    Confirm {
        verdict: Verdict,
        comment: String,
    },
    /// The decision is on its way.
    Submitting {
        verdict: Verdict,
    },
    /// The server said no, or the request changed under the reviewer.
    Refused {
        verdict: Verdict,
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Bad,
}

/// A short message in the status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    pub text: String,
    pub tone: Tone,
    pub until: OffsetDateTime,
}

/// The live connection (the events stream), as the status line tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    Reconnecting { attempt: u32, retry_in_s: u64 },
    Offline { reason: String, retry_in_s: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewport {
    pub width: u16,
    pub height: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// The clock, set by ticks so that views are deterministic.
    pub now: OffsetDateTime,
    pub server: String,
    pub theme: Theme,
    pub viewport: Viewport,
    pub me: Option<Me>,
    pub screen: Screen,
    pub queue: ListView,
    pub history: ListView,
    pub filter: String,
    pub filter_editing: bool,
    pub needs_my_vote: bool,
    pub detail: Option<Detail>,
    pub modal: Option<Modal>,
    pub connection: Connection,
    /// When the client last heard from the server (a load or an event).
    pub last_update: Option<OffsetDateTime>,
    pub flash: Option<Flash>,
    pub refresh_scheduled: bool,
    pub quit: bool,
}

/// One page of the queue as the loader delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuePage {
    pub items: Vec<RequestSummary>,
    /// The first page replaces the list; later ones extend it.
    pub first: bool,
    pub last: bool,
    pub truncated: bool,
}

#[derive(Clone, Debug)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEventKind),
    Resize(u16, u16),
    Tick(OffsetDateTime),
    MeLoaded(Result<Me, ClientError>),
    QueueLoaded {
        generation: u64,
        result: Result<QueuePage, ClientError>,
    },
    HistoryLoaded {
        generation: u64,
        result: Result<Vec<RequestSummary>, ClientError>,
    },
    DetailLoaded {
        id: RequestId,
        result: Result<ReviewView, ClientError>,
    },
    Decided {
        id: RequestId,
        verdict: Verdict,
        result: Result<ReviewView, ClientError>,
    },
    Live(LiveEvent),
    /// The server lost track of what this client missed: reload everything shown.
    Resync,
    StreamUp,
    StreamDown {
        attempt: u32,
        reason: String,
        retry_in: StdDuration,
    },
    /// The debounce after live events is over.
    RefreshDue,
}

/// What the runtime should do after a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    None,
    Quit,
    LoadMe,
    LoadQueue {
        generation: u64,
        needs_my_vote: bool,
    },
    LoadHistory {
        generation: u64,
    },
    LoadDetail {
        id: RequestId,
    },
    Decide {
        id: RequestId,
        verdict: Verdict,
        comment: String,
    },
    /// Send [`Msg::RefreshDue`] after this long.
    RefreshAfter(StdDuration),
    Batch(Vec<Command>),
}

impl Command {
    /// Flattens into the list of things to do, without `None`s.
    pub fn into_vec(self) -> Vec<Command> {
        match self {
            Command::None => Vec::new(),
            Command::Batch(commands) => commands.into_iter().flat_map(Command::into_vec).collect(),
            other => vec![other],
        }
    }

    fn and(self, other: Command) -> Command {
        match (self, other) {
            (Command::None, other) | (other, Command::None) => other,
            (a, b) => Command::Batch(vec![a, b]),
        }
    }
}

impl State {
    pub fn new(server: &str, now: OffsetDateTime, theme: Theme, viewport: Viewport) -> State {
        State {
            now,
            server: server.to_string(),
            theme,
            viewport,
            me: None,
            screen: Screen::Queue,
            queue: ListView {
                loading: true,
                ..ListView::default()
            },
            history: ListView::default(),
            filter: String::new(),
            filter_editing: false,
            needs_my_vote: false,
            detail: None,
            modal: None,
            connection: Connection::Connecting,
            last_update: None,
            flash: None,
            refresh_scheduled: false,
            quit: false,
        }
    }

    /// What to do when the client starts.
    pub fn start(&self) -> Command {
        Command::Batch(vec![
            Command::LoadMe,
            Command::LoadQueue {
                generation: self.queue.generation,
                needs_my_vote: self.needs_my_vote,
            },
        ])
    }

    /// The list the screen shows (or the detail came from).
    pub fn current_list(&self) -> &ListView {
        match self.list_screen() {
            Screen::History => &self.history,
            _ => &self.queue,
        }
    }

    fn current_list_mut(&mut self) -> &mut ListView {
        match self.list_screen() {
            Screen::History => &mut self.history,
            _ => &mut self.queue,
        }
    }

    fn list_screen(&self) -> Screen {
        match (self.screen, &self.detail) {
            (Screen::Detail, Some(detail)) => detail.back_to,
            (screen, _) => screen,
        }
    }

    fn list_rows(&self) -> usize {
        layout::list_rows(self.viewport.height)
    }

    fn detail_rows(&self) -> usize {
        layout::detail_rows(self.viewport.height)
    }

    /// Recomputes both lists' visible rows, keeping each selection on its request.
    fn refilter(&mut self) {
        let keep_queue = self.queue.selected_item().map(|item| item.id);
        let keep_history = self.history.selected_item().map(|item| item.id);
        self.refilter_keeping(keep_queue, keep_history);
    }

    fn refilter_keeping(&mut self, keep_queue: Option<RequestId>, keep_history: Option<RequestId>) {
        let rows = self.list_rows();
        let (filter, mine) = (self.filter.clone(), self.needs_my_vote);
        self.queue.refilter(&filter, mine, keep_queue);
        self.queue.keep_in_view(rows);
        self.history.refilter(&filter, false, keep_history);
        self.history.keep_in_view(rows);
    }

    fn flash(&mut self, tone: Tone, text: impl Into<String>) {
        self.flash = Some(Flash {
            text: text.into(),
            tone,
            until: self.now + Duration::seconds(FLASH_SECONDS),
        });
    }

    /// The flash message still to show, if any.
    pub fn live_flash(&self) -> Option<&Flash> {
        self.flash.as_ref().filter(|flash| flash.until > self.now)
    }

    fn reload_queue(&mut self) -> Command {
        self.queue.generation += 1;
        self.queue.loading = true;
        Command::LoadQueue {
            generation: self.queue.generation,
            needs_my_vote: self.needs_my_vote,
        }
    }

    fn reload_history(&mut self) -> Command {
        self.history.generation += 1;
        self.history.loading = true;
        Command::LoadHistory {
            generation: self.history.generation,
        }
    }

    /// Why `a`/`d` cannot apply right now, or `None` when they can.
    pub fn decision_blocked(&self) -> Option<String> {
        match (self.screen, &self.detail) {
            (Screen::Detail, Some(detail)) => match &detail.review {
                None if detail.error.is_some() => Some("the request did not load".into()),
                None => Some("the request is still loading".into()),
                Some(review) => blocked_reason(
                    review.request.status,
                    review.request.expires_at,
                    Some(&review.viewer),
                    self.now,
                ),
            },
            _ => match self.current_list().selected_item() {
                None => Some("no request selected".into()),
                Some(item) => blocked_reason(item.status, item.expires_at, item.viewer.as_ref(), self.now),
            },
        }
    }

    fn relayout_detail(&mut self) {
        let width = layout::detail_width(self.viewport.width);
        let theme = self.theme;
        let rows = self.detail_rows();
        if let Some(detail) = &mut self.detail {
            detail.doc = match &detail.review {
                Some(review) => detail::document(review, width, &theme),
                None => Document::default(),
            };
            detail.scroll = detail.scroll.min(max_scroll(&detail.doc, rows));
        }
    }
}

fn blocked_reason(
    status: Status,
    expires_at: OffsetDateTime,
    viewer: Option<&Eligibility>,
    now: OffsetDateTime,
) -> Option<String> {
    if status != Status::Pending {
        return Some(format!("the request is {status}"));
    }
    if expires_at <= now {
        return Some("the request has expired".into());
    }
    match viewer {
        Some(viewer) if !viewer.can_decide => Some(
            viewer
                .reason
                .clone()
                .unwrap_or_else(|| "you cannot decide this request".into()),
        ),
        _ => None,
    }
}

fn max_scroll(doc: &Document, rows: usize) -> usize {
    doc.lines.len().saturating_sub(rows.max(1))
}

fn verdict_words(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Approve => ("approve", "Approved"),
        Verdict::Deny => ("deny", "Denied"),
    }
}

/// Applies one message. Pure: no IO, no clock; what must happen outside is the `Command`.
pub fn update(state: &mut State, msg: Msg) -> Command {
    match msg {
        Msg::Key(key) => on_key(state, key),
        Msg::Mouse(kind) => on_mouse(state, kind),
        Msg::Resize(width, height) => {
            state.viewport = Viewport { width, height };
            let rows = state.list_rows();
            state.queue.keep_in_view(rows);
            state.history.keep_in_view(rows);
            state.relayout_detail();
            Command::None
        }
        Msg::Tick(now) => on_tick(state, now),
        Msg::MeLoaded(Ok(me)) => {
            state.me = Some(me);
            Command::None
        }
        Msg::MeLoaded(Err(error)) => {
            note_failure(state, &error);
            Command::None
        }
        Msg::QueueLoaded { generation, result } => on_queue_loaded(state, generation, result),
        Msg::HistoryLoaded { generation, result } => {
            if generation != state.history.generation {
                return Command::None;
            }
            let history = &mut state.history;
            history.loading = false;
            match result {
                Ok(items) => {
                    let keep = history.selected_item().map(|item| item.id);
                    history.items = items;
                    history.loaded = true;
                    history.error = None;
                    history.retry_at = None;
                    state.last_update = Some(state.now);
                    let keep_queue = state.queue.selected_item().map(|item| item.id);
                    state.refilter_keeping(keep_queue, keep);
                }
                Err(error) => {
                    history.error = Some(error.to_string());
                    history.retry_at = Some(state.now + Duration::seconds(RETRY_SECONDS));
                    note_failure(state, &error);
                }
            }
            Command::None
        }
        Msg::DetailLoaded { id, result } => on_detail_loaded(state, id, result),
        Msg::Decided { id, verdict, result } => on_decided(state, id, verdict, result),
        Msg::Live(event) => on_live(state, event),
        Msg::Resync => {
            if let Some(detail) = &mut state.detail {
                detail.stale = true;
            }
            schedule_refresh(state)
        }
        Msg::StreamUp => {
            let was_down = matches!(
                state.connection,
                Connection::Reconnecting { .. } | Connection::Offline { .. }
            );
            state.connection = Connection::Live;
            state.last_update = Some(state.now);
            if was_down {
                // Catch up on whatever happened while the stream was away.
                schedule_refresh(state)
            } else {
                Command::None
            }
        }
        Msg::StreamDown {
            attempt,
            reason,
            retry_in,
        } => {
            let retry_in_s = retry_in.as_secs_f64().ceil() as u64;
            state.connection = if attempt >= OFFLINE_AFTER_ATTEMPTS {
                Connection::Offline { reason, retry_in_s }
            } else {
                Connection::Reconnecting { attempt, retry_in_s }
            };
            Command::None
        }
        Msg::RefreshDue => {
            state.refresh_scheduled = false;
            let mut command = state.reload_queue();
            if state.history.loaded || state.screen == Screen::History {
                command = command.and(state.reload_history());
            }
            if let Some(detail) = &mut state.detail
                && detail.stale
            {
                detail.stale = false;
                detail.loading = true;
                command = command.and(Command::LoadDetail { id: detail.id });
            }
            command
        }
    }
}

/// A failed load: say so, and mark the connection offline when the server is away.
fn note_failure(state: &mut State, error: &ClientError) {
    if error.is_auth() {
        state.connection = Connection::Offline {
            reason: "sign-in no longer valid: run `signoff login`".into(),
            retry_in_s: RETRY_SECONDS as u64,
        };
        state.flash(Tone::Bad, error.to_string());
    } else if let ClientError::Unreachable { detail, .. } = error {
        state.connection = Connection::Offline {
            reason: detail.clone(),
            retry_in_s: RETRY_SECONDS as u64,
        };
    } else {
        state.flash(Tone::Bad, error.to_string());
    }
}

fn schedule_refresh(state: &mut State) -> Command {
    if state.refresh_scheduled {
        return Command::None;
    }
    state.refresh_scheduled = true;
    Command::RefreshAfter(REFRESH_DEBOUNCE)
}

fn on_tick(state: &mut State, now: OffsetDateTime) -> Command {
    state.now = now;
    if state.flash.as_ref().is_some_and(|flash| flash.until <= now) {
        state.flash = None;
    }
    let mut command = Command::None;
    let due = |list: &ListView| !list.loading && list.retry_at.is_some_and(|at| at <= now);
    if due(&state.queue) {
        state.queue.retry_at = None;
        command = command.and(state.reload_queue());
    }
    if due(&state.history) {
        state.history.retry_at = None;
        command = command.and(state.reload_history());
    }
    command
}

fn on_queue_loaded(state: &mut State, generation: u64, result: Result<QueuePage, ClientError>) -> Command {
    if generation != state.queue.generation {
        return Command::None;
    }
    match result {
        Ok(page) => {
            let keep = state.queue.selected_item().map(|item| item.id);
            let queue = &mut state.queue;
            if page.first {
                queue.items = page.items;
            } else {
                queue.items.extend(page.items);
            }
            queue.loading = !page.last;
            queue.loaded = true;
            queue.truncated = page.truncated;
            queue.error = None;
            queue.retry_at = None;
            state.last_update = Some(state.now);
            if let Connection::Offline { .. } = state.connection {
                // The server answers again; the events stream will follow.
                state.connection = Connection::Connecting;
            }
            let keep_history = state.history.selected_item().map(|item| item.id);
            state.refilter_keeping(keep, keep_history);
        }
        Err(error) => {
            state.queue.loading = false;
            state.queue.error = Some(error.to_string());
            state.queue.retry_at = Some(state.now + Duration::seconds(RETRY_SECONDS));
            note_failure(state, &error);
        }
    }
    Command::None
}

fn on_detail_loaded(state: &mut State, id: RequestId, result: Result<ReviewView, ClientError>) -> Command {
    let Some(detail) = state.detail.as_mut().filter(|detail| detail.id == id) else {
        return Command::None;
    };
    detail.loading = false;
    match result {
        Ok(review) => {
            detail.title = review.request.title.clone();
            detail.review = Some(review);
            detail.error = None;
            let then_decide = detail.then_decide.take();
            state.relayout_detail();
            let blocked = state.decision_blocked();
            if let Some(verdict) = then_decide {
                match blocked {
                    Some(reason) => {
                        let (verb, _) = verdict_words(verdict);
                        state.flash(Tone::Bad, format!("Cannot {verb}: {reason}"));
                    }
                    None => {
                        state.modal = Some(Modal::Comment {
                            verdict,
                            input: String::new(),
                            error: None,
                        });
                    }
                }
            } else if let (Some(reason), Some(Modal::Comment { verdict, .. } | Modal::Confirm { verdict, .. })) =
                (blocked, &state.modal)
            {
                // The request changed while the reviewer was deciding it.
                state.modal = Some(Modal::Refused {
                    verdict: *verdict,
                    message: format!("This request changed while you were deciding: {reason}."),
                });
            }
        }
        Err(error) => {
            detail.error = Some(error.to_string());
            detail.then_decide = None;
            note_failure(state, &error);
        }
    }
    Command::None
}

fn on_decided(state: &mut State, id: RequestId, verdict: Verdict, result: Result<ReviewView, ClientError>) -> Command {
    match result {
        Ok(review) => {
            state.modal = None;
            let request = &review.request;
            let (_, done) = verdict_words(verdict);
            let title = crate::text::sanitize(&request.title, false);
            let outcome = match request.status {
                Status::Pending => format!(
                    "{} of {} approvals, still pending",
                    request.approvals, request.policy.approvals_required
                ),
                status => format!("now {status}"),
            };
            state.flash(Tone::Good, format!("{done} “{title}”: {outcome}"));
            // Update the row at once; the reload confirms.
            if request.status == Status::Pending {
                if let Some(row) = state.queue.items.iter_mut().find(|row| row.id == id) {
                    row.approvals = request.approvals;
                    row.viewer = Some(review.viewer.clone());
                }
            } else {
                state.queue.items.retain(|row| row.id != id);
            }
            if let Some(detail) = state.detail.take_if(|detail| detail.id == id) {
                state.screen = detail.back_to;
            }
            state.refilter();
            state.reload_queue()
        }
        Err(error) => {
            let (verb, _) = verdict_words(verdict);
            state.modal = Some(Modal::Refused {
                verdict,
                message: format!("Could not {verb}: {error}"),
            });
            let changed = matches!(
                error.code(),
                Some("not_pending" | "expired" | "already_decided" | "not_found")
            );
            if changed && state.detail.as_ref().is_some_and(|detail| detail.id == id) {
                if let Some(detail) = &mut state.detail {
                    detail.loading = true;
                }
                Command::LoadDetail { id }.and(state.reload_queue())
            } else {
                if error.is_unreachable() {
                    note_failure(state, &error);
                }
                Command::None
            }
        }
    }
}

fn on_live(state: &mut State, event: LiveEvent) -> Command {
    state.last_update = Some(state.now);
    if event.status != Status::Pending {
        let before = state.queue.items.len();
        state.queue.items.retain(|row| row.id != event.request_id);
        if state.queue.items.len() != before {
            state.refilter();
        }
    }
    if let Some(detail) = &mut state.detail
        && detail.id == event.request_id
    {
        detail.stale = true;
    }
    schedule_refresh(state)
}

/// The character a key types into a filter or a comment, if it types one.
fn typed(key: &KeyEvent) -> Option<char> {
    match key.code {
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => Some(c),
        _ => None,
    }
}

fn on_key(state: &mut State, key: KeyEvent) -> Command {
    if key.kind == KeyEventKind::Release {
        return Command::None;
    }
    if keys::action(Place::Always, &key) == Some(Action::Quit) {
        state.quit = true;
        return Command::Quit;
    }
    if state.modal.is_some() {
        return on_modal_key(state, key);
    }
    if state.filter_editing {
        return on_filter_key(state, key);
    }
    match keys::action(Place::Anywhere, &key) {
        Some(Action::Quit) => {
            state.quit = true;
            return Command::Quit;
        }
        Some(Action::Help) => {
            state.modal = Some(Modal::Help { scroll: 0 });
            return Command::None;
        }
        _ => {}
    }
    match state.screen {
        Screen::Queue | Screen::History => on_list_key(state, key),
        Screen::Detail => on_detail_key(state, key),
    }
}

fn on_list_key(state: &mut State, key: KeyEvent) -> Command {
    let rows = state.list_rows();
    let page = rows.max(1) as isize;
    let on_queue = state.screen == Screen::Queue;
    let Some(action) = keys::action(Place::List, &key) else {
        return Command::None;
    };
    match action {
        Action::Next => state.current_list_mut().move_by(1, rows),
        Action::Previous => state.current_list_mut().move_by(-1, rows),
        Action::First => state.current_list_mut().select(0, rows),
        Action::Last => state.current_list_mut().select(usize::MAX, rows),
        Action::PageDown => state.current_list_mut().move_by(page, rows),
        Action::PageUp => state.current_list_mut().move_by(-page, rows),
        Action::HalfPageDown => state.current_list_mut().move_by(page / 2, rows),
        Action::HalfPageUp => state.current_list_mut().move_by(-page / 2, rows),
        Action::Open => return open_detail(state, None),
        Action::Filter => state.filter_editing = true,
        Action::ToggleMine if on_queue => {
            state.needs_my_vote = !state.needs_my_vote;
            state.queue.selected = 0;
            state.queue.offset = 0;
            let keep_history = state.history.selected_item().map(|item| item.id);
            state.refilter_keeping(None, keep_history);
            return state.reload_queue();
        }
        Action::ToggleMine => {
            state.flash(Tone::Info, "Tab (needs my vote) applies to the queue");
        }
        Action::History if on_queue => {
            state.screen = Screen::History;
            if !state.history.loaded && !state.history.loading {
                return state.reload_history();
            }
        }
        Action::History | Action::Back if !on_queue => state.screen = Screen::Queue,
        Action::Back if !state.filter.is_empty() => {
            // Clearing keeps the selected request selected.
            state.filter.clear();
            state.refilter();
        }
        Action::Reload => {
            return if on_queue {
                state.reload_queue()
            } else {
                state.reload_history()
            };
        }
        Action::Approve => return start_decision(state, Verdict::Approve),
        Action::Deny => return start_decision(state, Verdict::Deny),
        _ => {}
    }
    Command::None
}

fn open_detail(state: &mut State, then_decide: Option<Verdict>) -> Command {
    let Some(item) = state.current_list().selected_item() else {
        return Command::None;
    };
    let id = item.id;
    let title = item.title.clone();
    let back_to = state.screen;
    state.detail = Some(Detail {
        id,
        title,
        review: None,
        doc: Document::default(),
        loading: true,
        error: None,
        scroll: 0,
        then_decide,
        stale: false,
        back_to,
    });
    state.screen = Screen::Detail;
    Command::LoadDetail { id }
}

/// `a`/`d`: refuse with the reason when the key cannot apply; from a list, open the
/// request first (the confirmation needs its digest); in the detail, ask for the comment.
fn start_decision(state: &mut State, verdict: Verdict) -> Command {
    if let Some(reason) = state.decision_blocked() {
        let (verb, _) = verdict_words(verdict);
        state.flash(Tone::Bad, format!("Cannot {verb}: {reason}"));
        return Command::None;
    }
    if state.screen == Screen::Detail {
        state.modal = Some(Modal::Comment {
            verdict,
            input: String::new(),
            error: None,
        });
        return Command::None;
    }
    open_detail(state, Some(verdict))
}

fn on_detail_key(state: &mut State, key: KeyEvent) -> Command {
    let rows = state.detail_rows();
    let Some(detail) = state.detail.as_mut() else {
        state.screen = Screen::Queue;
        return Command::None;
    };
    let max = max_scroll(&detail.doc, rows);
    let page = rows.saturating_sub(1).max(1);
    let Some(action) = keys::action(Place::Detail, &key) else {
        return Command::None;
    };
    match action {
        Action::Next => detail.scroll = (detail.scroll + 1).min(max),
        Action::Previous => detail.scroll = detail.scroll.saturating_sub(1),
        Action::HalfPageDown => detail.scroll = (detail.scroll + page / 2).min(max),
        Action::HalfPageUp => detail.scroll = detail.scroll.saturating_sub(page / 2),
        Action::PageDown => detail.scroll = (detail.scroll + page).min(max),
        Action::PageUp => detail.scroll = detail.scroll.saturating_sub(page),
        Action::First => detail.scroll = 0,
        Action::Last => detail.scroll = max,
        Action::NextFile => match detail.doc.file_starts.iter().find(|&&start| start > detail.scroll) {
            Some(&start) => detail.scroll = start.min(max),
            None if detail.doc.file_starts.is_empty() => state.flash(Tone::Info, "This request has no diff files"),
            None => state.flash(Tone::Info, "Last file"),
        },
        Action::PreviousFile => {
            match detail
                .doc
                .file_starts
                .iter()
                .rev()
                .find(|&&start| start < detail.scroll)
            {
                Some(&start) => detail.scroll = start,
                None if detail.doc.file_starts.is_empty() => state.flash(Tone::Info, "This request has no diff files"),
                None => state.flash(Tone::Info, "First file"),
            }
        }
        Action::Back => {
            state.screen = detail.back_to;
            state.detail = None;
        }
        Action::Reload => {
            detail.loading = true;
            return Command::LoadDetail { id: detail.id };
        }
        Action::Approve => return start_decision(state, Verdict::Approve),
        Action::Deny => return start_decision(state, Verdict::Deny),
        _ => {}
    }
    Command::None
}

fn on_filter_key(state: &mut State, key: KeyEvent) -> Command {
    match (keys::action(Place::FilterInput, &key), typed(&key)) {
        (Some(Action::Confirm), _) => state.filter_editing = false,
        (Some(Action::Cancel), _) => {
            state.filter_editing = false;
            state.filter.clear();
        }
        (Some(Action::Erase), _) => {
            state.filter.pop();
        }
        (Some(Action::EraseAll), _) => state.filter.clear(),
        (None, Some(c)) => {
            if state.filter.chars().count() < 200 {
                state.filter.push(c);
            }
        }
        _ => return Command::None,
    }
    // A new filter starts from its first match.
    state.queue.selected = 0;
    state.queue.offset = 0;
    state.history.selected = 0;
    state.history.offset = 0;
    state.refilter_keeping(None, None);
    Command::None
}

fn on_modal_key(state: &mut State, key: KeyEvent) -> Command {
    let Some(modal) = state.modal.take() else {
        return Command::None;
    };
    let (next, command) = match modal {
        Modal::Help { scroll } => match keys::action(Place::HelpScreen, &key) {
            Some(Action::Cancel) => (None, Command::None),
            Some(Action::Next) => (
                Some(Modal::Help {
                    scroll: (scroll + 1).min(layout::help_max_scroll(state.viewport.height)),
                }),
                Command::None,
            ),
            Some(Action::Previous) => (
                Some(Modal::Help {
                    scroll: scroll.saturating_sub(1),
                }),
                Command::None,
            ),
            _ => (Some(Modal::Help { scroll }), Command::None),
        },
        Modal::Comment {
            verdict,
            mut input,
            error,
        } => match (keys::action(Place::CommentInput, &key), typed(&key)) {
            (Some(Action::Cancel), _) => {
                state.flash(Tone::Info, "Cancelled: nothing was sent");
                (None, Command::None)
            }
            (Some(Action::Confirm), _) => {
                if verdict == Verdict::Deny && input.trim().is_empty() {
                    (
                        Some(Modal::Comment {
                            verdict,
                            input,
                            error: Some("A deny needs a comment: say why.".into()),
                        }),
                        Command::None,
                    )
                } else {
                    (
                        Some(Modal::Confirm {
                            verdict,
                            comment: input.trim().to_string(),
                        }),
                        Command::None,
                    )
                }
            }
            (Some(Action::Erase), _) => {
                input.pop();
                (Some(Modal::Comment { verdict, input, error }), Command::None)
            }
            (Some(Action::EraseAll), _) => (
                Some(Modal::Comment {
                    verdict,
                    input: String::new(),
                    error,
                }),
                Command::None,
            ),
            (None, Some(c)) => {
                if input.chars().count() < limits::COMMENT_CHARS {
                    input.push(c);
                }
                (
                    Some(Modal::Comment {
                        verdict,
                        input,
                        error: None,
                    }),
                    Command::None,
                )
            }
            _ => (Some(Modal::Comment { verdict, input, error }), Command::None),
        },
        Modal::Confirm { verdict, comment } => match keys::action(Place::Confirmation, &key) {
            Some(Action::Confirm) => match state.detail.as_ref().map(|detail| detail.id) {
                Some(id) => (
                    Some(Modal::Submitting { verdict }),
                    Command::Decide { id, verdict, comment },
                ),
                None => (None, Command::None),
            },
            Some(Action::Cancel) => {
                state.flash(Tone::Info, "Cancelled: nothing was sent");
                (None, Command::None)
            }
            _ => (Some(Modal::Confirm { verdict, comment }), Command::None),
        },
        // Nothing to do but wait for the answer.
        Modal::Submitting { verdict } => (Some(Modal::Submitting { verdict }), Command::None),
        Modal::Refused { verdict, message } => match keys::action(Place::Refusal, &key) {
            Some(Action::Cancel) => (None, Command::None),
            _ => (Some(Modal::Refused { verdict, message }), Command::None),
        },
    };
    state.modal = next;
    command
}

fn on_mouse(state: &mut State, kind: MouseEventKind) -> Command {
    let delta: isize = match kind {
        MouseEventKind::ScrollDown => 1,
        MouseEventKind::ScrollUp => -1,
        _ => return Command::None,
    };
    if let Some(Modal::Help { scroll }) = &mut state.modal {
        *scroll = scroll
            .saturating_add_signed(delta)
            .min(layout::help_max_scroll(state.viewport.height));
        return Command::None;
    }
    if state.modal.is_some() {
        return Command::None;
    }
    let rows = state.list_rows();
    let detail_rows = state.detail_rows();
    match (state.screen, state.detail.as_mut()) {
        (Screen::Detail, Some(detail)) => {
            let max = max_scroll(&detail.doc, detail_rows);
            detail.scroll = detail
                .scroll
                .saturating_add_signed(delta * WHEEL_LINES as isize)
                .min(max);
        }
        _ => state.current_list_mut().move_by(delta, rows),
    }
    Command::None
}
