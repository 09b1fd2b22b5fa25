//! The few calls into libc that have no safe wrapper, each behind a safe function.
//!
//! `unsafe` is denied in the rest of the crate (`[lints]` in Cargo.toml): a reviewer finds every
//! raw call here, next to the reason it is sound. Parsing what these calls return (socket
//! tables, error-queue messages) happens in the stages, on plain bytes.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Is this process root (so it sees every process and can read the firewall)?
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Hold back SIGINT in this thread (and the threads it starts from now on) until
/// `release_sigint`: a Ctrl-C that comes before canreach's handler is set up stays pending
/// instead of killing the process without a word, and is delivered to the handler once it is.
pub fn hold_sigint() {
    set_sigint_mask(libc::SIG_BLOCK);
}

/// Let SIGINT through again in this thread (a held one is delivered now: to canreach's
/// handler when one is set up, else the default action ends the process).
pub(crate) fn release_sigint() {
    set_sigint_mask(libc::SIG_UNBLOCK);
}

fn set_sigint_mask(how: libc::c_int) {
    // SAFETY: `set` is a sigset_t initialised by sigemptyset before use; pthread_sigmask reads
    // it and may write no old mask (null). Neither can fail with these valid arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// This thread's CPU time so far (user and system).
pub(crate) fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The soft limit on open file descriptors (`ulimit -n`), when it can be read.
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit for getrlimit to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0).then_some(r.rlim_cur)
}

/// Raise the soft open-file limit to the hard one, as network tools do (a run of many targets
/// holds a socket or more per check in flight); the soft limit as it was, to give back to a
/// command run afterwards (`-- COMMAND`), or `None` when it was not raised. A hard limit of
/// "unlimited" is taken as 2^20, the kernel's default `fs.nr_open` (above it the call fails).
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    let was = r.rlim_cur;
    let want = r.rlim_max.min(1 << 20);
    if want <= was {
        return None;
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: r.rlim_max,
    };
    // SAFETY: raised is a valid rlimit; a soft limit up to the hard one needs no privilege.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    (rc == 0).then_some(was)
}

/// Set the soft open-file limit back to `soft` (see [`raise_open_file_limit`]).
pub(crate) fn restore_open_file_limit(soft: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit for getrlimit to fill, then a valid one for setrlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = soft.min(r.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// The name of user `uid` (`getpwuid_r`), if it has one.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: zeroed passwd is valid for getpwuid_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: buffers are valid for the call; result points into pwd/buf on success.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: pw_name is a NUL-terminated string inside buf, alive until buf drops.
    Some(
        unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// This machine's interface addresses (`getifaddrs`), each once.
pub(crate) fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut p = ifap;
    while !p.is_null() {
        // SAFETY: p walks the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*p };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says its size.
            let ip = unsafe {
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                        Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                        Some(IpAddr::from(sin6.sin6_addr.s6_addr))
                    }
                    _ => None,
                }
            };
            if let Some(ip) = ip.filter(|ip| !out.contains(ip)) {
                out.push(ip);
            }
        }
        p = ifa.ifa_next;
    }
    // SAFETY: ifap came from a successful getifaddrs.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

/// A failed `getaddrinfo`: its `EAI_*` code, its text, and errno for `EAI_SYSTEM`.
#[derive(Debug)]
pub(crate) struct GaiError {
    pub code: i32,
    pub text: String,
    pub errno: io::Error,
}

/// glibc's resolver, the way applications call it: any family, stream sockets, no flags
/// (like Rust's std and Python's `socket.create_connection`). Addresses in its order, each
/// once.
pub(crate) fn getaddrinfo(name: &CStr) -> Result<Vec<IpAddr>, GaiError> {
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set the fields we need.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string and out-pointer; freed below with freeaddrinfo.
    let rc = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        let errno = io::Error::last_os_error();
        // SAFETY: gai_strerror returns a static string.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
            .to_string_lossy()
            .into_owned();
        return Err(GaiError {
            code: rc,
            text,
            errno,
        });
    }
    let mut out = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: p walks the list getaddrinfo returned, valid until freeaddrinfo.
        let ai = unsafe { &*p };
        // SAFETY: ai_addr/ai_addrlen describe a sockaddr owned by the list.
        let ip = unsafe { sockaddr_to_ip(ai.ai_addr, ai.ai_addrlen) };
        if let Some(ip) = ip.filter(|ip| !out.contains(ip)) {
            out.push(ip);
        }
        p = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    Ok(out)
}

