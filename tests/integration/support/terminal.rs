//! A pseudo-terminal, for runs that must believe a person is watching: stockstream asks
//! questions and draws live tables only on a terminal.

use std::fs::File;
use std::io::Read as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The screen end of a pseudo-terminal, and its device end for a child's stdin or stderr.
pub struct Terminal {
    pub screen: File,
    device: Option<OwnedFd>,
    shown: Vec<u8>,
}

impl Terminal {
    pub fn open() -> Self {
        let (mut screen, mut device) = (0, 0);
        // SAFETY: openpty writes two new descriptors into the two integers.
        let opened = unsafe {
            libc::openpty(
                &raw mut screen,
                &raw mut device,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(opened, 0, "openpty failed");
        // Not inherited by whatever else the tests start meanwhile (the broker): a stray
        // copy of the device would keep the screen open after the child has exited.
        for fd in [screen, device] {
            // SAFETY: fcntl on a descriptor just opened here.
            assert_eq!(
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
                0
            );
        }
        // SAFETY: both descriptors are new and owned here alone.
        let (screen, device) =
            unsafe { (OwnedFd::from_raw_fd(screen), OwnedFd::from_raw_fd(device)) };
        Terminal {
            screen: File::from(screen),
            device: Some(device),
            shown: Vec::new(),
        }
    }

    /// The device, for one of a child's standard streams.
    pub fn device(&self) -> Stdio {
        let device = self.device.as_ref().expect("the device is still open here");
        Stdio::from(device.try_clone().expect("a copy of the terminal device"))
    }

    /// Closes this process's handle on the device once the child has its own, so that the
    /// screen reports its end when the child exits (drop the `Command` too: it holds one).
    pub fn hand_over(&mut self) {
        self.device = None;
    }

    /// Reads what the terminal shows until `done` says so of all of it, or until the other
    /// end is closed (the child has exited); returns whether `done` said so.
    pub fn read_until(&mut self, done: impl Fn(&str) -> bool, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while !done(&self.shown()) {
            assert!(
                Instant::now() < deadline,
                "waited {limit:?}:\n{}",
                self.shown()
            );
            match self.screen.read(&mut buf) {
                Ok(n) if n > 0 => self.shown.extend_from_slice(&buf[..n]),
                _ => return false,
            }
        }
        true
    }

    /// Everything the terminal has shown so far.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.shown).into_owned()
    }
}
