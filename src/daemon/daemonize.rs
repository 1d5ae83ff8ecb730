//! Going to the background without losing the mount's outcome.
//!
//! The parent forks before any thread exists, then waits on a pipe: the child writes `OK` once
//! the mount answers, or the error that stopped it, and the parent exits 0 or prints the error
//! and exits 1. If the child dies first, the pipe closes empty and the parent reports that.

use nix::unistd::{fork, ForkResult};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

/// The child's end of the readiness pipe (a no-op in the foreground).
#[derive(Debug)]
pub struct Readiness {
    pipe: Option<File>,
}

impl Readiness {
    /// No parent is waiting (foreground mode).
    pub fn foreground() -> Self {
        Readiness { pipe: None }
    }

    /// Tell the parent the mount is usable; detach from the terminal.
    pub fn ready(&mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(b"OK");
            detach_stdio();
        }
    }

    /// Tell the parent why the mount failed (the parent prints it and exits 1).
    pub fn failed(&mut self, msg: &str) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(msg.as_bytes());
        }
    }
}

/// Fork into the background. Returns only in the child; the parent exits with the outcome.
/// Must be called before any thread is started.
pub fn daemonize() -> Result<Readiness, String> {
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: called from main before the async runtime or any other thread exists, so the
    // child is a copy of a single-threaded process.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { .. } => {
            drop(write);
            let mut msg = String::new();
            let _ = File::from(read).read_to_string(&mut msg);
            if msg == "OK" {
                std::process::exit(0);
            }
            if msg.is_empty() {
                msg = "the mount daemon exited before the mount was ready (see its log file)"
                    .to_string();
            }
            eprintln!("cloudmount: {msg}");
            std::process::exit(1);
        }
        ForkResult::Child => {
            drop(read);
            let _ = nix::unistd::setsid();
            Ok(Readiness {
                pipe: Some(File::from(write)),
            })
        }
    }
}

/// Point stdin, stdout and stderr at /dev/null once the parent has gone.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in [0, 1, 2] {
            // SAFETY: dup2 onto the standard descriptors of this process; `null` stays open
            // for the duration of the call.
            unsafe {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}