/// # Safety
/// `sa` must point to a sockaddr of `len` bytes, as getaddrinfo returns.
unsafe fn sockaddr_to_ip(sa: *const libc::sockaddr, len: libc::socklen_t) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees the pointer and length.
    let storage = unsafe {
        socket2::SockAddr::try_init(|s, l| {
            std::ptr::copy_nonoverlapping(sa.cast::<u8>(), s.cast::<u8>(), len as usize);
            *l = len;
            Ok(())
        })
    };
    storage.ok()?.1.as_socket().map(|s| s.ip())
}

/// Set an `int` socket option.
pub(crate) fn set_int_option(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: valid pointer to a c_int of the stated length; a bad fd is an error return.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The kernel's `TCP_INFO` of a socket, and how many of its bytes the kernel filled in (an
/// older kernel writes a shorter struct; the fields past it stay 0).
fn raw_tcp_info(fd: RawFd) -> Option<(libc::tcp_info, usize)> {
    // SAFETY: all-zero bytes are a valid `tcp_info` (plain integers).
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: valid pointer and length of a writable `tcp_info`; the kernel writes at most
    // `len` bytes and updates `len`; a bad fd is an error return.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((info, len as usize))
}

/// The kernel's smoothed round-trip time of a connected TCP socket (`TCP_INFO`'s `tcpi_rtt`):
/// right after the handshake, the SYN to SYN-ACK time as the kernel saw it, free of this
/// process's own scheduling delays. `None` when it is not known (0) or the call fails.
pub(crate) fn tcp_rtt(fd: RawFd) -> Option<std::time::Duration> {
    let (info, _) = raw_tcp_info(fd)?;
    (info.tcpi_rtt > 0).then(|| std::time::Duration::from_micros(u64::from(info.tcpi_rtt)))
}

/// What the kernel knows of a connection's segments (`TCP_INFO`), as far as a client's side
/// sees them: the evidence for or against a path-MTU black hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegments {
    /// The MSS this side advertised (`tcpi_advmss`): the largest segment the peer may send.
    pub advmss: u32,
    /// The path MTU this side knows (`tcpi_pmtu`): the first hop's, unless an ICMP said less.
    pub pmtu: u32,
    /// Bytes received in order (`tcpi_bytes_received`, Linux ≥ 4.1).
    pub bytes_received: u64,
    /// Segments with data received, in order or not (`tcpi_data_segs_in`, Linux ≥ 4.6).
    pub data_segs_in: u32,
    /// Segments received out of order (`tcpi_rcv_ooopack`, Linux ≥ 5.4; `None` before): data
    /// past a gap that never filled — what arrives of a flight whose full-sized segments were
    /// lost while its short last one passed.
    pub out_of_order: Option<u32>,
    /// This side's retransmitted segments (`tcpi_total_retrans`).
    pub retransmitted: u32,
    /// This side's segments not yet acknowledged (`tcpi_unacked`).
    pub unacked: u32,
}

/// [`TcpSegments`] of a TCP socket; `None` when the call fails.
pub(crate) fn tcp_segments(fd: RawFd) -> Option<TcpSegments> {
    let (info, len) = raw_tcp_info(fd)?;
    let has_ooo =
        len >= std::mem::offset_of!(libc::tcp_info, tcpi_rcv_ooopack) + std::mem::size_of::<u32>();
    Some(TcpSegments {
        advmss: info.tcpi_advmss,
        pmtu: info.tcpi_pmtu,
        bytes_received: info.tcpi_bytes_received,
        data_segs_in: info.tcpi_data_segs_in,
        out_of_order: has_ooo.then_some(info.tcpi_rcv_ooopack),
        retransmitted: info.tcpi_total_retrans,
        unacked: info.tcpi_unacked,
    })
}

