//! `stockstream` on a terminal (a pseudo-terminal for stdin and stderr), for what only a
//! person at a terminal sees: questions, live tables, and what stays on screen at the end.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Columns of the test terminal: wide enough that no table line wraps.
const COLUMNS: u16 = 200;
const ROWS: u16 = 50;

/// A running `stockstream` whose stdin and stderr are a terminal; stdout stays as `cmd` had
/// it. Killed if the test ends without waiting for it.
pub struct Terminal {
    child: Option<Child>,
    input: File,
    output: Receiver<Vec<u8>>,
    shown: Vec<u8>,
}

impl Terminal {
    pub fn spawn(mut cmd: Command) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLUMNS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two new descriptors into the two integers and reads `size`.
        let opened = unsafe {
            libc::openpty(
                &raw mut master,
                &raw mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &raw const size,
            )
        };
        assert_eq!(opened, 0, "openpty failed");
        // Not inherited by whatever else the tests start meanwhile (a broker): a stray copy
        // of the terminal would keep it open after the child has exited.
        for fd in [master, slave] {
            // SAFETY: fcntl on a descriptor just opened here.
            assert_eq!(
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
                0
            );
        }
        // SAFETY: both descriptors are new and owned here alone.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        cmd.stdin(Stdio::from(
            slave.try_clone().expect("a second terminal handle"),
        ))
        .stderr(Stdio::from(slave));
        let child = cmd.spawn().expect("starting stockstream on a terminal");
        // The command holds the terminal's other end open; the child's exit must close it.
        drop(cmd);
        let master = File::from(master);
        let input = master.try_clone().expect("a second handle on the terminal");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut master = master;
            let mut buf = [0u8; 4096];
            // Ends when every process holding the terminal has gone (EIO) or the test has.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child: Some(child),
            input,
            output,
            shown: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the terminal has been sent so far, escape codes included.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.shown).into_owned()
    }

    /// Reads until the terminal has shown `text`; fails after `limit`.
    #[track_caller]
    pub fn wait_for_text(&mut self, text: &str, limit: Duration) {
        self.wait_for_times(text, 1, limit);
    }

    /// Reads until the terminal has shown `text` `times` times; fails after `limit`.
    #[track_caller]
    pub fn wait_for_times(&mut self, text: &str, times: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.shown().matches(text).count() < times {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.shown.extend_from_slice(&bytes),
                Err(_) => panic!(
                    "the terminal did not show {text:?} {times} times within {limit:?}:\n{}",
                    self.shown()
                ),
            }
        }
    }

    /// Types `text` at the terminal.
    pub fn type_text(&mut self, text: &str) {
        self.input
            .write_all(text.as_bytes())
            .expect("typing at the terminal");
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        super::send_signal(self.pid(), signal);
    }

    /// Waits for the exit, at most `limit`, and for the terminal to show all it was sent;
    /// returns the exit code and everything shown.
    #[track_caller]
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("still running");
        let output = &self.output;
        let mut shown = std::mem::take(&mut self.shown);
        let status = super::exit_within(&mut child, limit, || {
            while let Ok(bytes) = output.try_recv() {
                shown.extend_from_slice(&bytes);
            }
        });
        self.shown = shown;
        let Some(status) = status else {
            panic!(
                "stockstream did not finish within {limit:?}; the terminal showed:\n{}",
                self.shown()
            );
        };
        // The rest of the output, until the terminal reports its end.
        while let Ok(bytes) = self.output.recv_timeout(Duration::from_secs(5)) {
            self.shown.extend_from_slice(&bytes);
        }
        (status.code(), self.shown())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines a terminal shows once `output` (text with the cursor movements and erasures
/// progress bars use) has been written to it, trailing blanks removed.
pub fn screen(output: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => row += 1,
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut params = String::new();
                let mut action = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_digit() || c == ';' || c == '?' {
                        params.push(c);
                    } else {
                        action = c;
                        break;
                    }
                }
                let n = params.parse::<usize>().unwrap_or(0);
                match action {
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => row += n.max(1),
                    'C' => col += n.max(1),
                    'D' => col = col.saturating_sub(n.max(1)),
                    'G' => col = n.saturating_sub(1),
                    'K' | 'J' => {
                        if row < lines.len() {
                            if n == 2 {
                                lines[row].clear();
                            } else {
                                lines[row].truncate(col);
                            }
                        }
                        if action == 'J' && n != 1 {
                            lines.truncate(row + 1);
                        }
                    }
                    // Colours, styles, the cursor shown or hidden: nothing moves.
                    _ => {}
                }
            }
            // Another escape: one character follows.
            '\x1b' => {
                chars.next();
            }
            _ => {
                while lines.len() <= row {
                    lines.push(Vec::new());
                }
                let line = &mut lines[row];
                while line.len() <= col {
                    line.push(' ');
                }
                line[col] = c;
                col += 1;
            }
        }
    }
    lines
        .iter()
        .map(|l| l.iter().collect::<String>().trim_end().to_string())
        .collect()
}

/// The symbols, in the order of the bars table.
const SYMBOLS: [&str; 7] = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];

/// The rows of the bars table (aggregate's, the demo's) on `screen`: the symbol lines below
/// its header. Fails when the screen has no table, or more than one.
#[track_caller]
pub fn bars_table(screen: &[String]) -> Vec<String> {
    let headers: Vec<usize> = screen
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("SYMBOL  WINDOW (UTC)"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        headers.len(),
        1,
        "one table on screen:\n{}",
        screen.join("\n")
    );
    screen[headers[0] + 1..]
        .iter()
        .take_while(|l| SYMBOLS.iter().any(|s| l.starts_with(&format!("{s} "))))
        .cloned()
        .collect()
}

#[test]
fn the_screen_follows_moves_and_erasures() {
    let out =
        "one\r\ntwo\r\nthree\x1b[1A\r\x1b[2K\x1b[1B\r\x1b[2K\x1b[1A\x1b[31mfirst\x1b[0m\r\nsecond";
    assert_eq!(screen(out), ["one", "first", "second"]);
}
