//! How a check gets its local facts: the [`Inspector`] seam.
//!
//! A single check starts its own inspection ([`Fresh`]): a socket-table dump and a /proc scan
//! on a blocking thread, alongside the probes, and one `nft` run when a failure needs the
//! firewall. A run of many targets on this machine (`canreach :5432 :6379 … `, `-f FILE`,
//! `--wait`) would repeat those for every target although they read the same machine at the
//! same moment: 50 loopback targets cost 50 /proc scans and up to 50 `nft` processes, as much
//! as the checks themselves. [`PerRun`] shares them: a check that asks while an inspection (or
//! a ruleset read) is *in flight*, or within [`JOIN_AFTER_END`] of its end, joins it; one that
//! asks later starts a new one. So no check is told about the machine as it was more than a
//! read's few milliseconds before it asked, and a long `--wait` reads the machine afresh for
//! each attempt, exactly as a single check would.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::nft::{self, NftError};
use super::{Firewall, LocalFacts, Patience};

/// Where a check's local facts come from.
pub(crate) trait Inspector: Sync {
    /// This machine's interface addresses.
    fn addresses(&self) -> Vec<IpAddr>;
    /// Start inspecting `port` now (the work begins at once, whether or not the future is
    /// polled); `None` when the inspection could not run.
    fn inspect(&self, port: u16, addresses: Vec<IpAddr>) -> BoxFuture<'static, Option<LocalFacts>>;
    /// [`inspect`](Self::inspect) for a check that waits for other things until `until` (its
    /// deadline): the owner search may go on past its budget until the check hurries the
    /// [`Patience`] returned (see [`super::Patience`]). By default, the budget holds.
    fn inspect_patient(
        &self,
        port: u16,
        addresses: Vec<IpAddr>,
        until: Instant,
    ) -> (BoxFuture<'static, Option<LocalFacts>>, Patience) {
        let _ = until;
        (self.inspect(port, addresses), Patience::none())
    }
    /// Start reading the firewall for `port` now, the `nft` run killed at `until`.
    fn firewall(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>>;
    /// [`Inspector::inspect`] for a UDP port: the sockets bound to it and their owners, read
    /// anew each time (a UDP check reads them again once its port has been silent, for the
    /// bytes its program left unread), on a blocking thread.
    fn inspect_udp(
        &self,
        port: u16,
        addresses: Vec<IpAddr>,
    ) -> BoxFuture<'static, Option<LocalFacts>> {
        tokio::task::spawn_blocking(move || super::inspect_udp(port, addresses))
            .map(|r| r.ok().flatten())
            .boxed()
    }
    /// [`Inspector::firewall`] for a UDP port (`udp dport` rules), read anew.
    fn firewall_udp(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>> {
        tokio::task::spawn_blocking(move || super::firewall_udp(port, until))
            .map(Result::ok)
            .boxed()
    }
    /// The listener that takes `address` with its accept queue, and this machine's
    /// listen-drop counters, now (for a silent address of this machine; see
    /// [`super::queue_look`]), on a blocking thread.
    fn queue_look(
        &self,
        address: std::net::SocketAddr,
    ) -> BoxFuture<
        'static,
        (
            Option<super::QueueLook>,
            Option<super::netstat::ListenCounters>,
        ),
    > {
        tokio::task::spawn_blocking(move || super::queue_look(address))
            .map(|r| r.unwrap_or((None, None)))
            .boxed()
    }
}

/// Every call inspects anew (one check).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fresh;

impl Inspector for Fresh {
    fn addresses(&self) -> Vec<IpAddr> {
        super::interface_addresses()
    }

    fn inspect(&self, port: u16, addresses: Vec<IpAddr>) -> BoxFuture<'static, Option<LocalFacts>> {
        self.inspect_patient(port, addresses, Instant::now()).0
    }

    fn inspect_patient(
        &self,
        port: u16,
        addresses: Vec<IpAddr>,
        until: Instant,
    ) -> (BoxFuture<'static, Option<LocalFacts>>, Patience) {
        let patience = Patience::until(until);
        let p = patience.clone();
        let read = tokio::task::spawn_blocking(move || {
            super::Inspection::read_patient(&[port], &p).facts_for(port, addresses)
        })
        .map(Result::ok)
        .boxed();
        (read, patience)
    }

