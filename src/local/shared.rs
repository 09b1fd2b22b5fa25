//! How a check gets its local facts: the [`Inspector`] seam.
//!
//! A single check starts its own inspection ([`Fresh`]): a socket-table dump and a /proc scan
//! on a blocking thread, alongside the probes, and one `nft` run when a failure needs the
//! firewall. A run of many targets on this machine (`canreach :5432 :6379 … `, `-f FILE`,
//! `--wait`) would repeat those for every target although they read the same machine at the
//! same moment: 50 loopback targets cost 50 /proc scans and up to 50 `nft` processes, as much
//! as the checks themselves. [`PerRun`] shares them: a check joins a read that had not
//! finished when the check began (one in flight when it asks, or the run's own inspection,
//! started with the run, that finished while the check was starting); otherwise it starts a
//! new one. So no check is told about the machine as it was before the check began (give or
//! take the few milliseconds of the read it joined), and a long `--wait` reads the machine
//! afresh for each attempt, exactly as a single check would.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::nft::{self, NftError};
use super::{Firewall, LocalFacts};

/// Where a check's local facts come from.
pub trait Inspector: Sync {
    /// This machine's interface addresses.
    fn addresses(&self) -> Vec<IpAddr>;
    /// Inspect `port` for a check that began at `since`: a read of this moment, begun now (the
    /// work begins at once, whether or not the future is polled) or one still running at
    /// `since`; `None` when the inspection could not run.
    fn inspect(
        &self,
        port: u16,
        addresses: Vec<IpAddr>,
        since: Instant,
    ) -> BoxFuture<'static, Option<LocalFacts>>;
    /// Start reading the firewall for `port` now, the `nft` run killed at `until`.
    fn firewall(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>>;
}

/// Every call inspects anew (one check).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fresh;

impl Inspector for Fresh {
    fn addresses(&self) -> Vec<IpAddr> {
        super::interface_addresses()
    }

    fn inspect(
        &self,
        port: u16,
        addresses: Vec<IpAddr>,
        _since: Instant,
    ) -> BoxFuture<'static, Option<LocalFacts>> {
        tokio::task::spawn_blocking(move || super::inspect(port, addresses))
            .map(Result::ok)
            .boxed()
    }

    fn firewall(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>> {
        tokio::task::spawn_blocking(move || super::firewall(port, until))
            .map(Result::ok)
            .boxed()
    }
}

/// Marks a read finished, and when, when dropped.
struct DoneOnDrop(Arc<OnceLock<Instant>>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set(Instant::now());
    }
}

/// A read that later callers may join, and when it finished: a check that began after that
/// may not (it describes the past).
struct InFlight<T: Clone> {
    finished: Arc<OnceLock<Instant>>,
    result: Shared<BoxFuture<'static, Option<T>>>,
}

impl<T: Clone + Send + Sync + 'static> InFlight<T> {
    /// Start `work` on a blocking thread.
    fn start(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let finished = Arc::new(OnceLock::new());
        let flag = DoneOnDrop(finished.clone());
        let result = tokio::task::spawn_blocking(move || {
            // Set when the work ends, also by a panic: a read that will never finish must
            // not be joined by every later check of the run.
            let _flag = flag;
            work()
        })
        .map(Result::ok)
        .boxed()
        .shared();
        InFlight { finished, result }
    }

    /// The read to use for a check that began at `since`: the one in `slot` if it had not
    /// finished by then, else a new one.
    fn join_or_start(
        slot: &Mutex<Option<InFlight<T>>>,
        since: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Shared<BoxFuture<'static, Option<T>>> {
        let mut slot = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.as_ref() {
            Some(f) if f.finished.get().is_none_or(|at| *at >= since) => f.result.clone(),
            _ => {
                let f = InFlight::start(work);
                let result = f.result.clone();
                *slot = Some(f);
                result
            }
        }
    }
}

/// What one `nft` run gave: the ruleset's JSON, or why not.
type Ruleset = Result<Arc<Vec<u8>>, NftError>;

/// One inspection and one ruleset read shared by the concurrent checks of a run; the ports
/// of the run are inspected together (one scan finds every owner).
pub struct PerRun {
    ports: Vec<u16>,
    inspection: Mutex<Option<InFlight<Arc<Vec<LocalFacts>>>>>,
    ruleset: Mutex<Option<InFlight<Ruleset>>>,
    /// The interface addresses and when they were read (a netlink dump: once per
    /// [`ADDRESSES_FRESH`], not once per target).
    addresses: Mutex<Option<(Instant, Vec<IpAddr>)>>,
}

