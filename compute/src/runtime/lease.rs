//! A worker's lease on writing output.
//!
//! The coordinator counts a worker alive for the heartbeat timeout from the
//! last heartbeat it heard, and then gives the worker's subtasks to others.
//! A worker that was only paused (a stop signal, a long stall, a network
//! that held its packets) would wake up and go on writing its old attempt's
//! output beside its replacement. The store refuses its state writes (the
//! attempt's generation is fenced); the lease stops its sinks: each
//! heartbeat the coordinator acknowledges keeps the lease until three
//! quarters of the timeout after the heartbeat was *sent*, and a sink
//! writes nothing once the lease has run out. The coordinator heard that
//! heartbeat after it was sent, so it declares the worker dead a full
//! timeout after that at the earliest: the worker has stopped writing a
//! quarter of the timeout before (the margin for clocks that run at
//! slightly different rates). Not half: on a loaded machine an
//! acknowledgement can take longer than a heartbeat interval, and a lease
//! that runs out stops a live worker's attempt.
//!
//! The runtime checks the lease before each call into a sink; a sink whose
//! bytes leave the process inside a call (a file sink flushing a full
//! buffer, staging an epoch) is given the lease (`Sink::hold`) and checks it
//! again right before they leave, since a worker can be paused in the
//! middle of a call. What remains is the moment between that check and the
//! write itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Until when this worker may write output.
#[derive(Debug)]
pub struct Lease {
    base: Instant,
    /// Microseconds after `base`; 0: never held (or ended before `base`).
    until_us: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Lease::new()
    }
}

impl Lease {
    /// A lease not held yet.
    pub fn new() -> Lease {
        Lease {
            base: now(),
            until_us: AtomicU64::new(0),
        }
    }

    /// The coordinator heard from this worker a message sent at `sent`:
    /// the lease holds until `sent + span` (if that is later than now).
    pub fn extend(&self, sent: Instant, span: Duration) {
        let until = (sent + span)
            .saturating_duration_since(self.base)
            .as_micros() as u64;
        // 0 (a lease that ended before this one began) holds nothing.
        self.until_us.fetch_max(until, Ordering::AcqRel);
    }

    /// Whether the lease holds now.
    pub fn holds(&self) -> bool {
        let now = now().saturating_duration_since(self.base).as_micros() as u64;
        now < self.until_us.load(Ordering::Acquire)
    }

    /// `Ok` while the lease holds; the error says why output stops.
    pub fn check(&self) -> Result<()> {
        if self.holds() {
            Ok(())
        } else {
            Err(Error::Runtime(
                "this worker's lease ran out (its coordinator has not acknowledged a heartbeat \
                 for 3/4 of the heartbeat timeout): it may have been replaced, so its sinks write \
                 no more"
                    .into(),
            ))
        }
    }
}

#[allow(clippy::disallowed_methods)] // a lease is wall time by nature
fn now() -> Instant {
    Instant::now()
}

/// The clock a worker's heartbeats are timed with.
pub fn heartbeat_clock() -> Instant {
    now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_from_an_acknowledged_heartbeat_and_runs_out() {
        let l = Lease::new();
        assert!(!l.holds(), "not held before any heartbeat");
        assert!(l.check().is_err());
        let sent = heartbeat_clock();
        l.extend(sent, Duration::from_secs(3600));
        assert!(l.holds());
        assert!(l.check().is_ok());
        // A later acknowledgement of an older heartbeat does not shorten it.
        l.extend(sent, Duration::from_millis(1));
        assert!(l.holds());
        let gone = Lease::new();
        gone.extend(sent, Duration::ZERO);
        assert!(
            !gone.holds(),
            "a lease that ended when its heartbeat was sent"
        );
    }
}