    fn firewall(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>> {
        tokio::task::spawn_blocking(move || super::firewall(port, until))
            .map(Result::ok)
            .boxed()
    }
}

/// How long after its end a read may still be joined. A read joined in flight may have begun
/// up to its own duration (a few ms; the owner search stops at 5 ms of CPU) before the ask;
/// one that ended at most 5 ms before it is about as recent. The run's own inspection starts
/// just before its checks, and a check may ask for it a moment after it ended (the main thread
/// descheduled for a millisecond): a whole second /proc scan, in 1 single check in 40, before.
pub(crate) const JOIN_AFTER_END: Duration = Duration::from_millis(5);

/// Marks a read finished when dropped: when, or that it failed (panicked) and is never joined.
struct DoneOnDrop(Arc<OnceLock<Option<Instant>>>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set((!std::thread::panicking()).then(Instant::now));
    }
}

/// A read that later callers may join, and when it finished.
struct InFlight<T: Clone> {
    finished: Arc<OnceLock<Option<Instant>>>,
    result: Shared<BoxFuture<'static, Option<T>>>,
}

impl<T: Clone> InFlight<T> {
    /// Still running, or ended well at most [`JOIN_AFTER_END`] before `now`.
    fn joinable(&self, now: Instant) -> bool {
        self.joinable_within(now, JOIN_AFTER_END)
    }

    /// Still running, or ended well at most `after_end` before `now`.
    fn joinable_within(&self, now: Instant, after_end: Duration) -> bool {
        match self.finished.get() {
            None => true,
            Some(Some(end)) => now.saturating_duration_since(*end) <= after_end,
            Some(None) => false,
        }
    }
}

