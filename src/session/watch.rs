//! Watch a new connection, without writing, for what the server does before the client speaks.
//!
//! The kernel completes the TCP handshake before the program calls `accept()`, so "connected"
//! proves a listening socket, not a working program (`docs/ground-truth/beyond-connect.md`). In the
//! moments before the client speaks a server shows which it is:
//!
//! - it resets ([`First::Reset`]): accepted by a proxy (docker-proxy, kube-proxy, a load
//!   balancer) for a backend that is down, or a program that refuses this client;
//! - it closes ([`First::Closed`]): the same, more politely (`tcpwrappers`, a full server);
//! - it greets ([`First::Banner`]): SSH, SMTP, FTP, POP3, IMAP and MySQL speak first, and a
//!   MySQL server that refuses this client's address says so in its first packet (error 1130);
//! - it waits ([`First::Silent`]): normal for HTTP, TLS, PostgreSQL, Redis — the client speaks
//!   first.
//!
//! The watch uses `peek`, so a banner stays in the socket for the next stage to read.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::{BoxFuture, Shared};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::FIRST_BYTES_MAX;
use crate::local;
use crate::probe::ConnectResult;

/// The shortest watch. A reset or close from a proxy whose backend is down, and most
/// greetings, come within a few milliseconds on a LAN; a greeting that comes later is not lost
/// information (silence is normal: the client speaks first on most protocols), while every
/// millisecond here is added to every open check (budget: within 15 ms of `nc -z`).
pub const WINDOW_MIN: Duration = Duration::from_millis(8);
/// The longest watch: past a second, waiting for a greeting costs more than it tells (a slow
/// SSH greeting is still caught by the client that speaks next).
pub(crate) const WINDOW_MAX: Duration = Duration::from_secs(1);

/// How long to watch, from the connect round-trip time: a greeting sent at `accept()` arrives
/// about one round trip after the handshake completed; eight round trips leave room for a
/// server that does a little work first. Between [`WINDOW_MIN`] and [`WINDOW_MAX`].
pub fn window_for(connect_rtt: Duration) -> Duration {
    connect_rtt.saturating_mul(8).clamp(WINDOW_MIN, WINDOW_MAX)
}

/// What the server did before the client spoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum First {
    /// It reset the connection (ECONNRESET).
    Reset,
    /// It closed the connection without a word (EOF, no bytes).
    Closed,
    /// It spoke first: the bytes (≤ 1 KiB) and what they look like.
    Banner { bytes: Vec<u8>, kind: BannerKind },
    /// Nothing in the window: it waits for the client (normal for most protocols).
    Silent,
    /// Not watched: the client speaks first (TLS, HTTP), so the protocol's own answer shows a
    /// hang-up; one with not a byte is then watched on a new connection (see
    /// `session::after_connect`), and only then recorded as [`First::Closed`]/[`First::Reset`].
    Unwatched,
    /// The socket reported another error: its errno (the diagnosis words it), when the OS
    /// gave one.
    Error { errno: Option<i32> },
}

/// What a greeting looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BannerKind {
    /// `SSH-2.0-OpenSSH_9.2p1 Debian-2`: protocol and software.
    Ssh { protocol: String, software: String },
    /// `220 mail.example ESMTP Postfix`: the text after the code.
    Smtp { greeting: String },
    /// `220 (vsFTPd 3.0.3)`: a 220 greeting that names FTP.
    Ftp { greeting: String },
    /// `+OK Dovecot ready.`
    Pop3 { greeting: String },
    /// `* OK [CAPABILITY …] Dovecot ready.` (`* PREAUTH` too).
    Imap { greeting: String },
    /// Another three-digit reply, e.g. SMTP's `421 Too many connections` or `554 No SMTP
    /// service here`.
    Coded { code: u16, text: String },
    /// A MySQL / MariaDB handshake (protocol 10) with the server's version.
    MySql { server_version: String },
    /// A MySQL error packet instead of a greeting, e.g. 1130 "Host '…' is not allowed to
    /// connect to this MySQL server", 1040 "Too many connections".
    MySqlError { code: u16, message: String },
    /// Bytes, but none of the above.
    Unknown,
}

