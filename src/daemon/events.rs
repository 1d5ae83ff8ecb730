//! What the serving daemon waits for: SIGTERM/SIGINT (stop), SIGHUP or a changed credential
//! file (reload), or the end of the FUSE session; meanwhile it feeds systemd's watchdog.

use super::notify::Notifier;
use crate::credentials::CredentialWatch;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// What the serving daemon waits for: its signals (none when they cannot be installed), its
/// credential files, and the time of the last watchdog ping, kept across waits.
pub(super) struct Events {
    signals: Option<(Signal, Signal, Signal)>,
    credentials: Option<CredentialWatch>,
    last_ping: std::time::Instant,
}

/// What ends a wait.
pub(super) enum Event {
    /// SIGTERM, SIGINT or the end of the session; says which.
    Stop(&'static str),
    /// SIGHUP, or a credential file changed; says which.
    Reload(&'static str),
}

impl Events {
    /// Install the signal handlers (inside the runtime), and watch `credentials`.
    pub(super) fn new(credentials: Option<CredentialWatch>) -> Self {
        let signals = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(t), Ok(i), Ok(h)) => Some((t, i, h)),
            _ => {
                tracing::warn!("cannot install signal handlers; unmount with `cloudmount unmount`");
                None
            }
        };
        Events {
            signals,
            credentials,
            last_ping: std::time::Instant::now(),
        }
    }

    /// Wait for a signal or the end of the session. Meanwhile, pings systemd's watchdog when
    /// it asks for that.
    pub(super) async fn next(
        &mut self,
        handle: &crate::fuse::MountHandle,
        notify: &Notifier,
    ) -> Event {
        let watchdog = Notifier::watchdog_interval().filter(|_| notify.enabled());
        let (last_ping, credentials) = (&mut self.last_ping, &mut self.credentials);
        let mut tick = || {
            if let Some(every) = watchdog {
                if last_ping.elapsed() >= every {
                    notify.send("WATCHDOG=1");
                    *last_ping = std::time::Instant::now();
                }
            }
            if handle.is_finished() {
                return Some(Event::Stop("the filesystem was unmounted"));
            }
            let changed = credentials.as_mut().is_some_and(CredentialWatch::changed);
            changed.then_some(Event::Reload("a credential file changed"))
        };
        let Some((term, int, hup)) = self.signals.as_mut() else {
            loop {
                if let Some(event) = tick() {
                    return event;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        loop {
            tokio::select! {
                _ = term.recv() => return Event::Stop("SIGTERM"),
                _ = int.recv() => return Event::Stop("SIGINT"),
                _ = hup.recv() => return Event::Reload("SIGHUP"),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if let Some(event) = tick() {
                        return event;
                    }
                }
            }
        }
    }
}
