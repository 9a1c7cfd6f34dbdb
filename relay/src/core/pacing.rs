//! Pacing cosigning, so that an idle federation's logs stay still and a
//! member cannot grow ours by asking.
//!
//! Cosigning writes: a witness records each checkpoint it cosigns as a
//! `peer_checkpoint` entry in its own log. If that entry made the witness
//! sign a checkpoint of its own, which its peers cosign, which they record…
//! the logs of a federation with no traffic would grow for ever. So:
//!
//! - owner side, [`worth_a_checkpoint`]: the checkpoint loop signs a new
//!   checkpoint only when the log grew by something other than such echoes
//!   of cosigning (they stay uncovered until the next real entry, or the
//!   checkpoint signed at shutdown, [`Cover::Anything`]);
//! - owner side, [`Backoff`]: a member that refused, gave an answer that
//!   does not hold, or could not be reached is asked again after a delay
//!   that doubles up to a cap, not at every interval;
//! - witness side, [`CosignGate`]: a member's cosigning request sooner than
//!   [`CosignGate::min_gap_ms`] after the last one this relay cosigned for
//!   it is refused as [`TooSoon`], with no log entry; a checkpoint cosigned
//!   before (same size and root) is cosigned again without a new entry
//!   ([`crate::core::witness::Cosigned::fresh`]).
//!
//! Pure: the driver passes `now` and keeps the state. `now` is monotonic
//! time (an [`Instant`]), not the relay's clock: pacing is about how often,
//! and a clock set back or standing still must not stop cosigning.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kurir_proto::AuthorityId;
use kurir_proto::audit::Event;

/// Which growth of the log a checkpoint is signed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cover {
    /// Any entry not yet covered (the checkpoint at shutdown, so that an
    /// export of a stopped relay has no uncovered entries).
    Anything,
    /// Entries other than echoes of cosigning ([`worth_a_checkpoint`]):
    /// the checkpoint loop's.
    RealActivity,
}

/// Whether entries of these events, not yet covered by a checkpoint, are
/// worth a new one: any entry but a `peer_checkpoint` (this relay cosigned
/// a peer's checkpoint) is.
pub fn worth_a_checkpoint(uncovered: impl IntoIterator<Item = Event>) -> bool {
    uncovered.into_iter().any(|e| e != Event::PeerCheckpoint)
}

/// How long after a failed cosigning request a member is asked again at
/// most, whatever the interval: ten minutes.
pub const MAX_BACKOFF_MS: u64 = 600_000;

/// Owner side: when each member that did not cosign may be asked again.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first delay: one checkpoint interval.
    first_ms: u64,
    /// The longest delay.
    cap_ms: u64,
    /// Per member that failed: the delay last chosen and when it ends.
    waiting: HashMap<AuthorityId, (u64, Instant)>,
}

impl Backoff {
    /// Delays from `interval_ms` (the checkpoint interval), doubling up to
    /// 64 intervals or [`MAX_BACKOFF_MS`], whichever is shorter (but never
    /// below one interval).
    pub fn new(interval_ms: u64) -> Backoff {
        let first_ms = interval_ms.max(1);
        Backoff {
            first_ms,
            cap_ms: first_ms
                .saturating_mul(64)
                .min(MAX_BACKOFF_MS)
                .max(first_ms),
            waiting: HashMap::new(),
        }
    }

    /// Whether `peer` may be asked at `now`.
    pub fn may_ask(&self, peer: &AuthorityId, now: Instant) -> bool {
        self.waiting
            .get(peer)
            .is_none_or(|(_, until)| now >= *until)
    }

    /// `peer` did not cosign at `now`: it waits twice as long as last time
    /// (one interval the first time), up to the cap. Returns the delay.
    pub fn failed(&mut self, peer: &AuthorityId, now: Instant) -> u64 {
        let delay = match self.waiting.get(peer) {
            Some((last, _)) => last.saturating_mul(2).min(self.cap_ms),
            None => self.first_ms,
        };
        self.waiting
            .insert(peer.clone(), (delay, now + Duration::from_millis(delay)));
        delay
    }

    /// `peer` cosigned: it is asked as soon as there is something new.
    pub fn succeeded(&mut self, peer: &AuthorityId) {
        self.waiting.remove(peer);
    }
}

/// Witness side: when this relay last cosigned for each member, and how
/// often it cosigns for one at most.
#[derive(Debug, Clone)]
pub struct CosignGate {
    min_gap_ms: u64,
    last: HashMap<AuthorityId, Instant>,
}

/// A cosigning request sooner than the gate allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "too soon: this relay cosigns for {peer} at most once every {min_gap_ms} ms; ask again \
     after {retry_in_ms} ms"
)]
pub struct TooSoon {
    /// The member.
    pub peer: AuthorityId,
    /// The gap the gate keeps.
    pub min_gap_ms: u64,
    /// How long until a request is cosigned again.
    pub retry_in_ms: u64,
}

