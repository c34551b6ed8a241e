//! Every key of the reviewer's client as data: which keys, where they apply, what they do,
//! how the key bar and the dialogs name them and what the help screen says. Dispatch
//! (`state`), the key bar, the dialogs' footers and the help screen (`view`) all read this
//! one table, so a key cannot work without being listed, nor be listed without working.
//! Only typed text (a filter, a comment) is not in it: any other character is typed.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key does; what that means on each screen is `state`'s to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Next,
    Previous,
    First,
    Last,
    PageDown,
    PageUp,
    HalfPageDown,
    HalfPageUp,
    Open,
    Approve,
    Deny,
    Filter,
    ToggleMine,
    History,
    Reload,
    Back,
    NextFile,
    PreviousFile,
    Confirm,
    Cancel,
    /// Typing: remove the last character.
    Erase,
    /// Typing: remove everything typed.
    EraseAll,
    /// The mouse wheel, which the help screen lists but `update` reads as mouse events.
    Scroll,
    Help,
    Quit,
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The queue and the history.
    List,
    Detail,
    /// Typing a filter.
    FilterInput,
    /// Typing a decision's comment.
    CommentInput,
    /// The confirmation of a decision.
    Confirmation,
    /// A decision the server refused.
    Refusal,
    /// The help screen.
    HelpScreen,
    /// Every screen without a dialog open.
    Anywhere,
    /// Every screen, dialogs and typing included.
    Always,
}

/// The help screen's sections, in order, and the places each one lists.
const HELP_SECTIONS: [(&str, &[Place]); 4] = [
    ("Queue and history", &[Place::List]),
    ("Request detail", &[Place::Detail]),
    ("Deciding", &[Place::CommentInput, Place::Confirmation]),
    ("Anywhere", &[Place::Anywhere, Place::Always]),
];

/// A key, with or without Ctrl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    code: KeyCode,
    ctrl: bool,
}