/// Watch `stream` for `window` (never past `deadline`) without writing to it.
pub async fn watch(stream: &TcpStream, window: Duration, deadline: Instant) -> First {
    let until = (Instant::now() + window).min(deadline);
    let mut buf = vec![0u8; FIRST_BYTES_MAX];
    loop {
        // `peek` returns at once while bytes are queued, so once something was seen the
        // timeout cannot fire: the window's end is decided below.
        match tokio::time::timeout_at(until, stream.peek(&mut buf)).await {
            Err(_) => return First::Silent,
            Ok(Ok(0)) => return First::Closed,
            Ok(Ok(n)) => {
                // A greeting may arrive in pieces: wait briefly for a whole line or packet,
                // and report what there is when the window ends.
                if n < buf.len() && !complete(&buf[..n]) && Instant::now() < until {
                    tokio::time::sleep_until((Instant::now() + PIECE_WAIT).min(until)).await;
                    continue;
                }
                return banner(&buf[..n]);
            }
            Ok(Err(e)) => return from_error(&e),
        }
    }
}

/// How long a program on this machine is watched after it accepted the connection when it
/// cannot be seen waiting for the client (`local::idle`: its processes unknown, another
/// user's without root, too many): it has been scheduled and has taken the connection; a
/// hang-up on every client (a proxy whose backend is down, a full server, a wrapper refusing
/// this client) comes at once after that.
pub const ACCEPTED_GRACE: Duration = Duration::from_millis(5);

/// The program behind the listener a connection to this machine reached.
#[derive(Clone)]
pub struct Program {
    /// The processes found holding the port's listeners (empty: not found), as the local
    /// inspection finds them: a shared future, the inspection runs alongside.
    pub owners: Shared<BoxFuture<'static, Vec<u32>>>,
    /// This machine's count of TCP connects (`ActiveOpens`), read before the session's own
    /// connects, and how many those are: a connect beyond them may be the program's own, to a
    /// backend (see `nothing_in_flight`).
    pub connects_before: Option<u64>,
    pub own_connects: u64,
    /// This process's own connects ([`crate::probe::own_connects`]) when `connects_before`
    /// was read: those made since by other checks of the process are not the program's.
    pub process_connects_before: u64,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("connects_before", &self.connects_before)
            .field("own_connects", &self.own_connects)
            .finish_non_exhaustive()
    }
}

/// How long a connection to a program on this machine is watched waiting in the listener's
/// accept queue before the program is said not to take connections. An idle program takes a
/// connection within tens of microseconds; a busy one when the scheduler lets it: with 200 to
/// 300 checks at once against one Python asyncio server on this project's 2-vCPU machine
/// (`bench/busy.sh`, load averages up to 46 with other builds running), the slowest of 2,700
/// accepts came after 695 ms (medians 21–205 ms; docs/benchmarks.md). 900 ms stays above that
/// and under the second after which the kernel would retransmit a client's SYN: a program
/// that has not called `accept()` by then leaves its clients hanging — hung (its threads
/// asleep), or too busy, it or the machine (its threads running: the finding says which).
pub const ACCEPT_WAIT: Duration = Duration::from_millis(900);

/// A connection the program did not take: still in the listener's accept queue when the
/// watch for the accept ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAccepted {
    /// How long it was watched waiting ([`ACCEPT_WAIT`], or less when the deadline came
    /// first).
    pub waited: Duration,
    /// The listener's accept queue then: connections waiting to be accepted, and its room
    /// (`ss -ltn`'s Recv-Q and Send-Q); `None` when the kernel did not say.
    pub queued: Option<u32>,
    pub backlog: Option<u32>,
    /// Were the program's threads (and its children's) all asleep then (`Some(false)`: some
    /// ran; `None`: not seen — its processes unknown or unreadable)?
    pub asleep: Option<bool>,
    /// The deadline ended the watch before [`ACCEPT_WAIT`]: too soon to say the program does
    /// not take connections.
    pub cut_short: bool,
}

/// What [`watch_this_machine`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watched {
    pub first: First,
    /// How long it watched.
    pub watched: Duration,
    /// After how long the program took the connection (`None`: not within the watch, or the
    /// kernel could not say).
    pub accepted: Option<Duration>,
    /// After how long every thread of the program (and of its children) was seen asleep with
    /// the connection still open: it was waiting for the client to speak, and the watch ended
    /// there.
    pub waiting_for_client: Option<Duration>,
    /// The program did not take the connection within [`ACCEPT_WAIT`] (or the deadline).
    pub not_accepted: Option<NotAccepted>,
}