/// The process ids in /proc, in its order, read a few dozen at a time.
///
/// procfs builds every directory entry it lists (a pid lookup each): the 32 KiB read that
/// `std::fs::read_dir` makes lists about a thousand processes and costs ~2 ms on a machine
/// with thousands. A caller that stops at the owner it looked for should pay for the entries
/// up to it only.
#[derive(Debug)]
pub(crate) struct ProcPids {
    fd: OwnedFd,
    entries: Entries,
}

/// Open /proc for [`ProcPids`].
pub(crate) fn proc_pids() -> io::Result<ProcPids> {
    numbered("/proc")
}

/// The thread ids of a process (`/proc/PID/task`), as [`ProcPids`] lists pids.
pub(crate) fn task_ids(pid: u32) -> io::Result<ProcPids> {
    numbered(&format!("/proc/{pid}/task"))
}

fn numbered(path: &str) -> io::Result<ProcPids> {
    Ok(ProcPids {
        fd: open_dir(path)?,
        // About 60 entries a read.
        entries: Entries::new(2048),
    })
}

impl Iterator for ProcPids {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.entries.next_number(&self.fd)
    }
}

/// A process's open file descriptors (`/proc/PID/fd`), listed a few dozen at a time like
/// [`ProcPids`]: listing builds an entry for every descriptor read, and a server may hold
/// thousands of connections, while the listeners an owner search looks for are opened first.
#[derive(Debug)]
pub(crate) struct FdDir {
    fd: OwnedFd,
    entries: Entries,
}

/// Open `/proc/PID/fd` for [`FdDir`].
pub(crate) fn fd_dir(pid: u32) -> io::Result<FdDir> {
    Ok(FdDir {
        fd: open_dir(&format!("/proc/{pid}/fd"))?,
        // About 40 descriptors a read.
        entries: Entries::new(1024),
    })
}

impl FdDir {
    /// The process's user: `/proc/PID/fd` belongs to it (to root for a process that is not
    /// dumpable, a daemon that changed user: such a process is looked at in the owner
    /// search's second pass), and an fstat of the open directory walks no path.
    pub(crate) fn owner_uid(&self) -> Option<u32> {
        // SAFETY: zeroed `stat` is a valid value for fstat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid open fd and a valid `stat` to fill.
        let rc = unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) };
        (rc == 0).then_some(st.st_uid)
    }

    /// Where descriptor `n` points (`socket:[INODE]`, a path …): `readlinkat` relative to the
    /// open directory, so no path is walked from the root for each descriptor.
    pub(crate) fn link(&self, n: u32) -> io::Result<Vec<u8>> {
        let name = CString::new(n.to_string()).expect("digits have no NUL");
        let mut buf = [0u8; 256];
        // SAFETY: a valid directory fd, a NUL-terminated name and a buffer valid for its
        // length; readlinkat writes at most that many bytes and returns how many.
        let len = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(buf[..usize::try_from(len).unwrap_or(0).min(buf.len())].to_vec())
    }
}

impl Iterator for FdDir {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.entries.next_number(&self.fd)
    }
}

