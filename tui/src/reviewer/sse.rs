//! Server-sent events, parsed as the HTML standard describes, as a pure function of the
//! bytes received; and the reconnection backoff.

use std::time::Duration;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The last event id seen so far (ids persist across events, as the standard says).
    pub id: Option<String>,
}

/// A line longer than this is garbage or an attack: it is dropped rather than buffered.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Incremental parser: feed it chunks as they arrive, in any split.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// Discarding an overlong line until its end.
    skipping: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_event_id: Option<String>,
    retry: Option<Duration>,
}

impl SseParser {
    /// A parser resuming after `last_event_id` (what a reconnection sends as `Last-Event-ID`).
    pub fn resume(last_event_id: Option<String>) -> Self {
        SseParser {
            last_event_id,
            ..SseParser::default()
        }
    }

    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The reconnection delay the server asked for with `retry:`, if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Consumes a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut start = 0;
        for (index, &byte) in chunk.iter().enumerate() {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                // The `\n` of a `\r\n`, possibly split across chunks.
                start = index + 1;
                continue;
            }
            if byte == b'\n' || byte == b'\r' {
                self.push_pending(&chunk[start..index]);
                self.end_line(&mut events);
                start = index + 1;
                self.after_cr = byte == b'\r';
            }
        }
        self.push_pending(&chunk[start..]);
        events
    }

    fn push_pending(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.pending.len() + bytes.len() > MAX_LINE_BYTES {
            self.pending.clear();
            self.skipping = true;
            return;
        }
        self.pending.extend_from_slice(bytes);
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        if std::mem::take(&mut self.skipping) {
            self.pending.clear();
            return;
        }
        let bytes = std::mem::take(&mut self.pending);
        let mut line = String::from_utf8_lossy(&bytes).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{FEFF}') {
                line = rest.to_string();
            }
        }
        self.process_line(&line, events);
    }

    fn process_line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return; // a comment, e.g. `: keepalive`
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.last_event_id = (!value.is_empty()).then(|| value.to_string());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        events.push(SseEvent {
            event: if event.is_empty() { "message".to_string() } else { event },
            data,
            id: self.last_event_id.clone(),
        });
    }
}

/// Reconnection delays: `initial`, doubling up to `max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// After a connection that worked, start again from the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: kind.into(),
            data: data.into(),
            id: id.map(str::to_string),
        }
    }

    const STREAM: &str = ": keepalive\n\nevent: created\nid: 41\ndata: {\"kind\":\"created\"}\n\nevent: decided\nid: 42\ndata: one\ndata: two\n\n";

    #[test]
    fn parses_events_ids_comments_and_multiline_data() {
        let mut parser = SseParser::default();
        let events = parser.feed(STREAM.as_bytes());
        assert_eq!(
            events,
            vec![
                event("created", "{\"kind\":\"created\"}", Some("41")),
                event("decided", "one\ntwo", Some("42")),
            ]
        );
        assert_eq!(parser.last_event_id(), Some("42"));
    }

    #[test]
    fn any_split_of_the_stream_gives_the_same_events() {
        let whole = SseParser::default().feed(STREAM.as_bytes());
        let bytes = STREAM.as_bytes();
        for split in 0..bytes.len() {
            let mut parser = SseParser::default();
            let mut events = parser.feed(&bytes[..split]);
            events.extend(parser.feed(&bytes[split..]));
            assert_eq!(events, whole, "split at {split}");
        }
        let mut parser = SseParser::default();
        let one_by_one: Vec<_> = bytes.iter().flat_map(|b| parser.feed(&[*b])).collect();
        assert_eq!(one_by_one, whole);
    }

    #[test]
    fn crlf_and_cr_line_endings_split_across_chunks() {
        let mut parser = SseParser::default();
        let mut events = parser.feed(b"event: expired\r");
        events.extend(parser.feed(b"\ndata: x\r\n\r"));
        events.extend(parser.feed(b"\n"));
        events.extend(parser.feed(b"data: y\r\r"));
        assert_eq!(events, vec![event("expired", "x", None), event("message", "y", None)]);
    }

    #[test]
    fn field_details_follow_the_standard() {
        let mut parser = SseParser::resume(Some("7".into()));
        let events =
            parser.feed(b"\xEF\xBB\xBFdata:no-space\n\nevent: empty\n\nretry: 2500\nretry: x\ndata\n\nid\ndata: z\n\n");
        assert_eq!(
            events,
            vec![
                event("message", "no-space", Some("7")),
                event("message", "", Some("7")),
                event("message", "z", None),
            ]
        );
        assert_eq!(parser.retry(), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn an_event_without_a_blank_line_is_not_dispatched_yet() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"event: created\ndata: x\n").is_empty());
        assert_eq!(parser.feed(b"\n"), vec![event("created", "x", None)]);
    }

    #[test]
    fn overlong_lines_are_dropped_not_buffered() {
        let mut parser = SseParser::default();
        let huge = vec![b'a'; MAX_LINE_BYTES + 10];
        assert!(parser.feed(b"data: ").is_empty());
        assert!(parser.feed(&huge).is_empty());
        assert!(parser.feed(b"\n\ndata: ok\n\n").len() == 1);
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..9).map(|_| backoff.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }
}