/// How long a read of the interface addresses serves a run's checks: long enough for one
/// batch of targets, short enough that a long `--wait` sees an address that came up.
pub const ADDRESSES_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl PerRun {
    /// For a run checking `ports` (duplicates are fine).
    pub fn new(ports: impl IntoIterator<Item = u16>) -> PerRun {
        let mut ports: Vec<u16> = ports.into_iter().collect();
        ports.sort_unstable();
        ports.dedup();
        PerRun {
            ports,
            inspection: Mutex::new(None),
            ruleset: Mutex::new(None),
            addresses: Mutex::new(None),
        }
    }
}

impl PerRun {
    /// Start the shared inspection of the run's ports now, when the run's targets include
    /// this machine for sure (a loopback address, `localhost`, `:PORT`): the /proc scan is
    /// most of an open check of this machine, and started with the run it overlaps the rest
    /// of start-up and the first probe instead of following them. The first check joins it.
    pub fn start(&self) {
        let ports = self.ports.clone();
        // The read runs on its own; the result is joined by the checks.
        drop(InFlight::join_or_start(
            &self.inspection,
            Instant::now(),
            move || Arc::new(super::inspect_ports(&ports, Vec::new())),
        ));
    }
}

impl std::fmt::Debug for PerRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerRun")
            .field("ports", &self.ports)
            .finish()
    }
}

impl Inspector for PerRun {
    fn addresses(&self) -> Vec<IpAddr> {
        let mut slot = self
            .addresses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.as_ref() {
            Some((at, a)) if at.elapsed() < ADDRESSES_FRESH => a.clone(),
            _ => {
                let a = super::interface_addresses();
                *slot = Some((Instant::now(), a.clone()));
                a
            }
        }
    }

    fn inspect(
        &self,
        port: u16,
        addresses: Vec<IpAddr>,
        since: Instant,
    ) -> BoxFuture<'static, Option<LocalFacts>> {
        if !self.ports.contains(&port) {
            return Fresh.inspect(port, addresses, since);
        }
        let ports = self.ports.clone();
        let all = InFlight::join_or_start(&self.inspection, since, move || {
            Arc::new(super::inspect_ports(&ports, Vec::new()))
        });
        // The interface addresses are the check's own (the shared read may have begun
        // before it asked).
        async move {
            let mine = all.await?.iter().find(|l| l.port == port).cloned()?;
            Some(LocalFacts { addresses, ..mine })
        }
        .boxed()
    }

    fn firewall(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>> {
        let ruleset = InFlight::join_or_start(&self.ruleset, Instant::now(), move || {
            nft::read_ruleset(until).map(Arc::new)
        });
        async move {
            let read = ruleset.await?;
            Some(super::firewall_from(
                read.and_then(|bytes| nft::parse(&bytes, port)),
            ))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn concurrent_checks_share_one_read_and_later_ones_start_anew() {
        let slot: Mutex<Option<InFlight<u32>>> = Mutex::new(None);
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let work = |runs: Arc<std::sync::atomic::AtomicU32>,
                    rx: Arc<Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                let _ = rx.lock().unwrap().recv();
                runs.fetch_add(1, Ordering::SeqCst) + 1
            }
        };
        // Two asks while the first read is running: one read.
        let a = InFlight::join_or_start(&slot, Instant::now(), work(runs.clone(), rx.clone()));
        let began = Instant::now();
        let b = InFlight::join_or_start(&slot, began, work(runs.clone(), rx.clone()));
        tx.send(()).unwrap();
        assert_eq!((a.await, b.await), (Some(1), Some(1)));
        // A check that began while it ran may still join it once it has finished (the run's
        // own inspection, started before the first check asks).
        let late = InFlight::join_or_start(&slot, began, work(runs.clone(), rx.clone()));
        assert_eq!(late.await, Some(1));
        // A check that began after it finished reads again.
        let c = InFlight::join_or_start(&slot, Instant::now(), work(runs.clone(), rx.clone()));
        tx.send(()).unwrap();
        assert_eq!(c.await, Some(2));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_read_that_panicked_is_not_joined_again() {
        let slot: Mutex<Option<InFlight<u32>>> = Mutex::new(None);
        let a = InFlight::join_or_start(&slot, Instant::now(), || -> u32 {
            panic!("a read that fails")
        });
        assert_eq!(a.await, None);
        let b = InFlight::join_or_start(&slot, Instant::now(), || 7);
        assert_eq!(b.await, Some(7));
    }

    #[tokio::test]
    async fn a_port_outside_the_run_is_inspected_on_its_own() {
        let run = PerRun::new([5432, 5432, 6379]);
        assert_eq!(run.ports, vec![5432, 6379]);
        let facts = run
            .inspect(1, vec![], Instant::now())
            .await
            .expect("inspected");
        assert_eq!(facts.port, 1);
        let facts = run
            .inspect(6379, vec![], Instant::now())
            .await
            .expect("inspected");
        assert_eq!(facts.port, 6379);
    }
}
