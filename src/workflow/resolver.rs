//! The system lookup for workflows: at most one `getaddrinfo` in flight per name, and the
//! `-4`/`-6` filter.
//!
//! `getaddrinfo` cannot be cancelled: [`crate::dns::SystemResolver`] runs it on a blocking
//! thread and abandons it at the check's deadline. A single check then drops the runtime with
//! `shutdown_background`, but a `--wait` keeps one runtime for minutes, and a name server that
//! never answers would leave one more blocked thread behind every attempt. Here an attempt
//! joins the lookup already in flight for its name instead of starting another; a new lookup
//! starts only once the previous one has returned. So each name has at most one outstanding
//! lookup (and blocking thread), however many attempts gave up on it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::dns::{DnsErrorKind, DnsView, Lookup, LookupError, Resolver, SystemResolver};

use super::{Phase, Slot};
use crate::options::Family;

/// How long a lookup nobody waits for any more may still run before its task gives up on
/// it (glibc's own retries end well before).
const ORPHAN_LIMIT: Duration = Duration::from_secs(120);

/// Lookups in flight, by name, shared by every target of a run.
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    inflight: Mutex<HashMap<String, watch::Receiver<Option<Lookup>>>>,
}

impl Lookups {
    /// The lookup in flight for `name`, or a new one.
    fn join_or_start(&self, name: &str) -> watch::Receiver<Option<Lookup>> {
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = map.get(name)
            && rx.borrow().is_none()
        {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        let owned = name.to_string();
        tokio::spawn(async move {
            let lookup = SystemResolver
                .system(&owned, Instant::now() + ORPHAN_LIMIT)
                .await;
            let _ = tx.send(Some(lookup));
        });
        map.insert(name.to_string(), rx.clone());
        rx
    }

    /// Lookups still running (for the tests).
    #[cfg(test)]
    pub(crate) fn outstanding(&self) -> usize {
        let map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        map.values().filter(|rx| rx.borrow().is_none()).count()
    }
}

/// The resolver one check of a workflow uses: shared lookups, the family filter, and the
/// check's phase for the progress line.
#[derive(Debug)]
pub(crate) struct WorkflowResolver<'a> {
    pub lookups: &'a Lookups,
    pub family: Option<Family>,
    pub slot: &'a Slot,
}

impl Resolver for WorkflowResolver<'_> {
    async fn system(&self, name: &str, deadline: Instant) -> Lookup {
        let start = Instant::now();
        self.slot.set_phase(Phase::Resolving);
        let mut rx = self.lookups.join_or_start(name);
        let got = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
        self.slot.set_phase(Phase::Probing);
        let lookup = match got {
            Ok(Ok(v)) => v.clone().unwrap_or_else(|| timed_out(start)),
            Ok(Err(_)) => Lookup {
                addresses: vec![],
                elapsed: start.elapsed(),
                error: Some(LookupError::new(DnsErrorKind::Other)),
            },
            Err(_) => timed_out(start),
        };
        filter(lookup, self.family)
    }

    async fn direct(&self, name: &str, deadline: Instant) -> Option<DnsView> {
        SystemResolver.direct(name, deadline).await
    }
}

fn timed_out(start: Instant) -> Lookup {
    Lookup {
        addresses: vec![],
        elapsed: start.elapsed(),
        error: Some(LookupError::new(DnsErrorKind::Timeout)),
    }
}

/// Keep only the family asked for; a name left with no address has no data of that family.
pub(crate) fn filter(mut lookup: Lookup, family: Option<Family>) -> Lookup {
    let Some(family) = family else {
        return lookup;
    };
    if lookup.error.is_some() {
        return lookup;
    }
    let had = lookup.addresses.len();
    lookup.addresses.retain(|ip: &IpAddr| family.admits(*ip));
    if lookup.addresses.is_empty() && had > 0 {
        lookup.error = Some(LookupError {
            kind: DnsErrorKind::Nodata,
            detail: Some(format!(
                "the name has no {} address ({} given)",
                family.name(),
                family.flag()
            )),
        });
    }
    lookup
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_filter_keeps_order_and_says_why_nothing_is_left() {
        let l = Lookup {
            addresses: vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            elapsed: Duration::ZERO,
            error: None,
        };
        let v4 = filter(l.clone(), Some(Family::V4));
        assert_eq!(v4.addresses, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        let only6 = Lookup {
            addresses: vec!["::1".parse().unwrap()],
            ..l.clone()
        };
        let none = filter(only6, Some(Family::V4));
        assert_eq!(none.error.unwrap().kind, DnsErrorKind::Nodata);
        assert_eq!(filter(l.clone(), None), l);
    }

    #[tokio::test]
    async fn attempts_share_one_lookup_in_flight() {
        let lookups = Lookups::default();
        let slot = Slot::default();
        let r = WorkflowResolver {
            lookups: &lookups,
            family: None,
            slot: &slot,
        };
        // Three attempts that give up at once: one lookup runs for all of them.
        for _ in 0..3 {
            let _ = r.system("localhost", Instant::now()).await;
        }
        assert!(lookups.outstanding() <= 1);
        let l = r
            .system("localhost", Instant::now() + Duration::from_secs(5))
            .await;
        assert!(l.error.is_none(), "{l:?}");
        assert_eq!(lookups.outstanding(), 0);
    }
}
