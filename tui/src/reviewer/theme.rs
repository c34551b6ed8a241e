//! Styles, with a colourless variant (bold and reverse only) for `NO_COLOR` and dumb
//! terminals.

use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub const COLOR: Theme = Theme { color: true };
    pub const MONO: Theme = Theme { color: false };

    /// Colour unless `NO_COLOR` is set (to anything non-empty, per no-color.org) or the
    /// terminal is `dumb`.
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
        Theme {
            color: !(no_color || dumb),
        }
    }

    fn pick(&self, color: Style, mono: Style) -> Style {
        if self.color { color } else { mono }
    }

    pub fn bar(&self) -> Style {
        self.pick(
            Style::new().fg(Color::White).bg(Color::Blue).bold(),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }

    pub fn header(&self) -> Style {
        Style::new().bold()
    }

    pub fn heading(&self) -> Style {
        self.pick(Style::new().fg(Color::Cyan).bold(), Style::new().bold())
    }

    pub fn label(&self) -> Style {
        self.pick(Style::new().fg(Color::Gray), Style::new())
    }

    pub fn key(&self) -> Style {
        self.pick(Style::new().fg(Color::Yellow).bold(), Style::new().bold())
    }

    pub fn disabled(&self) -> Style {
        self.pick(
            Style::new().fg(Color::DarkGray).add_modifier(Modifier::CROSSED_OUT),
            Style::new(),
        )
    }

    pub fn dim(&self) -> Style {
        self.pick(Style::new().fg(Color::DarkGray), Style::new())
    }

    pub fn selected(&self) -> Style {
        self.pick(
            Style::new().bg(Color::Indexed(237)).bold(),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    pub fn added(&self) -> Style {
        self.pick(Style::new().fg(Color::Green), Style::new().bold())
    }

    pub fn removed(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Red),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    pub fn hunk(&self) -> Style {
        self.pick(Style::new().fg(Color::Cyan), Style::new().bold())
    }

    pub fn file_header(&self) -> Style {
        Style::new().bold()
    }

    pub fn good(&self) -> Style {
        self.pick(Style::new().fg(Color::Green).bold(), Style::new().bold())
    }

    pub fn bad(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Red).bold(),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }

    pub fn warn(&self) -> Style {
        self.pick(Style::new().fg(Color::Yellow), Style::new().bold())
    }
}