impl Watched {
    /// A watch that saw only the connection, not the program behind it (a remote address, a
    /// client-first protocol, a connection whose addresses cannot be read).
    pub(crate) fn connection_only(first: First, window: Duration) -> Watched {
        Watched {
            first,
            watched: window,
            accepted: None,
            waiting_for_client: None,
            not_accepted: None,
        }
    }
}

/// [`watch`] for a connection to this machine, where the kernel shows when the program takes
/// the connection (`accept()`) and when it is waiting for the client (`local::idle`): the
/// watch ends when the program waits with the connection still open; [`ACCEPTED_GRACE`] after
/// the accept when that cannot be seen; at the window's end, as [`watch`], while the program
/// still works. A connection still in the accept queue at the window's end is watched until
/// the program takes it, for at most [`ACCEPT_WAIT`]: past that it is recorded as not
/// accepted ([`NotAccepted`]: the queue, whether the program was asleep), a busy or hung
/// program.
pub(crate) async fn watch_this_machine(
    stream: &TcpStream,
    window: Duration,
    deadline: Instant,
    program: Option<Program>,
) -> Watched {
    let start = Instant::now();
    let (Ok(client), Ok(server)) = (stream.local_addr(), stream.peer_addr()) else {
        return Watched::connection_only(watch(stream, window, deadline).await, window);
    };
    let accept_until = (start + ACCEPT_WAIT.max(window)).min(deadline);
    let mut side = ProgramSide {
        server,
        client,
        start,
        deadline,
        until: (start + window).min(deadline),
        accept_until,
        end_at: (start + window).min(deadline),
        accepted: None,
        waiting_for_client: None,
    };
    let owners = program.as_ref().map(|p| p.owners.clone());
    // Biased: what the server sent is read before the watch is called over. The watch itself
    // may last as long as the wait for the accept; the program's side ends it sooner.
    let mut first = tokio::select! {
        biased;
        f = watch(stream, accept_until - start, deadline) => f,
        () = side.watch(stream, program) => First::Silent,
    };
    // Ended by the program's side while bytes (or a hang-up) wait unread, a greeting's first
    // piece among them: what there is, as the watch reports it at its end.
    if first == First::Silent && unread(stream) {
        first = watch(stream, Duration::ZERO, deadline).await;
    }
    // Silent to the end of the wait for the accept (whichever side saw the end first), and
    // still queued: the program does not take connections.
    let mut not_accepted = None;
    if first == First::Silent
        && side.accepted.is_none()
        && Instant::now() + ACCEPT_LOOK_SLACK >= accept_until
        && accepted(server, client) == Some(false)
    {
        side.end_at = Instant::now();
        let cut_short = accept_until < start + ACCEPT_WAIT;
        let owners = owners.filter(|_| !cut_short);
        not_accepted = Some(not_taken(server, start.elapsed(), cut_short, owners, deadline).await);
    }
    Watched {
        first,
        watched: start
            .elapsed()
            .min(side.end_at.saturating_duration_since(start)),
        accepted: side.accepted,
        waiting_for_client: side.waiting_for_client,
        not_accepted,
    }
}

/// The program's side of [`watch_this_machine`]: its accept, then whether it goes back to
/// waiting. What it saw stays here when the connection's side ends the watch first.
struct ProgramSide {
    server: SocketAddr,
    client: SocketAddr,
    start: Instant,
    deadline: Instant,
    /// The window's end; moved on when the accept comes later than that.
    until: Instant,
    /// The end of the wait for the accept.
    accept_until: Instant,
    /// When the watch ends unless something ends it sooner.
    end_at: Instant,
    accepted: Option<Duration>,
    waiting_for_client: Option<Duration>,
}