fn open_dir(path: &str) -> io::Result<OwnedFd> {
    let path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path; the result is checked before use.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A directory read with `getdents64` into a small buffer, yielding the entries whose names
/// are numbers.
#[derive(Debug)]
struct Entries {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    done: bool,
}

impl Entries {
    fn new(size: usize) -> Self {
        Entries {
            buf: vec![0u8; size],
            pos: 0,
            len: 0,
            done: false,
        }
    }

    fn next_number(&mut self, dir: &OwnedFd) -> Option<u32> {
        loop {
            if self.pos >= self.len {
                if self.done {
                    return None;
                }
                // SAFETY: the buffer is valid for `buf.len()` writable bytes; the kernel
                // writes whole `linux_dirent64` records into it and returns their length.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        dir.as_raw_fd(),
                        self.buf.as_mut_ptr(),
                        self.buf.len(),
                    )
                };
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The end, or an error: the listing stops there (the owner search then
                // reports what it found, and a missing owner as not found).
                if n <= 0 {
                    self.done = true;
                    return None;
                }
                self.pos = 0;
                self.len = usize::try_from(n).unwrap_or(0).min(self.buf.len());
            }
            // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
            let rec = &self.buf[self.pos..self.len];
            if rec.len() < 19 {
                self.done = true;
                self.pos = self.len;
                return None;
            }
            let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
            if reclen < 19 || reclen > rec.len() {
                self.done = true;
                self.pos = self.len;
                return None;
            }
            let name = &rec[19..reclen];
            let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
            self.pos += reclen;
            if let Some(n) = std::str::from_utf8(name).ok().and_then(|n| n.parse().ok()) {
                return Some(n);
            }
        }
    }
}

/// One control message as the kernel wrote it: `(level, type, data)`.
pub(crate) type Cmsg = (i32, i32, Vec<u8>);

/// Drain a socket's error queue (`recvmsg(MSG_ERRQUEUE)`), at most `max` entries, returning
/// every control message of each.
pub(crate) fn error_queue(fd: RawFd, max: usize) -> Vec<Cmsg> {
    let mut out = Vec::new();
    for _ in 0..max {
        let mut data = [0u8; 256];
        let mut control = [0u64; 64]; // u64 for cmsg alignment
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: zeroed msghdr is valid; fields set below point into live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points to valid buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if n < 0 {
            break;
        }
        // SAFETY: the standard cmsg walk over the control buffer the kernel filled; every
        // pointer stays inside `control`, whose length msg_controllen says.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let hdr = &*c;
                let data_ptr = libc::CMSG_DATA(c);
                let len = (hdr.cmsg_len as usize).saturating_sub(data_ptr as usize - c as usize);
                let bytes = std::slice::from_raw_parts(data_ptr, len);
                out.push((hdr.cmsg_level, hdr.cmsg_type, bytes.to_vec()));
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
    }
    out
}

