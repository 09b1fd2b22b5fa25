//! Well-known servers as data: which ports they serve, their process names, their service
//! unit, and the setting that chooses the addresses they listen on. The diagnosis quotes the
//! setting when a server listens on loopback only; the local stage looks for the processes.

/// One kind of server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KnownServer {
    pub name: &'static str,
    pub ports: &'static [u16],
    /// Process names (`/proc/PID/comm`, at most 15 characters).
    pub processes: &'static [&'static str],
    /// Executables its processes run under another name (`/proc/PID/exe`'s file name, when it
    /// is not one of `processes`): Redis builds its server and its check tools as one program,
    /// and Debian's /usr/bin/redis-server is a link to redis-check-rdb.
    pub executables: &'static [&'static str],
    /// systemd unit to inspect or start it.
    pub unit: Option<&'static str>,
    /// Where the listening address is set, in the server's own words; `{addr}` stands for
    /// the address to listen on (the diagnosis fills in one that covers the address dialled).
    pub listen_setting: &'static str,
}

pub(crate) const SERVERS: &[KnownServer] = &[
    KnownServer {
        name: "PostgreSQL",
        ports: &[5432],
        processes: &["postgres", "postmaster"],
        executables: &[],
        unit: Some("postgresql"),
        listen_setting: "listen_addresses = '{addr}' in postgresql.conf, and a host line in pg_hba.conf",
    },
    KnownServer {
        name: "MySQL/MariaDB",
        ports: &[3306],
        processes: &["mysqld", "mariadbd"],
        executables: &[],
        unit: Some("mysql"),
        listen_setting: "bind-address = {addr} under [mysqld] in my.cnf",
    },
    KnownServer {
        name: "Redis",
        ports: &[6379],
        processes: &["redis-server"],
        executables: &["redis-check-rdb"],
        unit: Some("redis-server"),
        listen_setting: "bind {addr} in redis.conf (and protected-mode)",
    },
    KnownServer {
        name: "MongoDB",
        ports: &[27017],
        processes: &["mongod"],
        executables: &[],
        unit: Some("mongod"),
        listen_setting: "net.bindIp: {addr} in mongod.conf",
    },
    KnownServer {
        name: "OpenSSH",
        ports: &[22],
        processes: &["sshd"],
        executables: &[],
        unit: Some("ssh"),
        listen_setting: "ListenAddress {addr} in /etc/ssh/sshd_config",
    },
    KnownServer {
        name: "nginx",
        ports: &[80, 443],
        processes: &["nginx"],
        executables: &[],
        unit: Some("nginx"),
        listen_setting: "the `listen` directive in the server block (no address in it means all IPv4 addresses; `[::]` all IPv6 ones)",
    },
    KnownServer {
        name: "Apache httpd",
        ports: &[80, 443],
        processes: &["apache2", "httpd"],
        executables: &[],
        unit: Some("apache2"),
        listen_setting: "the `Listen` directive in ports.conf / httpd.conf",
    },
    KnownServer {
        name: "Caddy",
        ports: &[80, 443],
        processes: &["caddy"],
        executables: &[],
        unit: Some("caddy"),
        listen_setting: "the site address and `bind` directive in the Caddyfile",
    },
    KnownServer {
        name: "RabbitMQ",
        ports: &[5672],
        processes: &["beam.smp"],
        executables: &[],
        unit: Some("rabbitmq-server"),
        listen_setting: "listeners.tcp.default in rabbitmq.conf",
    },
    KnownServer {
        name: "memcached",
        ports: &[11211],
        processes: &["memcached"],
        executables: &[],
        unit: Some("memcached"),
        listen_setting: "-l {addr} in /etc/memcached.conf",
    },
    KnownServer {
        name: "a development server",
        ports: &[3000, 4200, 5000, 5173, 8000, 8080, 8888],
        processes: &[
            "node", "python3", "python", "ruby", "php", "java", "deno", "bun",
        ],
        executables: &[],
        unit: None,
        listen_setting: "its host option: `--host {addr}` (Vite, Angular; Rails `-b {addr}`), HOST={addr} (Next.js, CRA), `--bind {addr}` (python -m http.server)",
    },
];

/// Processes that own a port on behalf of a container: the real server is inside it.
pub(crate) const CONTAINER_PROXIES: &[&str] = &[
    "docker-proxy",
    "rootlessport",
    "rootlesskit",
    "slirp4netns",
    "pasta",
    "conmon",
    "containerd-shim",
];

/// The servers that usually serve `port`.
pub(crate) fn for_port(port: u16) -> impl Iterator<Item = &'static KnownServer> {
    SERVERS.iter().filter(move |s| s.ports.contains(&port))
}

/// The server a process name belongs to, if any.
pub(crate) fn for_process(comm: &str) -> Option<&'static KnownServer> {
    SERVERS.iter().find(|s| s.processes.contains(&comm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(for_port(5432).next().unwrap().name, "PostgreSQL");
        assert_eq!(for_port(443).count(), 3);
        assert_eq!(
            for_process("redis-server").unwrap().unit,
            Some("redis-server")
        );
        assert!(for_process("bash").is_none());
        // /proc/PID/comm is cut at 15 characters: every name must fit.
        assert!(
            SERVERS
                .iter()
                .flat_map(|s| s.processes)
                .all(|p| p.len() <= 15)
        );
        assert!(CONTAINER_PROXIES.iter().all(|p| p.len() <= 15));
    }
}