impl ProgramSide {
    /// Returns when the program's side ends the watch.
    async fn watch(&mut self, stream: &TcpStream, program: Option<Program>) {
        let (server, client) = (self.server, self.client);
        // An idle program accepts within tens of microseconds, below the runtime's 1 ms
        // timer: looked at once here, then at short intervals (`wait_accepted`).
        let seen = match accepted(server, client) {
            Some(true) => true,
            Some(false) => wait_accepted(server, client, self.accept_until.into_std()).await,
            // Not to be seen (another namespace, no netlink): the whole window.
            None => false,
        };
        if !seen {
            // Still queued at the end of the watch for the accept: the watch ends (and says
            // so below). Gone from the queue meanwhile: a reset, which the watch reads.
            if accepted(server, client) == Some(false) {
                return;
            }
            return tokio::time::sleep_until(self.until).await;
        }
        self.accepted = Some(self.start.elapsed());
        // Accepted after the window: what the server does after it is watched as it would
        // have been within it.
        self.until = self
            .until
            .max((Instant::now() + ACCEPTED_GRACE).min(self.deadline));
        self.end_at = self.until;
        // Never past the watch's end.
        let until = self.until;
        let _ = tokio::time::timeout_at(until, self.until_waiting(stream, program)).await;
    }

    /// Watched until the program is seen waiting with the connection still open; while it
    /// works (a thread or child still running) the watch goes on to the window's end. Only a
    /// program that cannot be seen (its processes unknown or unreadable) ends it by time,
    /// [`ACCEPTED_GRACE`] after the accept.
    async fn until_waiting(&mut self, stream: &TcpStream, program: Option<Program>) {
        let (seen, looked_from) = look_at(program, self.server, self.client, self.until).await;
        match seen {
            // Whatever the program sent before it slept is in the socket, though the
            // runtime may not have looked yet: the watch reads it first.
            Seen::Waiting if !unread(stream) && looked_from <= self.until => {
                self.waiting_for_client = Some(self.start.elapsed())
            }
            Seen::Unknown => {
                let grace_end = self.start + self.accepted.unwrap_or_default() + ACCEPTED_GRACE;
                tokio::time::sleep_until(grace_end.min(self.until)).await;
            }
            // Bytes or a hang-up to read; the program closed it (the watch reads the
            // hang-up); still working at the window's end: the watch ends there.
            Seen::Waiting | Seen::NotHeld | Seen::Working => {
                tokio::time::sleep_until(self.until).await
            }
        }
    }
}

/// Look at the program behind the listener until `until`: is it waiting with the
/// connection still open? Also when the looks began: a program first seen asleep by looks begun
/// after the watch's end is seen too late to end it (the looks themselves take a moment).
async fn look_at(
    program: Option<Program>,
    server: SocketAddr,
    client: SocketAddr,
    until: Instant,
) -> (Seen, Instant) {
    let (owners, connects) = match program {
        Some(p) => (
            Some(p.owners),
            p.connects_before
                .map(|c| (c, p.own_connects, p.process_connects_before)),
        ),
        None => (None, None),
    };
    let meanwhile = move || nothing_in_flight(connects);
    let end = until.into_std();
    let mut looked_from = Instant::now();
    let seen = match owners {
        // Another connect on this machine since the check's own (the other checks of a run,
        // often): whether the program waits cannot be told, and nothing is read for it.
        Some(owners) if meanwhile() == Some(true) => {
            let owners = owners.await;
            looked_from = Instant::now();
            match local::idle::program(&owners) {
                // The first look here (a few reads of /proc); more on a blocking thread.
                Some(pids) => match local::idle::seen_asleep(&pids, &meanwhile) {
                    None => Seen::Unknown,
                    Some(true) => held(server, client),
                    Some(false) => tokio::task::spawn_blocking(move || {
                        wait_until_asleep(&pids, server, client, end, meanwhile)
                    })
                    .await
                    .unwrap_or(Seen::Unknown),
                },
                // A forwarder: its sleep proves nothing.
                None => Seen::Unknown,
            }
        }
        _ => Seen::Unknown,
    };
    (seen, looked_from)
}

/// How much sooner than the end of the wait for the accept the looks may stop: they come at
/// most 1 ms apart, and stop before a look would pass the end.
const ACCEPT_LOOK_SLACK: Duration = Duration::from_millis(2);

/// For a connection to this machine whose client spoke first (TLS, HTTP) and got no answer:
/// is it still in the listener's accept queue, never taken since `since` (its connect)? Then
/// the silence is the program's not taking it, however the protocol worded it (a handshake
/// that got nothing, a retry that then completed: not the network). `None` when it was taken,
/// or the kernel cannot say.
pub(crate) async fn still_queued(
    server: SocketAddr,
    client: SocketAddr,
    since: Instant,
    program: Option<&Program>,
    deadline: Instant,
) -> Option<NotAccepted> {
    if accepted(server, client) != Some(false) {
        return None;
    }
    let waited = since.elapsed();
    let cut_short = waited < ACCEPT_WAIT;
    let owners = program.map(|p| p.owners.clone()).filter(|_| !cut_short);
    Some(not_taken(server, waited, cut_short, owners, deadline).await)
}

