//! How the walk-through looks on stdout: step headings, short explanations, tables, and one
//! color per key so a key can be followed from lane to lane. Plain text when color is off
//! (a pipe, NO_COLOR, --color never), so the output can be pasted and parsed.

use std::cell::Cell;

use nu_ansi_term::{Color, Style};

use crate::record::Symbol;
use crate::table::Table;

/// One color per symbol, in `Symbol::ALL` order.
const KEY_COLORS: [Color; 7] = [
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Red,
    Color::Fixed(208), // orange
];

/// The widest ticker, so that keys line up in columns.
const KEY_WIDTH: usize = 5;

pub struct Show {
    color: bool,
    /// Whoever read stdout has gone (a closed pipe): the walk-through goes on, so that it
    /// still cleans up its topic, but says nothing more.
    gone: Cell<bool>,
}

impl Show {
    pub fn new(color: bool) -> Self {
        Show {
            color,
            gone: Cell::new(false),
        }
    }

    fn print(&self, line: &str) {
        if !self.gone.get() && crate::stdout::write(format!("{line}\n")).is_err() {
            self.gone.set(true);
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.paint(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn heading(&self, text: &str) {
        self.print("");
        self.print(&self.paint(Color::Cyan.bold(), &format!("━━ {text}")));
    }

    /// A short explanation, indented under its heading.
    pub fn say(&self, text: &str) {
        for line in text.lines() {
            self.print(&format!("  {}", self.paint(Style::new().italic(), line)));
        }
    }

    /// A line of the walk-through's own (claims, lanes), indented like the explanations.
    pub fn line(&self, text: &str) {
        self.print(&format!("  {text}"));
    }

    pub fn table(&self, mut table: Table) {
        for line in table.render(self.color).lines() {
            self.print(&format!("  {line}"));
        }
    }

    /// The key in its own color, padded so that what follows lines up.
    pub fn key(&self, key: Symbol) -> String {
        let padded = format!("{:<KEY_WIDTH$}", key.as_str());
        self.paint(Style::new().fg(KEY_COLORS[key.index()]), &padded)
    }

    /// The key in its own color, unpadded.
    pub fn key_tight(&self, key: Symbol) -> String {
        self.paint(Style::new().fg(KEY_COLORS[key.index()]), key.as_str())
    }

    pub fn strong(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    pub fn good(&self, text: &str) -> String {
        self.paint(Color::Green.bold(), text)
    }
}