/// Make a descriptor non-blocking.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL on a descriptor; no memory is passed.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Wait up to `ms` milliseconds for the given descriptors (`None`: not watched) to be readable
/// or closed; which ones are.
pub(crate) fn poll_readable(fds: [Option<RawFd>; 2], ms: i32) -> io::Result<[bool; 2]> {
    let mut p = fds.map(|fd| libc::pollfd {
        fd: fd.unwrap_or(-1),
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: p is a valid array of two pollfd for the duration of the call.
    let n = unsafe { libc::poll(p.as_mut_ptr(), 2, ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok([p[0].revents != 0, p[1].revents != 0])
}

/// A netlink socket of `protocol` (`NETLINK_SOCK_DIAG` …).
#[derive(Debug)]
pub(crate) struct Netlink(OwnedFd);

impl Netlink {
    pub(crate) fn open(protocol: i32) -> io::Result<Netlink> {
        // SAFETY: plain socket(2); the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        Ok(Netlink(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Send one request to the kernel (netlink pid 0).
    pub(crate) fn send_to_kernel(&self, req: &[u8]) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: req and kernel are valid for the given lengths.
        let sent = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Receive one datagram into `buf`'s spare capacity (`buf` is cleared first, and holds the
    /// datagram after): a buffer never zeroed costs a page fault only for the pages the
    /// kernel writes, where a zeroed 64 KiB one cost sixteen on every dump. A datagram larger
    /// than the capacity is an error, not a cut one (whose end of dump could be lost).
    pub(crate) fn recv_into(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        buf.clear();
        let spare = buf.spare_capacity_mut();
        let room = spare.len();
        // SAFETY: spare is valid for writes of `room` bytes; recv writes at most that many
        // (MSG_TRUNC only makes it *return* the datagram's full length, which may be more).
        let n = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                room,
                libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n > room {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a netlink datagram of {n} bytes, larger than the {room}-byte buffer"),
            ));
        }
        // SAFETY: n <= room, and the kernel initialised the first n bytes of the spare capacity.
        unsafe { buf.set_len(n) };
        Ok(n)
    }
}

/// Register a non-blocking socket with tokio's reactor, for readiness waits.
pub(crate) fn async_socket(
    socket: socket2::Socket,
) -> io::Result<tokio::io::unix::AsyncFd<socket2::Socket>> {
    // SAFETY: the AsyncFd takes the socket2::Socket by value and owns it, so its fd stays open
    // and unchanged until the AsyncFd drops it.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::WRITABLE)
    }
    .map_err(|e| e.into_parts().1)
}

/// A one-shot timer with a descriptor (`timerfd`), for waits finer than the runtime's
/// millisecond timer: registered with the reactor ([`async_timer`]), it wakes the runtime's
/// own thread, where a sleep on a blocking thread would first need a thread (~0.2 ms to start
/// on this project's 2-vCPU machine, against the tens of µs being waited for).
#[derive(Debug)]
pub(crate) struct TimerFd(OwnedFd);

impl TimerFd {
    pub(crate) fn new() -> io::Result<TimerFd> {
        // SAFETY: plain timerfd_create(2); the fd is owned below.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        Ok(TimerFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Fire once, `after` from now (at least 1 ns: a zero time would disarm it).
    pub(crate) fn fire_in(&self, after: std::time::Duration) -> io::Result<()> {
        let after = after.max(std::time::Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: after.subsec_nanos().into(),
            },
        };
        // SAFETY: spec is a valid itimerspec for the call; no old value is asked for.
        let r =
            unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Take the expiry count, so that the descriptor is no longer readable.
    pub(crate) fn consume(&self) {
        let mut count = [0u8; 8];
        // SAFETY: count is valid for 8 bytes; a timerfd read gives exactly 8 or EAGAIN.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A [`TimerFd`] registered with tokio's reactor.
pub(crate) fn async_timer() -> io::Result<tokio::io::unix::AsyncFd<TimerFd>> {
    let timer = TimerFd::new()?;
    // SAFETY: the AsyncFd takes the TimerFd by value and owns it, so its fd stays open and
    // unchanged until the AsyncFd drops it.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(timer, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)
}

/// `name` as a C string, or `None` when it holds a NUL byte.
pub(crate) fn c_string(name: &str) -> Option<CString> {
    CString::new(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timer_descriptor_fires_once_and_can_be_armed_again() {
        let timer = async_timer().expect("a timerfd");
        for _ in 0..2 {
            timer
                .get_ref()
                .fire_in(std::time::Duration::from_micros(50))
                .unwrap();
            let mut ready = timer.readable().await.unwrap();
            ready.get_inner().consume();
            ready.clear_ready();
        }
        // Consumed: not readable again until armed.
        let again =
            tokio::time::timeout(std::time::Duration::from_millis(20), timer.readable()).await;
        assert!(again.is_err(), "fired without being armed");
    }

    #[test]
    fn getaddrinfo_answers_localhost_from_etc_hosts() {
        let addrs = getaddrinfo(&c_string("localhost").unwrap()).unwrap();
        assert!(
            !addrs.is_empty() && addrs.iter().all(|a| a.is_loopback()),
            "{addrs:?}"
        );
    }

    #[test]
    fn proc_pids_lists_this_process_in_small_reads() {
        let me = std::process::id();
        let pids: Vec<u32> = proc_pids().unwrap().collect();
        assert!(pids.contains(&me));
        assert!(pids.contains(&1));
        let std_count = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .count();
        // Processes come and go meanwhile: about the same number.
        assert!(
            pids.len().abs_diff(std_count) < 50,
            "{} vs {std_count}",
            pids.len()
        );
    }

    #[test]
    fn interfaces_include_loopback() {
        assert!(interface_addresses().iter().any(|a| a.is_loopback()));
    }
}