/// What is known of a connection the program did not take within `waited`: the listener's
/// queue now, and whether the program's threads are all asleep (a program that sleeps with
/// connections waiting does not call `accept()`; one that runs is too busy to), asked only
/// when `owners` are given and within `deadline`.
async fn not_taken(
    server: SocketAddr,
    waited: Duration,
    cut_short: bool,
    owners: Option<Shared<BoxFuture<'static, Vec<u32>>>>,
    deadline: Instant,
) -> NotAccepted {
    let listener = local::sock_diag::listener_at(server).ok().flatten();
    let asleep = match owners {
        Some(owners) => tokio::time::timeout_at(deadline, async {
            let pids = owners.await;
            tokio::task::spawn_blocking(move || {
                local::idle::program(&pids)
                    .and_then(|pids| local::idle::seen_asleep(&pids, &|| Some(true)))
            })
            .await
            .ok()
            .flatten()
        })
        .await
        .ok()
        .flatten(),
        None => None,
    };
    NotAccepted {
        waited,
        queued: listener.as_ref().map(|l| l.queued),
        backlog: listener.and_then(|l| l.backlog),
        asleep,
        cut_short,
    }
}

/// After a first look found the connection still queued: ask the kernel at growing intervals,
/// from 20 µs, whether the program took it, until `until`. `false`: not seen (not within the
/// time, or not to be seen). A single watch keeps the intervals with a timer descriptor on the
/// runtime's thread (a blocking thread must first be started, ~0.2 ms here, against the tens
/// of µs waited for). Among other watches (a run of many targets on this machine) the looks
/// go to a blocking thread: each is a netlink round trip of tens of µs, and dozens of watches
/// looking on the runtime's one thread would delay every check's timers and reads.
async fn wait_accepted(server: SocketAddr, client: SocketAddr, until: std::time::Instant) -> bool {
    let _watching = Watching::enter();
    let alone = WATCHING.load(Ordering::Relaxed) == 1;
    let timer = alone.then(crate::sys::async_timer).and_then(Result::ok);
    let Some(timer) = timer else {
        return tokio::task::spawn_blocking(move || poll_accepted(server, client, until))
            .await
            .unwrap_or(false);
    };
    let mut every = FIRST_ACCEPT_LOOK;
    loop {
        if std::time::Instant::now() + every >= until || timer.get_ref().fire_in(every).is_err() {
            return false;
        }
        match timer.readable().await {
            Ok(mut ready) => {
                ready.get_inner().consume();
                ready.clear_ready();
            }
            Err(_) => return false,
        }
        match accepted(server, client) {
            Some(true) => return true,
            Some(false) => {}
            None => return false,
        }
        every = (every * 2).min(Duration::from_millis(1));
    }
}

/// How many watches are waiting for an accept (see [`wait_accepted`]).
static WATCHING: AtomicUsize = AtomicUsize::new(0);

/// One watch waiting for an accept, counted in [`WATCHING`] while it lives.
struct Watching;

