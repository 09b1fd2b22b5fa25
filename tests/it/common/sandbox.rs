//! The test binary runs in PID, mount and network namespaces of its own, so that the machine
//! it runs on cannot change a result.
//!
//! canreach looks at this machine's processes (`/proc`): who owns a listener, whether the
//! server that usually serves a port runs. On a machine where PostgreSQL or Redis runs, or
//! where thousands of processes make the search for a listener's owner run out of time, the
//! tests would see them. So before `main`, the binary starts itself again under `unshare
//! --net --pid --fork --mount-proc`: its /proc, and that of every program it starts, lists only
//! the processes of this test run. Its network namespace has a loopback device of its own
//! (brought up first): the machine's listeners on 127.0.0.1 (another program on a port a test
//! expects closed, or one that never accepts) and its firewall rules are not there, and no
//! test can reach past loopback. In that mount namespace /etc/hosts is replaced by a stock
//! Debian one (the machine's may lack `::1 localhost`, or add names), so that `localhost`
//! means the same everywhere. Nothing is changed outside the namespaces.
//!
//! As root this needs nothing more; otherwise an unprivileged user namespace
//! (`--map-current-user`: the user stays who they are) where the machine allows one. Where
//! neither works the tests run as started, with a note on stderr, and
//! [`crate::host_proof`]'s test fails under `CANREACH_REQUIRE_LAB=1`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set for the process that runs inside: the PID namespace the binary was started in
/// (`pid:[…]`, as `/proc/self/ns/pid` reads). Set to `off` to run the tests as started.
pub const SANDBOX_VAR: &str = "CANREACH_TEST_SANDBOX";

/// What /etc/hosts reads inside: Debian's stock file, without the machine's own name.
pub const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";