const fn key(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

const fn special(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

impl Key {
    /// Ctrl makes a letter another key (Ctrl-D pages, d denies); on Enter, Esc or an arrow
    /// it changes nothing.
    fn matches(&self, event: &KeyEvent) -> bool {
        let ctrl_held = event.modifiers.contains(KeyModifiers::CONTROL);
        self.code == event.code
            && match self.code {
                KeyCode::Char(_) => self.ctrl == ctrl_held,
                _ => !self.ctrl || ctrl_held,
            }
    }
}

/// One line of the table.
pub struct Binding {
    pub place: Place,
    pub keys: &'static [Key],
    pub action: Action,
    /// The keys as the help screen writes them; empty for keys it does not list.
    pub keys_text: &'static str,
    pub help: &'static str,
    /// The key and word for it that the key bar or a dialog's footer shows, if any.
    pub hint: Option<(&'static str, &'static str)>,
}

const fn bind(
    place: Place,
    keys: &'static [Key],
    action: Action,
    keys_text: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        place,
        keys,
        action,
        keys_text,
        help,
        hint: None,
    }
}

const fn hinted(binding: Binding, key: &'static str, word: &'static str) -> Binding {
    Binding {
        hint: Some((key, word)),
        ..binding
    }
}

use Action::*;
use Place::*;

/// The table, in the order the help screen lists it.
pub const KEYMAP: &[Binding] = &[
    bind(List, &[key('j'), special(KeyCode::Down)], Next, "j / ↓", "next request"),
    bind(
        List,
        &[key('k'), special(KeyCode::Up)],
        Previous,
        "k / ↑",
        "previous request",
    ),
    bind(
        List,
        &[key('g'), special(KeyCode::Home)],
        First,
        "g / Home",
        "first request",
    ),
    bind(
        List,
        &[key('G'), special(KeyCode::End)],
        Last,
        "G / End",
        "last request",
    ),
    bind(
        List,
        &[special(KeyCode::PageDown)],
        PageDown,
        "PgDn / PgUp",
        "page down / up (also Ctrl-D / Ctrl-U)",
    ),
    bind(List, &[special(KeyCode::PageUp)], PageUp, "", ""),
    bind(List, &[ctrl('d')], HalfPageDown, "", ""),
    bind(List, &[ctrl('u')], HalfPageUp, "", ""),
    hinted(
        bind(List, &[special(KeyCode::Enter)], Open, "Enter", "open the request"),
        "↵",
        "open",
    ),
    hinted(
        bind(
            List,
            &[key('a')],
            Approve,
            "a",
            "approve the selected request (opens it first)",
        ),
        "a",
        "approve",
    ),
    hinted(
        bind(
            List,
            &[key('d')],
            Deny,
            "d",
            "deny the selected request (opens it first)",
        ),
        "d",
        "deny",
    ),
    hinted(
        bind(
            List,
            &[key('/')],
            Filter,
            "/",
            "filter by words (Enter keeps, Esc clears)",
        ),
        "/",
        "filter",
    ),
    hinted(
        bind(
            List,
            &[special(KeyCode::Tab), special(KeyCode::BackTab)],
            ToggleMine,
            "Tab",
            "queue: only requests that need my vote, on/off",
        ),
        "Tab",
        "mine",
    ),
    hinted(
        bind(List, &[key('h')], History, "h", "history of decided requests, or back"),
        "h",
        "history",
    ),
    hinted(bind(List, &[key('r')], Reload, "r", "reload now"), "r", "reload"),
    bind(
        List,
        &[special(KeyCode::Esc)],
        Back,
        "Esc",
        "clear the filter / back to the queue",
    ),
    bind(
        Detail,
        &[key('j'), special(KeyCode::Down)],
        Next,
        "j / k, ↓ / ↑",
        "scroll a line",
    ),
    bind(Detail, &[key('k'), special(KeyCode::Up)], Previous, "", ""),
    bind(
        Detail,
        &[special(KeyCode::PageDown), key(' ')],
        PageDown,
        "Space, PgDn / PgUp",
        "scroll a page",
    ),
    bind(Detail, &[special(KeyCode::PageUp)], PageUp, "", ""),
    bind(Detail, &[ctrl('d')], HalfPageDown, "", ""),
    bind(Detail, &[ctrl('u')], HalfPageUp, "", ""),
    bind(
        Detail,
        &[key('g'), special(KeyCode::Home)],
        First,
        "g / G",
        "top / bottom",
    ),
    bind(Detail, &[key('G'), special(KeyCode::End)], Last, "", ""),
    hinted(
        bind(
            Detail,
            &[key('n'), key(']')],
            NextFile,
            "n / p",
            "next / previous file of the diff",
        ),
        "n/p",
        "files",
    ),
    bind(Detail, &[key('p'), key('[')], PreviousFile, "", ""),
    hinted(bind(Detail, &[key('a')], Approve, "a", "approve"), "a", "approve"),
    hinted(
        bind(Detail, &[key('d')], Deny, "d", "deny (a comment is required)"),
        "d",
        "deny",
    ),
    bind(Detail, &[key('r')], Reload, "r", "reload the request"),
    hinted(
        bind(
            Detail,
            &[
                special(KeyCode::Esc),
                special(KeyCode::Backspace),
                special(KeyCode::Left),
                key('b'),
            ],
            Back,
            "Esc / Backspace",
            "back to the list",
        ),
        "Esc",
        "back",
    ),
    hinted(
        bind(FilterInput, &[special(KeyCode::Enter)], Confirm, "", ""),
        "Enter",
        "keep",
    ),
    hinted(
        bind(FilterInput, &[special(KeyCode::Esc)], Cancel, "", ""),
        "Esc",
        "clear",
    ),
    bind(FilterInput, &[special(KeyCode::Backspace)], Erase, "", ""),
    bind(FilterInput, &[ctrl('u')], EraseAll, "", ""),
    hinted(
        bind(
            CommentInput,
            &[special(KeyCode::Enter)],
            Confirm,
            "type, Enter",
            "write the comment, then review",
        ),
        "Enter",
        "review and confirm",
    ),
    hinted(
        bind(CommentInput, &[special(KeyCode::Esc)], Cancel, "", ""),
        "Esc",
        "cancel",
    ),
    bind(CommentInput, &[special(KeyCode::Backspace)], Erase, "", ""),
    bind(CommentInput, &[ctrl('u')], EraseAll, "", ""),
    // The footer says the verdict ("approve", "deny") for "confirm".
    hinted(
        bind(
            Confirmation,
            &[key('y'), key('Y'), special(KeyCode::Enter)],
            Confirm,
            "y / Enter",
            "confirm: sign off what is shown",
        ),
        "y / Enter",
        "confirm",
    ),
    hinted(
        bind(
            Confirmation,
            &[key('n'), key('N'), special(KeyCode::Esc)],
            Cancel,
            "n / Esc",
            "cancel: nothing is sent",
        ),
        "n / Esc",
        "cancel",
    ),
    hinted(
        bind(
            Refusal,
            &[special(KeyCode::Esc), special(KeyCode::Enter), key(' ')],
            Cancel,
            "",
            "",
        ),
        "Enter / Esc",
        "close",
    ),
    hinted(
        bind(HelpScreen, &[key('j'), special(KeyCode::Down)], Next, "", ""),
        "j/k",
        "scroll",
    ),
    bind(HelpScreen, &[key('k'), special(KeyCode::Up)], Previous, "", ""),
    hinted(
        bind(
            HelpScreen,
            &[special(KeyCode::Esc), key('?'), key('q'), special(KeyCode::Enter)],
            Cancel,
            "",
            "",
        ),
        "Esc",
        "close",
    ),
    hinted(
        bind(Anywhere, &[key('?')], Help, "?", "this help (Esc closes)"),
        "?",
        "help",
    ),
    bind(Anywhere, &[], Scroll, "mouse wheel", "scroll"),
    hinted(bind(Anywhere, &[key('q')], Quit, "q", "quit (Ctrl-C too)"), "q", "quit"),
    bind(Always, &[ctrl('c')], Quit, "", ""),
];

/// What `event` does in `place`, if anything.
pub fn action(place: Place, event: &KeyEvent) -> Option<Action> {
    KEYMAP
        .iter()
        .find(|binding| binding.place == place && binding.keys.iter().any(|key| key.matches(event)))
        .map(|binding| binding.action)
}

/// The key bar's key and word for `action` in `place`.
pub fn hint(place: Place, action: Action) -> (&'static str, &'static str) {
    KEYMAP
        .iter()
        .find(|binding| binding.place == place && binding.action == action)
        .and_then(|binding| binding.hint)
        .unwrap_or(("", ""))
}

/// `actions`' hints in `place` as a dialog's footer writes them, `key{between}word`
/// joined by ` · `: `Enter: review and confirm · Esc: cancel`.
pub fn footer(place: Place, actions: &[Action], between: &str) -> String {
    actions
        .iter()
        .map(|&action| {
            let (key, word) = hint(place, action);
            format!("{key}{between}{word}")
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The help screen: per section, its keys as written and what they do.
pub fn help() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    HELP_SECTIONS
        .iter()
        .map(|&(title, places)| {
            let lines = KEYMAP
                .iter()
                .filter(|binding| places.contains(&binding.place) && !binding.keys_text.is_empty())
                .map(|binding| (binding.keys_text, binding.help))
                .collect();
            (title, lines)
        })
        .collect()
}

/// Lines the help screen has: per section a heading, its keys and a blank line.
pub fn help_line_count() -> usize {
    help().iter().map(|(_, keys)| keys.len() + 2).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: crossterm::event::KeyEventState::NONE,
        }
    }

    #[test]
    fn no_key_does_two_things_in_one_place() {
        for (n, a) in KEYMAP.iter().enumerate() {
            for b in &KEYMAP[n + 1..] {
                if a.place == b.place {
                    for key in a.keys {
                        assert!(!b.keys.contains(key), "{key:?} twice in {:?}", a.place);
                    }
                }
            }
        }
    }

    #[test]
    fn ctrl_d_pages_and_d_denies() {
        assert_eq!(
            action(List, &press(KeyCode::Char('d'), KeyModifiers::CONTROL)),
            Some(HalfPageDown)
        );
        assert_eq!(action(List, &press(KeyCode::Char('d'), KeyModifiers::NONE)), Some(Deny));
        assert_eq!(
            action(Detail, &press(KeyCode::Char(' '), KeyModifiers::NONE)),
            Some(PageDown)
        );
        assert_eq!(action(List, &press(KeyCode::Char(' '), KeyModifiers::NONE)), None);
        assert_eq!(
            action(CommentInput, &press(KeyCode::Enter, KeyModifiers::CONTROL)),
            Some(Confirm)
        );
        assert_eq!(
            action(Always, &press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Quit)
        );
    }

    #[test]
    fn typing_places_leave_every_plain_character_to_the_text() {
        for binding in KEYMAP
            .iter()
            .filter(|binding| matches!(binding.place, FilterInput | CommentInput))
        {
            for key in binding.keys {
                assert!(key.ctrl || !matches!(key.code, KeyCode::Char(_)), "{key:?}");
            }
        }
    }

    #[test]
    fn the_help_screen_lists_what_dispatch_knows() {
        let sections = help();
        assert_eq!(sections.len(), 4);
        assert!(
            sections[0]
                .1
                .contains(&("Tab", "queue: only requests that need my vote, on/off"))
        );
        assert_eq!(hint(List, Open), ("↵", "open"));
        assert_eq!(sections[2].1[0], ("type, Enter", "write the comment, then review"));
        assert_eq!(
            footer(CommentInput, &[Confirm, Cancel], ": "),
            "Enter: review and confirm · Esc: cancel"
        );
    }
}