impl Watching {
    fn enter() -> Watching {
        WATCHING.fetch_add(1, Ordering::Relaxed);
        Watching
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        WATCHING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One look for the accept: taken, still queued, or `None` when the kernel cannot say.
fn accepted(server: SocketAddr, client: SocketAddr) -> Option<bool> {
    local::sock_diag::accepted(server, client).ok().flatten()
}

/// The first interval between looks for the accept: an idle program takes a connection within
/// tens of microseconds.
const FIRST_ACCEPT_LOOK: Duration = Duration::from_micros(20);

/// [`wait_accepted`] on a blocking thread.
fn poll_accepted(server: SocketAddr, client: SocketAddr, until: std::time::Instant) -> bool {
    let mut every = FIRST_ACCEPT_LOOK;
    loop {
        match accepted(server, client) {
            Some(true) => return true,
            Some(false) => {}
            None => return false,
        }
        if std::time::Instant::now() + every >= until {
            return false;
        }
        std::thread::sleep(every);
        every = (every * 2).min(Duration::from_millis(1));
    }
}

/// Between the looks at the program: no TCP connect on this machine since the session's own
/// (`expected`: the count they make). A proxy that accepted and dials its backend sleeps until
/// the backend answers, and a refusal then makes it hang up; which connect is whose cannot be
/// told cheaply (listing connects in flight walks the whole connection table: ~4 ms here),
/// so any other connect since makes the program's rest unknown. `None` then, and when the
/// count cannot be read.
///
/// `counts`: the machine's count before, this check's own connects, and this process's count
/// of connects before; the process's connects since then (other checks' probes and
/// sessions) are subtracted, as this check's own are.
fn nothing_in_flight(counts: Option<(u64, u64, u64)>) -> Option<bool> {
    let (before, own, process_before) = counts?;
    let process = crate::probe::own_connects().saturating_sub(process_before);
    let now = local::tcp_active_opens()?;
    (now <= before.saturating_add(own.max(process))).then_some(true)
}

/// The program is asleep: does it still hold the connection open?
fn held(server: SocketAddr, client: SocketAddr) -> Seen {
    match local::sock_diag::held_open(server, client) {
        Ok(true) => Seen::Waiting,
        _ => Seen::NotHeld,
    }
}

/// Is there something to read on `stream` — bytes, an end, an error — looked at directly
/// (`MSG_PEEK`, not waiting)?
fn unread(stream: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    !matches!(
        socket2::SockRef::from(stream).peek(&mut byte),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock
    )
}

/// What the looks at the program saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Waiting for the client to speak, the connection open.
    Waiting,
    /// Asleep, but the connection is no longer open: it closed or reset it.
    NotHeld,
    /// Still working when the watch ended.
    Working,
    /// Not to be seen (gone, unreadable, too many threads).
    Unknown,
}

/// Look at growing intervals for the program asleep (waiting again), until `end` (blocking).
fn wait_until_asleep(
    pids: &[u32],
    server: SocketAddr,
    client: SocketAddr,
    end: std::time::Instant,
    meanwhile: impl Fn() -> Option<bool>,
) -> Seen {
    let mut every = Duration::from_micros(50);
    loop {
        if std::time::Instant::now() + every >= end {
            return Seen::Working;
        }
        std::thread::sleep(every);
        match local::idle::seen_asleep(pids, &meanwhile) {
            Some(true) => return held(server, client),
            Some(false) => {}
            // It was seen working, and is now out of sight (a connect of its own, threads
            // past the limit): it may still hang up, so the watch goes on to the window.
            None => return Seen::Working,
        }
        every = (every * 2).min(Duration::from_micros(500));
    }
}

/// Between looks at a greeting that arrived in part.
const PIECE_WAIT: Duration = Duration::from_millis(10);

fn from_error(e: &io::Error) -> First {
    match e.raw_os_error() {
        Some(libc::ECONNRESET) => First::Reset,
        errno => First::Error { errno },
    }
}

/// Whether `bytes` hold a whole greeting: a line, or a whole MySQL packet.
fn complete(bytes: &[u8]) -> bool {
    if bytes.contains(&b'\n') {
        return true;
    }
    match mysql_packet(bytes) {
        Some((len, _)) => bytes.len() >= 4 + len,
        None => false,
    }
}

/// A completed `connect()` that reported ECONNRESET: the server's kernel accepted the
/// handshake and the program (or a proxy in front of it) then reset the connection before
/// this side looked — *accepted then reset*, not a network failure.
/// (`docs/ground-truth/beyond-connect.md`: the RST often lands before `SO_ERROR` is read.)
pub fn accepted_then_reset(result: &ConnectResult) -> bool {
    matches!(result, ConnectResult::Failed { errno } if *errno == libc::ECONNRESET)
}

/// Identify a greeting. Never panics, whatever the bytes.
pub(crate) fn banner(bytes: &[u8]) -> First {
    let bytes = &bytes[..bytes.len().min(FIRST_BYTES_MAX)];
    First::Banner {
        bytes: bytes.to_vec(),
        kind: identify(bytes),
    }
}

/// What a greeting looks like (see [`BannerKind`]).
pub(crate) fn identify(bytes: &[u8]) -> BannerKind {
    if let Some(kind) = mysql(bytes) {
        return kind;
    }
    let line = first_line(bytes);
    if let Some(rest) = line.strip_prefix("SSH-") {
        let (protocol, software) = rest.split_once('-').unwrap_or((rest, ""));
        return BannerKind::Ssh {
            protocol: protocol.to_owned(),
            software: software.to_owned(),
        };
    }
    if let Some(rest) = line.strip_prefix("+OK") {
        return BannerKind::Pop3 {
            greeting: rest.trim().to_owned(),
        };
    }
    if line.starts_with("* OK") || line.starts_with("* PREAUTH") {
        return BannerKind::Imap {
            greeting: line[2..].trim().to_owned(),
        };
    }
    if let Some((code, text)) = coded(&line) {
        if code == 220 {
            // 220 is both SMTP's and FTP's greeting. FTP servers name themselves somewhere in
            // the (possibly multi-line) greeting (vsFTPd, ProFTPD, Pure-FTPd, FileZilla,
            // "FTP server ready") and mail servers say (E)SMTP; otherwise it is mail.
            let greeting = text.to_owned();
            let all = String::from_utf8_lossy(bytes).to_ascii_lowercase();
            let ftp = !all.contains("smtp") && (all.contains("ftp") || all.contains("filezilla"));
            return if ftp {
                BannerKind::Ftp { greeting }
            } else {
                BannerKind::Smtp { greeting }
            };
        }
        return BannerKind::Coded {
            code,
            text: text.to_owned(),
        };
    }
    BannerKind::Unknown
}

/// The first line, as text: invalid UTF-8 replaced, control characters dropped.
fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// `NNN text` or `NNN-text` (a multi-line reply's first line).
fn coded(line: &str) -> Option<(u16, &str)> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 3 && b[3] != b' ' && b[3] != b'-' {
        return None;
    }
    let code: u16 = line[..3].parse().ok()?;
    if !(100..600).contains(&code) {
        return None;
    }
    Some((code, line.get(4..).unwrap_or("").trim()))
}

