//! `--wait`: retry a target until it is open, its verdict will not change by waiting, or the
//! time is up.
//!
//! Attempts are spaced [`FIRST_INTERVAL`] apart, doubling up to [`MAX_INTERVAL`]. Each attempt
//! is a whole check under `--timeout` (cut to the time left); an attempt is started only when
//! at least [`MIN_ATTEMPT`] (or the whole `--timeout`, if shorter) is left, so that the last
//! diagnosis had a fair chance instead of being cut short by the wait's end.
//!
//! Worth waiting on (the state can change by itself): `closed` (a service starting),
//! `filtered` (a host booting, a rule being applied), `unreachable` (a host or route coming
//! up), `dns_error` (a record being created; NXDOMAIN included), `partial` (one address not up
//! yet), `inconclusive`, and `rejected` by another device (Kubernetes and load balancers
//! reject a service with no endpoint yet). Ending the wait at once: `rejected` by *this
//! machine's own* policy (its firewall's reject or `EPERM`): it is a rule here that only the
//! person running canreach can change, so waiting would only delay the report telling them
//! which rule.

use std::time::Duration;

use tokio::time::Instant;

use crate::diagnosis::{Outcome, Report, Verdict};

/// The first pause between attempts.
pub(crate) const FIRST_INTERVAL: Duration = Duration::from_millis(100);
/// The pause stops doubling here.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(2);
/// The least time an attempt is given (or `--timeout`, if shorter).
pub(crate) const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// The pause after `interval`: doubled, at most [`MAX_INTERVAL`].
pub(crate) fn next_interval(interval: Duration) -> Duration {
    (interval * 2).min(MAX_INTERVAL)
}

/// Can this diagnosis change by waiting? (See the module's table.)
pub(crate) fn worth_waiting(report: &Report) -> bool {
    match report.verdict {
        Verdict::Open => false,
        Verdict::Rejected => !report
            .results()
            .filter(|a| a.outcome == Outcome::Rejected)
            .all(|a| a.rejected_by_this_machine()),
        Verdict::Partial
        | Verdict::Closed
        | Verdict::Filtered
        | Verdict::Unreachable
        | Verdict::DnsError
        | Verdict::Inconclusive
        // A service that is starting: a proxy whose backend is not up yet resets or closes,
        // answers 503, or does not reply.
        | Verdict::ServiceError => true,
        // A certificate does not become valid, nor a path's MTU change, by waiting.
        Verdict::TlsError | Verdict::MtuBlackhole => false,
    }
}

/// When the next attempt may start, and its timeout; `None` when the wait is over.
pub(crate) fn next_attempt(
    now: Instant,
    until: Instant,
    interval: Duration,
    timeout: Duration,
) -> Option<(Instant, Duration)> {
    let floor = timeout.min(MIN_ATTEMPT);
    let latest = until.checked_sub(floor)?;
    if now > latest {
        return None;
    }
    let start = (now + interval).min(latest);
    Some((start, timeout.min(until - start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_double_up_to_two_seconds() {
        let mut i = FIRST_INTERVAL;
        let mut seen = vec![i];
        for _ in 0..6 {
            i = next_interval(i);
            seen.push(i);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn the_last_attempt_keeps_a_fair_chance() {
        let now = Instant::now();
        let t = Duration::from_secs(5);
        let until = now + Duration::from_secs(3);
        let (at, timeout) = next_attempt(now, until, FIRST_INTERVAL, t).unwrap();
        assert_eq!(at, now + FIRST_INTERVAL);
        assert_eq!(timeout, Duration::from_millis(2900));
        // 2 s pause but 1 s left: start at once-less-the-floor, with the time left.
        let (at, timeout) =
            next_attempt(now, now + Duration::from_secs(1), MAX_INTERVAL, t).unwrap();
        assert_eq!(at, now + Duration::from_millis(500));
        assert_eq!(timeout, MIN_ATTEMPT);
        assert!(next_attempt(now, now + Duration::from_millis(400), FIRST_INTERVAL, t).is_none());
    }
}