/// What the shell does inside, before it runs the test binary (`$0`, with its arguments):
/// - brings the loopback device up;
/// - gives the run its own /tmp, /run/netns and /etc/netns (empty tmpfs, in this mount
///   namespace only): inside, every run has the same pids, so names made from
///   `std::process::id()` (temporary files, lab namespaces and their /etc files) would
///   collide between two runs on one machine; and nothing is left behind when a run is
///   killed (a checkout under /tmp keeps its own directory there);
/// - puts the stock hosts file over /etc/hosts (the file stays: `ip netns exec` mounts a lab's
///   own hosts file over /etc/hosts, which fails where that is a mount of a deleted file).
///
/// It then runs the test binary (without the user namespace's capabilities, where it made
/// one: `{RUN}`), waits for it and exits with its status: it stays as the namespace's
/// first process (its init), reaps the orphans a test leaves, and the test binary, not being
/// init, dies of a Ctrl-C as it would outside. A step that fails is said on stderr; the tests
/// that depend on it then fail, saying why.
const SETUP: &str = r#"
note() { echo "note: the tests' namespace: $1" >&2; }
ip link set lo up || note "no loopback device (ip link set lo up failed)"
# A build under /tmp (a clone there) must stay reachable under the new /tmp: the old /tmp,
# held open as fd 9, gives its top directory back (mount must not canonicalize the path,
# which would name the new /tmp).
top=""; case "$0" in /tmp/?*) top=${0#/tmp/}; top=${top%%/*}; exec 9</tmp ;; esac
mount -t tmpfs -o mode=1777 canreach-test /tmp || note "/tmp is the machine's"
if [ -n "$top" ]; then
  mkdir -p "/tmp/$top" && mount --no-canonicalize --bind "/proc/$$/fd/9/$top" "/tmp/$top" \
    || note "/tmp/$top, where the tests were built, is not reachable"
  exec 9<&-
fi
for d in /run/netns /etc/netns; do
  mkdir -p "$d" 2>/dev/null; mount -t tmpfs -o mode=755 canreach-test "$d" || note "$d is the machine's"
done
f=$(mktemp /tmp/hosts.XXXXXX) && chmod 644 "$f" && printf '%s' '{HOSTS}' > "$f"   && mount --bind "$f" /etc/hosts || note "/etc/hosts is the machine's"
{RUN} "$0" "$@"
exit $?
"#;

/// Run once by the loader before `main` (an `.init_array` entry): libtest's `main` is not
/// ours, and the process must be in its namespaces before any test starts a thread.
#[used]
#[allow(unsafe_code)]
// SAFETY: the loader calls each `.init_array` entry once, before `main`; `enter` takes no
// argument it would read, cannot unwind (it never panics), and only reads the environment
// and /proc, starts `unshare` and may replace the process with it.
#[unsafe(link_section = ".init_array")]
static ENTER: extern "C" fn() = enter;

extern "C" fn enter() {
    if std::env::var_os(SANDBOX_VAR).is_some() {
        return;
    }
    let (Ok(outer), Ok(exe), Ok(cmdline)) = (
        std::fs::read_link("/proc/self/ns/pid"),
        std::env::current_exe(),
        std::fs::read("/proc/self/cmdline"),
    ) else {
        return;
    };
    let Some((flags, user)) = unshare_flags() else {
        eprintln!(
            "note: the tests run in this machine's PID namespace (`unshare --pid` is not \
             allowed here): its processes may change results"
        );
        return;
    };
    let args = cmdline
        .split(|b| *b == 0)
        .skip(1)
        .filter(|a| !a.is_empty())
        .map(std::ffi::OsStr::from_bytes);
    let script = SETUP.replace("{HOSTS}", HOSTS).replace(
        "{RUN}",
        if user {
            // The user namespace's capabilities were for the setup: the tests run as the
            // user they are, as they would outside.
            "setpriv --inh-caps=-all --ambient-caps=-all --"
        } else {
            ""
        },
    );
    let err = Command::new("unshare")
        .args(flags)
        .args(["--", "sh", "-c", &script])
        .arg(&exe)
        .args(args)
        .env(SANDBOX_VAR, &outer)
        .exec();
    eprintln!("note: the tests run in this machine's PID namespace (unshare: {err})");
}

/// The `unshare` options that work here: as root, or in a user namespace of one's own (then
/// `true`, and the setup keeps its capabilities there).
fn unshare_flags() -> Option<(&'static [&'static str], bool)> {
    const AS_ROOT: &[&str] = &[
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--propagation",
        "private",
    ];
    const AS_USER: &[&str] = &[
        "--map-current-user",
        "--keep-caps",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--propagation",
        "private",
    ];
    [(AS_ROOT, false), (AS_USER, true)]
        .into_iter()
        .find(|(flags, _)| {
            Command::new("unshare")
                .args(*flags)
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Is this process in the namespaces [`enter`] made?
pub fn inside() -> bool {
    std::env::var(SANDBOX_VAR).is_ok_and(|outer| {
        outer != "off"
            && std::fs::read_link("/proc/self/ns/pid").is_ok_and(|ns| ns.to_string_lossy() != outer)
    })
}

/// A PID namespace and a mount namespace with its own /proc, made for one [`super::Lab`]:
/// the runs of canreach in the lab's network namespaces ([`super::run_in`],
/// [`super::Lab::canreach`]) and the programs a test starts there with [`InLab`] are its
/// processes, and its /proc lists them and nothing else — not the test binary, not the
/// processes of the tests running beside this one, not the machine's. A test that needs a
/// listener's owner seen starts the owner there ([`super::Lab::hold`]).
pub struct LabSandbox {
    /// `unshare`, whose child is the namespace's first process: when it is killed, the
    /// kernel kills that child, and with it every process of the namespace.
    holder: Child,
    /// The first process, by its pid outside.
    init: u32,
}

impl LabSandbox {
    pub fn new() -> LabSandbox {
        let holder = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
            .args(["--propagation", "private", "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
        // Killed when dropped, also if it never gets going.
        let mut sandbox = LabSandbox { holder, init: 0 };
        let outer = sandbox.holder.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // unshare's child, once it runs `sleep`: /proc is mounted by then.
            let init = std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next()?.parse::<u32>().ok())
                .filter(|init| {
                    std::fs::read(format!("/proc/{init}/comm")).is_ok_and(|c| c == b"sleep\n")
                });
            if let Some(init) = init {
                sandbox.init = init;
                return sandbox;
            }
            assert!(
                Instant::now() < deadline,
                "unshare --pid --mount-proc did not start within 10 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Start `cmd` inside (see [`spawn_at`]).
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<Child> {
        spawn_at(self.init, cmd)
    }

    /// Run `cmd` inside to its end (see [`output_at`]).
    pub fn output(&self, cmd: &mut Command) -> std::io::Result<Output> {
        output_at(self.init, cmd)
    }
}

impl Drop for LabSandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Move this thread (only) into the mount namespace `mnt`, and the children it starts from
/// now on into the PID namespace `pid`.
#[allow(unsafe_code)]
fn join_namespaces(pid: &File, mnt: &File) -> std::io::Result<()> {
    // SAFETY: unshare and setns take flags and a descriptor this function holds open; they
    // change only the calling thread, a helper that ends after one spawn. CLONE_FS first:
    // a thread that shares its root and working directory with others cannot change its
    // mount namespace.
    let ok = unsafe {
        libc::unshare(libc::CLONE_FS) == 0
            && libc::setns(mnt.as_raw_fd(), libc::CLONE_NEWNS) == 0
            && libc::setns(pid.as_raw_fd(), libc::CLONE_NEWPID) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The live labs' sandboxes, by the name of each of their network namespaces.
static LABS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

/// Name `sandbox` as the one of the network namespaces `names` until [`forget`].
pub fn register(names: &[&str], sandbox: &LabSandbox) {
    let mut labs = LABS.lock().unwrap_or_else(|e| e.into_inner());
    labs.extend(names.iter().map(|n| (n.to_string(), sandbox.init)));
}

/// Forget the sandbox of the network namespaces `names`.
pub fn forget(names: &[&str]) {
    let mut labs = LABS.lock().unwrap_or_else(|e| e.into_inner());
    labs.retain(|(n, _)| !names.contains(&n.as_str()));
}

/// Programs started in a lab: `ip netns exec NS program …` runs in the sandbox of the lab
/// NS belongs to (as a plain `spawn`/`output` where NS is no lab's).
pub trait InLab {
    fn spawn_in_lab(&mut self) -> std::io::Result<Child>;
    fn output_in_lab(&mut self) -> std::io::Result<Output>;
}

impl InLab for Command {
    fn spawn_in_lab(&mut self) -> std::io::Result<Child> {
        match sandbox_of(self) {
            Some(init) => spawn_at(init, self),
            None => self.spawn(),
        }
    }

    fn output_in_lab(&mut self) -> std::io::Result<Output> {
        match sandbox_of(self) {
            Some(init) => output_at(init, self),
            None => self.output(),
        }
    }
}

/// The first process of the sandbox of the lab whose network namespace `cmd` enters.
fn sandbox_of(cmd: &Command) -> Option<u32> {
    let mut args = cmd.get_args();
    if cmd.get_program() != "ip" || args.next()? != "netns" || args.next()? != "exec" {
        return None;
    }
    let ns = args.next()?;
    let labs = LABS.lock().unwrap_or_else(|e| e.into_inner());
    labs.iter()
        .find(|(n, _)| ns == n.as_str())
        .map(|(_, init)| *init)
}

/// Start `cmd` in the namespaces of the sandbox whose first process is `init`: from a helper
/// thread that joins them, so that the program is a child of the test (waited for and killed
/// by its pid, like any other) while the test process stays where it is.
fn spawn_at(init: u32, cmd: &mut Command) -> std::io::Result<Child> {
    // Joining a mount namespace moves the thread to its root directory.
    if cmd.get_current_dir().is_none()
        && let Ok(dir) = std::env::current_dir()
    {
        cmd.current_dir(dir);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let pid = File::open(format!("/proc/{init}/ns/pid"))?;
            let mnt = File::open(format!("/proc/{init}/ns/mnt"))?;
            join_namespaces(&pid, &mnt)?;
            cmd.spawn()
        })
        .join()
        .expect("the helper thread")
    })
}

/// [`spawn_at`] to the program's end, its stdout and stderr captured and no stdin (as
/// `Command::output`).
fn output_at(init: u32, cmd: &mut Command) -> std::io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn_at(init, cmd)?.wait_with_output()
}