/// A MySQL packet header: payload length (3 bytes, little-endian) and sequence number, which
/// is 0 for the server's first packet. The length must be plausible for a greeting.
fn mysql_packet(bytes: &[u8]) -> Option<(usize, &[u8])> {
    if bytes.len() < 5 {
        return None;
    }
    let len = usize::from(bytes[0]) | usize::from(bytes[1]) << 8 | usize::from(bytes[2]) << 16;
    if bytes[3] != 0 || len == 0 || len > 0x4000 {
        return None;
    }
    let payload = &bytes[4..bytes.len().min(4 + len)];
    Some((len, payload))
}

fn mysql(bytes: &[u8]) -> Option<BannerKind> {
    let (_, payload) = mysql_packet(bytes)?;
    match payload.first()? {
        // Protocol 10: the version string, NUL-terminated, follows.
        0x0a => {
            let rest = &payload[1..];
            let end = rest.iter().position(|&b| b == 0)?;
            let version = &rest[..end];
            // A real version starts with a digit ("8.0.36", "5.5.5-10.11.6-MariaDB").
            if version.is_empty()
                || !version[0].is_ascii_digit()
                || !version.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
            {
                return None;
            }
            Some(BannerKind::MySql {
                server_version: String::from_utf8_lossy(version).into_owned(),
            })
        }
        // An error packet: 0xff, the code (2 bytes LE), maybe `#` and a 5-character SQL
        // state, then the message.
        0xff if payload.len() >= 3 => {
            let code = u16::from_le_bytes([payload[1], payload[2]]);
            let mut msg = &payload[3..];
            if msg.first() == Some(&b'#') && msg.len() >= 6 {
                msg = &msg[6..];
            }
            let message: String = String::from_utf8_lossy(msg)
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            // Guard against text that happens to start with a plausible header: a MySQL
            // error message is printable.
            if message.is_empty() {
                return None;
            }
            Some(BannerKind::MySqlError { code, message })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_beyond_the_checks_own_makes_rest_unknown() {
        let before = local::tcp_active_opens().expect("readable here");
        // Nothing can have happened past the end of the counter.
        let process = crate::probe::own_connects();
        assert_eq!(nothing_in_flight(Some((u64::MAX, 0, process))), Some(true));
        assert_eq!(nothing_in_flight(None), None, "no count read before");
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        // One connect more than expected: unknown, never "nothing in flight".
        // (A connect of another program, as this process's own count did not move.)
        assert_eq!(nothing_in_flight(Some((before, 0, u64::MAX))), None);
    }

    #[test]
    fn window_from_rtt() {
        assert_eq!(window_for(Duration::from_micros(50)), WINDOW_MIN);
        assert_eq!(
            window_for(Duration::from_millis(100)),
            Duration::from_millis(800)
        );
        assert_eq!(window_for(Duration::from_secs(2)), WINDOW_MAX);
        assert_eq!(window_for(Duration::MAX), WINDOW_MAX);
    }

    #[test]
    fn reset_on_connect() {
        assert!(accepted_then_reset(&ConnectResult::Failed {
            errno: libc::ECONNRESET
        }));
        assert!(!accepted_then_reset(&ConnectResult::Failed {
            errno: libc::ECONNREFUSED
        }));
        assert!(!accepted_then_reset(&ConnectResult::Connected));
    }

    #[test]
    fn greetings() {
        assert_eq!(
            identify(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
            BannerKind::Ssh {
                protocol: "2.0".into(),
                software: "OpenSSH_9.2p1 Debian-2+deb12u3".into()
            }
        );
        assert_eq!(
            identify(b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n"),
            BannerKind::Smtp {
                greeting: "mx.example.org ESMTP Postfix (Debian/GNU)".into()
            }
        );
        assert_eq!(
            identify(b"220 (vsFTPd 3.0.3)\r\n"),
            BannerKind::Ftp {
                greeting: "(vsFTPd 3.0.3)".into()
            }
        );
        assert_eq!(
            identify(b"220-FileZilla Server 1.8\r\n220 Please visit\r\n"),
            BannerKind::Ftp {
                greeting: "FileZilla Server 1.8".into()
            }
        );
        assert_eq!(
            identify(b"+OK Dovecot (Debian) ready.\r\n"),
            BannerKind::Pop3 {
                greeting: "Dovecot (Debian) ready.".into()
            }
        );
        assert_eq!(
            identify(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"),
            BannerKind::Imap {
                greeting: "OK [CAPABILITY IMAP4rev1] Dovecot ready.".into()
            }
        );
        assert_eq!(
            identify(b"421 4.7.0 Too many connections\r\n"),
            BannerKind::Coded {
                code: 421,
                text: "4.7.0 Too many connections".into()
            }
        );
        assert_eq!(identify(b"hello\n"), BannerKind::Unknown);
        assert_eq!(identify(b"1234 x\n"), BannerKind::Unknown);
    }

    #[test]
    fn mysql_greeting_and_error() {
        let mut g = vec![0x4a, 0, 0, 0, 0x0a];
        g.extend_from_slice(b"8.0.36\0");
        g.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0]);
        assert_eq!(
            identify(&g),
            BannerKind::MySql {
                server_version: "8.0.36".into()
            }
        );
        let msg = b"Host '10.1.2.3' is not allowed to connect to this MySQL server";
        let mut e = vec![(msg.len() + 3) as u8, 0, 0, 0, 0xff, 0x6a, 0x04];
        e.extend_from_slice(msg);
        assert_eq!(
            identify(&e),
            BannerKind::MySqlError {
                code: 1130,
                message: String::from_utf8(msg.to_vec()).unwrap()
            }
        );
        // With an SQL state marker.
        let mut e = vec![0x20, 0, 0, 0, 0xff, 0x10, 0x04, b'#'];
        e.extend_from_slice(b"08004Too many connections");
        assert_eq!(
            identify(&e),
            BannerKind::MySqlError {
                code: 1040,
                message: "Too many connections".into()
            }
        );
        // A truncated greeting is not claimed.
        assert_eq!(identify(&[0x4a, 0, 0, 0, 0x0a, b'8']), BannerKind::Unknown);
    }

    #[test]
    fn garbage_does_not_panic() {
        let samples: [&[u8]; 9] = [
            b"",
            &[0xff],
            &[0, 0, 0, 0],
            &[1, 0, 0, 0, 0xff],
            &[3, 0, 0, 0, 0xff, 1],
            &[0xff, 0xff, 0xff, 0, 0x0a, 0],
            b"SSH-",
            b"22",
            &[0xe2, 0x82, b'\n'],
        ];
        for s in samples {
            let _ = banner(s);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = banner(&bytes);
            let _ = complete(&bytes);
        }
    }
}