impl<T: Clone + Send + Sync + 'static> InFlight<T> {
    /// Start `work` on a thread of its own, not the runtime's blocking pool: a run whose
    /// targets are surely this machine starts its inspection before the runtime exists.
    fn start(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let finished = Arc::new(OnceLock::new());
        let mark = finished.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("canreach-local".into())
            .spawn(move || {
                // The read is marked finished (or failed, by a panic: never to be joined)
                // before its askers are woken, whichever way it ends. The flag is made here,
                // not before the spawn: a spawn that fails drops the closure, which must not
                // mark a read done. And `tx.send(work())` would move the sender out first, so
                // that a panic in `work` dropped it, waking the askers, before the flag.
                let flag = DoneOnDrop(mark);
                let result = work();
                drop(flag);
                let _ = tx.send(result);
            });
        let result = match spawned {
            Ok(_) => rx.map(Result::ok).boxed(),
            // No thread (a process limit): no read, and none to join.
            Err(_) => {
                let _ = finished.set(None);
                async { None }.boxed()
            }
        }
        .shared();
        InFlight { finished, result }
    }

    /// The read to use: the one in `slot` if it may be joined (still running, or just
    /// ended), else a new one.
    fn join_or_start(
        slot: &Mutex<Option<InFlight<T>>>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Shared<BoxFuture<'static, Option<T>>> {
        Self::join_or_start_at(slot, Instant::now(), work)
    }

    /// [`join_or_start`](Self::join_or_start), asked at `now`.
    fn join_or_start_at(
        slot: &Mutex<Option<InFlight<T>>>,
        now: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Shared<BoxFuture<'static, Option<T>>> {
        let mut slot = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.as_ref() {
            Some(f) if f.joinable(now) => f.result.clone(),
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
pub(crate) struct PerRun {
    ports: Vec<u16>,
    inspection: Mutex<Option<InFlight<Arc<super::Inspection>>>>,
    /// The patience of the shared inspection in `inspection` (its checks share it: the
    /// first ready to answer hurries it).
    patience: Mutex<Patience>,
    /// How long the shared inspection started with the run ([`PerRun::start`]) may go on
    /// past its budget: the run's timeout.
    patient_for: Duration,
    ruleset: Mutex<Option<InFlight<Ruleset>>>,
    /// The interface addresses and when they were read (a netlink dump: once per
    /// [`ADDRESSES_FRESH`], not once per target).
    addresses: Mutex<Option<(Instant, Vec<IpAddr>)>>,
}

/// How long a read of the interface addresses serves a run's checks: long enough for one
/// batch of targets, short enough that a long `--wait` sees an address that came up.
pub(crate) const ADDRESSES_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl PerRun {
    /// For a run checking `ports` (duplicates are fine).
    pub fn new(ports: impl IntoIterator<Item = u16>) -> PerRun {
        let mut ports: Vec<u16> = ports.into_iter().collect();
        ports.sort_unstable();
        ports.dedup();
        PerRun {
            ports,
            inspection: Mutex::new(None),
            patience: Mutex::new(Patience::none()),
            patient_for: Duration::ZERO,
            ruleset: Mutex::new(None),
            addresses: Mutex::new(None),
        }
    }
}

impl PerRun {
    /// The shared inspection may go on past its budget for `timeout` (the checks' own) while
    /// no check is ready to answer.
    pub(crate) fn patient_for(self, timeout: Duration) -> PerRun {
        PerRun {
            patient_for: timeout,
            ..self
        }
    }

    /// The shared inspection of the run's ports: the one in flight (or just ended), else a
    /// new one patient until `until`; with the patience of the one returned.
    fn shared_read(
        &self,
        until: Instant,
    ) -> (
        Shared<BoxFuture<'static, Option<Arc<super::Inspection>>>>,
        Patience,
    ) {
        let mut slot = self
            .inspection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut patience = self
            .patience
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.as_ref() {
            Some(f) if f.joinable(Instant::now()) => (f.result.clone(), patience.clone()),
            _ => {
                let fresh = Patience::until(until);
                let (p, ports) = (fresh.clone(), self.ports.clone());
                let f =
                    InFlight::start(move || Arc::new(super::Inspection::read_patient(&ports, &p)));
                let read = f.result.clone();
                *slot = Some(f);
                *patience = fresh.clone();
                (read, fresh)
            }
        }
    }

    /// Start the shared inspection of the run's ports now, when the run's targets include
    /// this machine for sure (a loopback address, `localhost`, `:PORT`): the /proc scan is
    /// most of an open check of this machine, and started with the run it overlaps the rest
    /// of start-up and the first probe instead of following them. The first check joins it.
    pub(crate) fn start(&self) {
        // The read runs on its own; the result is joined by the checks.
        drop(self.shared_read(Instant::now() + self.patient_for));
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

    fn inspect(&self, port: u16, addresses: Vec<IpAddr>) -> BoxFuture<'static, Option<LocalFacts>> {
        self.inspect_patient(port, addresses, Instant::now()).0
    }

    fn inspect_patient(
        &self,
        port: u16,
        addresses: Vec<IpAddr>,
        until: Instant,
    ) -> (BoxFuture<'static, Option<LocalFacts>>, Patience) {
        // Sorted (`new`): a run of 10,000 ports looks each up 10,000 times.
        if self.ports.binary_search(&port).is_err() {
            return Fresh.inspect_patient(port, addresses, until);
        }
        let (read, patience) = self.shared_read(until);
        // The port's facts, built from the shared read for this check alone; the interface
        // addresses are the check's own (the shared read may have begun before it asked).
        let facts = async move { Some(read.await?.facts_for(port, addresses)) }.boxed();
        (facts, patience)
    }

    fn firewall(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>> {
        let ruleset = InFlight::join_or_start(&self.ruleset, move || {
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

/// The reads of a process that checks for as long as it runs (`canreach serve`): like
/// [`PerRun`], but for any port as it is asked. Checks of one port share one inspection while
/// it is in flight or for `after_end` after it ended (each port its own); all checks share one
/// ruleset read in flight and the interface addresses for [`ADDRESSES_FRESH`]. What it keeps
/// is bounded: a port's entry is dropped once it can no longer be joined.
pub(crate) struct Lasting {
    after_end: Duration,
    inspections: Mutex<std::collections::HashMap<u16, InFlight<Option<LocalFacts>>>>,
    ruleset: Mutex<Option<InFlight<Ruleset>>>,
    addresses: Mutex<Option<(Instant, Vec<IpAddr>)>>,
}

/// How long after its end the exporter's checks of a port still join its inspection
/// ([`Lasting`]): a port probed hundreds of times a second (a load test, many scrapers) is
/// then scanned ten times a second, not once per probe; a report may describe the port's
/// listeners and owners as they were up to this long before its check.
pub(crate) const LASTING_AFTER_END: Duration = Duration::from_millis(100);

impl Default for Lasting {
    fn default() -> Self {
        Lasting::new(LASTING_AFTER_END)
    }
}

impl std::fmt::Debug for Lasting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lasting").finish_non_exhaustive()
    }
}

impl Lasting {
    /// Checks of a port join its inspection until `after_end` after it ended.
    pub fn new(after_end: Duration) -> Lasting {
        Lasting {
            after_end,
            inspections: Mutex::default(),
            ruleset: Mutex::default(),
            addresses: Mutex::default(),
        }
    }

    /// Ports with an inspection kept (in flight, or just ended).
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.inspections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

impl Inspector for Lasting {
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

    fn inspect(&self, port: u16, addresses: Vec<IpAddr>) -> BoxFuture<'static, Option<LocalFacts>> {
        let now = Instant::now();
        let shared = {
            let mut map = self
                .inspections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Entries that can no longer be joined go: the map holds only reads in flight or
            // just ended, however many ports are asked over the process's life.
            let after_end = self.after_end;
            map.retain(|_, f| f.joinable_within(now, after_end));
            match map.get(&port) {
                Some(f) => f.result.clone(),
                None => {
                    let f = InFlight::start(move || {
                        super::inspect_ports(&[port], Vec::new()).into_iter().next()
                    });
                    let r = f.result.clone();
                    map.insert(port, f);
                    r
                }
            }
        };
        async move {
            let mine = shared.await.flatten()?;
            Some(LocalFacts { addresses, ..mine })
        }
        .boxed()
    }

    fn firewall(&self, port: u16, until: Instant) -> BoxFuture<'static, Option<Firewall>> {
        let ruleset = InFlight::join_or_start(&self.ruleset, move || {
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
        let a = InFlight::join_or_start(&slot, work(runs.clone(), rx.clone()));
        let b = InFlight::join_or_start(&slot, work(runs.clone(), rx.clone()));
        tx.send(()).unwrap();
        assert_eq!((a.await, b.await), (Some(1), Some(1)));
        let end = slot
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .finished
            .get()
            .copied();
        let end = end.flatten().expect("ended well");
        // Just after its end it is still joined (the run's inspection, ended a moment before
        // its first check asked) …
        let just_after = end + JOIN_AFTER_END;
        let c = InFlight::join_or_start_at(&slot, just_after, work(runs.clone(), rx.clone()));
        assert_eq!(c.await, Some(1));
        // … later, the next ask reads again.
        let later = end + JOIN_AFTER_END + Duration::from_millis(1);
        let d = InFlight::join_or_start_at(&slot, later, work(runs.clone(), rx.clone()));
        tx.send(()).unwrap();
        assert_eq!(d.await, Some(2));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_read_that_panicked_is_not_joined_again() {
        let slot: Mutex<Option<InFlight<u32>>> = Mutex::new(None);
        let a = InFlight::join_or_start(&slot, || -> u32 { panic!("a read that fails") });
        assert_eq!(a.await, None);
        // Not even by a check asking at the moment it failed.
        assert!(
            !slot
                .lock()
                .unwrap()
                .as_ref()
                .unwrap()
                .joinable(Instant::now())
        );
        let b = InFlight::join_or_start(&slot, || 7);
        assert_eq!(b.await, Some(7));
    }

    #[tokio::test]
    async fn a_lasting_inspector_keeps_only_reads_that_can_be_joined() {
        let l = Lasting::new(JOIN_AFTER_END);
        let (a, b) = tokio::join!(l.inspect(7, vec![]), l.inspect(7, vec![]));
        assert_eq!(a.map(|f| f.port), Some(7));
        assert_eq!(b.map(|f| f.port), Some(7));
        assert!(l.kept() <= 1);
        std::thread::sleep(JOIN_AFTER_END + Duration::from_millis(2));
        let c = l.inspect(8, vec![]).await;
        assert_eq!(c.map(|f| f.port), Some(8));
        // Port 7's read ended long ago: dropped when port 8 was asked.
        assert_eq!(l.kept(), 1);
    }

    #[tokio::test]
    async fn a_port_outside_the_run_is_inspected_on_its_own() {
        let run = PerRun::new([5432, 5432, 6379]);
        assert_eq!(run.ports, vec![5432, 6379]);
        let facts = run.inspect(1, vec![]).await.expect("inspected");
        assert_eq!(facts.port, 1);
        let facts = run.inspect(6379, vec![]).await.expect("inspected");
        assert_eq!(facts.port, 6379);
    }
}