impl CosignGate {
    /// At most one cosignature per member every half checkpoint interval
    /// (`interval_ms`, this relay's): a member asking at its own interval,
    /// the same by default, is never refused, and one asking more often
    /// grows this relay's log by at most one entry per half interval.
    pub fn for_interval(interval_ms: u64) -> CosignGate {
        CosignGate {
            min_gap_ms: (interval_ms / 2).max(1),
            last: HashMap::new(),
        }
    }

    /// The gap kept between two cosignatures for one member.
    pub fn min_gap_ms(&self) -> u64 {
        self.min_gap_ms
    }

    /// Whether a request from `peer` at `now` may be cosigned.
    pub fn check(&self, peer: &AuthorityId, now: Instant) -> Result<(), TooSoon> {
        let Some(&last) = self.last.get(peer) else {
            return Ok(());
        };
        let open = last + Duration::from_millis(self.min_gap_ms);
        if now >= open {
            return Ok(());
        }
        let wait = open.saturating_duration_since(now);
        Err(TooSoon {
            peer: peer.clone(),
            min_gap_ms: self.min_gap_ms,
            // Rounded up: asking again after it is never too soon.
            retry_in_ms: u64::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
        })
    }

    /// This relay cosigned for `peer` at `now`.
    pub fn cosigned(&mut self, peer: &AuthorityId, now: Instant) {
        self.last.insert(peer.clone(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    /// `ms` milliseconds after a fixed start.
    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn only_real_activity_is_worth_a_checkpoint() {
        use Event::*;
        assert!(!worth_a_checkpoint([]));
        assert!(!worth_a_checkpoint([PeerCheckpoint, PeerCheckpoint]));
        assert!(worth_a_checkpoint([PeerCheckpoint, Received]));
        assert!(worth_a_checkpoint([Started]));
        assert!(worth_a_checkpoint([Submitted, PeerCheckpoint]));
    }

    #[test]
    fn a_member_that_did_not_cosign_waits_twice_as_long_each_time_up_to_a_cap() {
        let (ba, me) = (a("BA.SPS"), a("ME.UP"));
        let t0 = Instant::now();
        let mut b = Backoff::new(1000);
        assert!(b.may_ask(&ba, t0));
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..9 {
            let d = b.failed(&ba, now);
            delays.push(d);
            assert!(!b.may_ask(&ba, at(now, d - 1)));
            now = at(now, d);
            assert!(b.may_ask(&ba, now));
        }
        assert_eq!(
            delays,
            [
                1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 64_000, 64_000
            ]
        );
        // Others are not held back.
        assert!(b.may_ask(&me, t0));
        // A cosignature ends the wait; the next failure starts over.
        b.succeeded(&ba);
        assert!(b.may_ask(&ba, now));
        assert_eq!(b.failed(&ba, now), 1000);
        // With a long interval the cap is ten minutes.
        let mut b = Backoff::new(60_000);
        let mut last = 0;
        for _ in 0..10 {
            last = b.failed(&ba, t0);
        }
        assert_eq!(last, MAX_BACKOFF_MS);
        // An interval longer than the cap: one interval.
        let mut b = Backoff::new(3_600_000);
        assert_eq!(
            (b.failed(&ba, t0), b.failed(&ba, t0)),
            (3_600_000, 3_600_000)
        );
    }

    #[test]
    fn a_member_is_cosigned_for_at_most_once_per_half_interval() {
        let (ba, me) = (a("BA.SPS"), a("ME.UP"));
        let t0 = Instant::now();
        let mut g = CosignGate::for_interval(5000);
        assert_eq!(g.min_gap_ms(), 2500);
        assert_eq!(g.check(&ba, t0), Ok(()));
        g.cosigned(&ba, t0);
        let err = g.check(&ba, at(t0, 2499)).unwrap_err();
        assert_eq!(err.retry_in_ms, 1);
        assert_eq!(
            err.to_string(),
            "too soon: this relay cosigns for BA.SPS at most once every 2500 ms; ask again \
             after 1 ms"
        );
        assert_eq!(g.check(&ba, at(t0, 2500)), Ok(()));
        // Each member has its own gap.
        assert_eq!(g.check(&me, at(t0, 1)), Ok(()));
        // A flood: over ten seconds of requests every millisecond, at most
        // one cosignature per gap.
        let mut g = CosignGate::for_interval(5000);
        let mut cosigned = 0;
        for ms in 0..10_000 {
            let now = at(t0, ms);
            if g.check(&ba, now).is_ok() {
                g.cosigned(&ba, now);
                cosigned += 1;
            }
        }
        assert_eq!(cosigned, 4);
    }
}
