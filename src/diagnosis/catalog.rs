//! Every finding canreach can report, one entry each: its variant, its id, its severity, what
//! `docs/verdicts.md`'s findings table says of it, and the rule that finds it.
//!
//! The list is [`catalog!`]: a macro that hands the entries to another macro, so that the one
//! list makes [`super::FindingId`] (its variants, `ALL`, `as_str`, `severity`, `docs`: see
//! `finding.rs`) and the dispatch to the rules (`super::rule`). docs/verdicts.md's findings
//! table is rendered from it (`finding::tests::the_findings_table_is_the_catalog`). The order
//! is the order of strength: findings are reported, and their steps planned, in this order.
//!
//! An entry:
//!
//! ```text
//! Variant = "snake_id", Severity ("note on the severity, when it varies") {
//!     evidence: "what the check saw",
//!     says: "what the finding tells people, in short",
//!     advice: "the steps it proposes",
//!     rule: module::function,        // fn(&Ctx) -> Option<Finding> (or Vec<Finding>)
//! },
//! ```
//!
//! The rule paths are resolved where the dispatch is made (`diagnosis/mod.rs`, which sees every
//! rule module); this file imports nothing.

/// The finding list, handed to `$then!` (see the module's documentation).
macro_rules! catalog {
    ($then:ident) => {
        $then! {
        LocalFirewallOutput = "local_firewall_output", Error {
            evidence: "this machine's nftables output-hook chain has a rule matching TCP dport \
PORT (number, set or range) that drops/rejects (else, a `policy drop`) — checked \
for local targets and for remote ones whose first address was silent or locally \
refused; for a UDP target, `udp dport` (or `th dport`) rules, read after 200 ms of \
silence or when the send was refused",
            says: "\"this machine's own firewall stops TCP port P in its output path: `tcp dport \
5432 drop` (table …, chain …). A drop there looks exactly like silence from the \
remote side.\"",
            advice: "`sudo nft -a list chain FAMILY TABLE CHAIN`; `sudo nft delete rule … handle \
N`",
            rule: local::local_firewall_output,
        },
        LocalFirewallInput = "local_firewall_input", Error {
            evidence: "the same in an input-hook chain, for local targets",
            says: "… in its input path",
            advice: "as above",
            rule: local::local_firewall_input,
        },
        LocalPolicyReject = "local_policy_reject", Error {
            evidence: "`EACCES`/`EPERM` with no ICMP, or a reject ICMP sent by this machine's own \
address",
            says: "this machine's own firewall (OUTPUT) or policy refused to send; nothing left \
the machine",
            advice: "`sudo nft list ruleset | grep -n -B3 -w reject` on this machine (and \
`local_firewall_output` names the rule when root)",
            rule: address::local_policy_reject,
        },
        ListenerNotAccepting = "listener_not_accepting", Error {
            evidence: "a silent address of this machine whose listener's accept queue was full \
when looked at (10 ms into the silence, or when the probe ended: a `sock_diag` \
lookup of the listener, Recv-Q > Send-Q), or whose listener itself dropped packets \
meanwhile (its `sk_drops`, `INET_DIAG_SKMEMINFO`, rose between those two looks: not \
`ListenOverflows`, which every listener of the machine raises); else the socket table \
showing the listener's queue full (`idiag_rqueue` > `idiag_wqueue`). The probe waits \
through the kernel's SYN retries (timed as the kernel sends them: 1, 2, 3, 4, 5, 7 s … \
with `tcp_syn_linear_timeouts` 4, 1, 3, 7 s … with 0 or before Linux 6.7), looking after \
each, while the queue is still seen full or the listener dropped that retry, and no \
further than the last retry before the deadline, so a busy program that takes the \
connection late is `open`. Needs no socket table (under load the inspection may not \
finish): the program is then \"the program listening on A\"",
            says: "\"P (pid N, user U) listens on A, but it is not accepting connections: its \
accept queue is full (101 waiting, room for 100), so the kernel drops new \
connection attempts without a word — the program is hung or overloaded … While \
this check waited, this listener dropped 2 connection attempts\" (where the kernel \
does not give the listener's count: \"… the kernel dropped 51 connection attempts at full \
accept queues on this machine (ListenOverflows)\"); full for a moment only: \"… does not take \
connections as fast as they come: its accept queue filled up … It has room again \
now (4 waiting, room for 100)\"",
            advice: "`ps -o pid,stat,etime,wchan:32,args -p PID`; `ss -ltn 'sport = :PORT'`; \
`systemctl restart UNIT` (usual servers) or restart it; rules out firewall hunts, \
the walk and `ss -p`",
            rule: local::listener_not_accepting,
        },
        OutOfTime = "out_of_time", Warning {
            evidence: "the first address is `inconclusive` for want of time (not of a socket)",
            says: "\"the check ran out of time before the evidence was in: looking up the name \
took 4.90 s of the 5.00 s deadline, so the probe could wait only 0.1 ms\"",
            advice: "`canreach --timeout 10s …`",
            rule: address::out_of_time,
        },
        MtuBlackhole = "mtu_blackhole", Error {
            evidence: "the TLS handshake got nothing (or stalled after part of the server's \
flight) for `max(1 s, 16 × rtt)`; a second connection with `TCP_MAXSEG` 1200 (IPv6 \
1220) set before `connect()`, opened beside it, received the server's certificates \
while the first still had nothing; the first allowed larger segments \
(`tcpi_advmss`); the address is not this machine's",
            says: "\"large packets vanish on the way … a second connection asking for segments of \
at most 1200 bytes, opened after 1.00 s, completed the handshake in 2 ms while the \
first still had nothing\"; when the kernel saw it, \"the first connection did \
receive 1 later segment(s) of the answer past a gap that never filled\": a \
narrower link whose ICMP \"fragmentation needed\" / \"packet too big\" is dropped",
            advice: "to the network team: clamp the MSS on the router/VPN in front of the narrow \
link, or fix its MTU, and let those ICMP messages through; `ip route get ADDR`",
            rule: mtu::mtu_blackhole,
        },
        ProgramNotAccepting = "program_not_accepting", Error ("warning when cut short") {
            evidence: "this machine: the connection waited in the listener's accept queue (inode \
0 in `sock_diag`) from the connect to the end of the 900 ms watch for the accept \
(`session::watch::ACCEPT_WAIT`); or the session's own connection got no answer by the \
kernel's first retry (1.1 s: dropped at the full queue) while the probe's still waits \
there; cut short by the deadline: outcome `inconclusive`",
            says: "\"P (pid N, user U, EXE) listens on A, but did not take the connection: it \
waited 900 ms in the accept queue (2 waiting, this check's among them; room for \
16) without an accept(). The kernel completes the handshake by itself, so clients \
connect — and then hang.\" + every thread asleep (not calling accept(): hung) / \
threads running (too busy)",
            advice: "`ps -o pid,stat,etime,wchan:32,args -p PID`; `ss -ltn 'sport = :PORT'`; \
restart it (`systemctl restart UNIT` for usual servers) once its logs say why; cut \
short: `canreach --timeout 10s …`; rules out firewall hunts, the walk, other \
ports, `ss -p`",
            rule: program::program_not_accepting,
        },
        AcceptedThenReset = "accepted_then_reset", Error {
            evidence: "`ECONNRESET` when the connect completed, or a reset before the client spoke",
            says: "the kernel accepted, the program (or a proxy whose backend is down) reset the \
connection; names the container proxy when this machine's owner is one",
            advice: "`ss -ltnp 'sport = :PORT'` on the server (who owns the port); read its logs \
and its backend's",
            rule: program::accepted_then_reset,
        },
        AcceptedThenClosed = "accepted_then_closed", Error {
            evidence: "the connection closed without a byte before the client spoke (the window watched after \
                the connect)",
            says: "the program hangs up on every client; `nc -z` would call it open",
            advice: "as above",
            rule: program::accepted_then_closed,
        },
        ServiceRefuses = "service_refuses", Error {
            evidence: "the greeting is a refusal: a MySQL error packet (1130 \"Host … is not \
allowed to connect\", 1040 …) or a 4xx/5xx coded greeting (SMTP 421, 554)",
            says: "the network is fine; the service turns this client away",
            advice: "for 1130: create/grant the user for this client's address; else read the \
server's logs",
            rule: program::service_refuses,
        },
        PgNoHbaEntry = "pg_no_hba_entry", Error {
            evidence: "PostgreSQL answered the startup (user `canreach`, or the URL's user and \
database; no password) with SQLSTATE 28000 `no pg_hba.conf entry for host \"…\"`",
            says: "the server's message, quoted; the host it saw, and when that is not this \
machine's address, that a NAT or a proxy in between changes it",
            advice: "the pg_hba.conf line to add on the server (`host DB USER ADDRESS/32 \
scram-sha-256`), then `SELECT pg_reload_conf();`",
            rule: service::pg_no_hba_entry,
        },
        MysqlHostNotAllowed = "mysql_host_not_allowed", Error {
            evidence: "MySQL/MariaDB sent ERR 1130 instead of its greeting",
            says: "no account matches the host the server saw; its message quoted",
            advice: "create the application's account for this address (`CREATE USER \
'app'@'ADDRESS'`, `GRANT`)",
            rule: service::mysql_host_not_allowed,
        },
        MysqlHostBlocked = "mysql_host_blocked", Error {
            evidence: "MySQL/MariaDB sent ERR 1129 (host blocked after `max_connect_errors` \
broken connections)",
            says: "the host stays blocked until the host cache is flushed",
            advice: "`mysqladmin flush-hosts` on the server; find what breaks handshakes",
            rule: service::mysql_host_blocked,
        },
        RedisProtectedMode = "redis_protected_mode", Error {
            evidence: "Redis wrote `-DENIED …` on accept (protected mode: no password, a \
client not on its machine)",
            says: "Redis refuses every remote client until it has a password or protected \
mode is off",
            advice: "Redis's three fixes, shortened: `requirepass`, or `protected-mode no` \
on trusted networks, then a restart",
            rule: service::redis_protected_mode,
        },
        PgTlsRefused = "pg_tls_refused", Error {
            evidence: "PostgreSQL answered `N` to SSLRequest and the URL says \
`sslmode=require` (or `verify-ca`/`verify-full`)",
            says: "the server does not speak TLS; libpq refuses to go on",
            advice: "`ssl = on` with a certificate in postgresql.conf",
            rule: service::pg_tls_refused,
        },
        DatabaseMissing = "database_missing", Error {
            evidence: "PostgreSQL answered SQLSTATE 3D000 for the database the URL names",
            says: "that database does not exist on the server",
            advice: "check the name (`psql -l`), or `createdb`",
            rule: service::database_missing,
        },
        TooManyClients = "too_many_clients", Error {
            evidence: "PostgreSQL SQLSTATE 53300, Redis `-ERR max number of clients reached`, \
MySQL/MariaDB ERR 1040",
            says: "every connection slot of the service is taken: no one gets in",
            advice: "see who holds the connections; raise `max_connections`/`maxclients`, \
or pool",
            rule: service::too_many_clients,
        },
        ServiceStarting = "service_starting", Error {
            evidence: "PostgreSQL SQLSTATE 57P03 (starting up, shutting down, in recovery), \
Redis `-LOADING`",
            says: "the service serves no one yet; its message quoted",
            advice: "its status and log (`systemctl status postgresql`); wait for the load",
            rule: service::service_starting,
        },
        ServiceErrorReply = "service_error_reply", Error {
            evidence: "another error in the service's protocol: a PostgreSQL SQLSTATE, a \
Redis error (`-MASTERDOWN`, `-MISCONF` …), a MySQL/MariaDB ERR, AMQP Connection.Close, a \
`421`/`-ERR`/`* BYE` mail greeting",
            says: "the service's own words and code, bounded and escaped",
            advice: "the service's log on the server",
            rule: service::service_error_reply,
        },
        ServiceNotAnswering = "service_not_answering", Error {
            evidence: "the service's opening (URL scheme, `--protocol` or the port's usual \
service) got nothing back, a hang-up, a reset, or bytes of another protocol",
            says: "what came back instead, bounded and escaped",
            advice: "`ss -ltnp` on the server: is the service what listens there; its log",
            rule: service::service_not_answering,
        },
        ProxyAuthRequired = "proxy_auth_required", Error {
            evidence: "the proxy answered `CONNECT` (or a forwarded request) with 407",
            says: "the proxy (host:port, its variable) wants credentials; the schemes it accepts \
(`Proxy-Authenticate`); canreach never sends any; whether the proxy URL carries \
some (then only canreach may be refused)",
            advice: "give the application the proxy's credentials, or ask the proxy's \
administrators",
            rule: |cx| proxy::proxy_refused(cx, ProxyRefusal::AuthRequired),
        },
        ProxyForbidden = "proxy_forbidden", Error {
            evidence: "the proxy answered `CONNECT` with 403",
            says: "its policy refuses this destination (many allow CONNECT only to 443 or to \
listed domains)",
            advice: "ask the proxy's administrators; when the direct path is open, exempt the \
host in `no_proxy`",
            rule: |cx| proxy::proxy_refused(cx, ProxyRefusal::Forbidden),
        },
        ProxyUpstreamFailed = "proxy_upstream_failed", Error {
            evidence: "the proxy answered `CONNECT` with 502, 503 or 504",
            says: "the proxy works; its own way to the destination failed (name, destination \
down, a firewall beyond it)",
            advice: "the proxy's access log; `canreach HOST PORT` on the proxy's machine",
            rule: |cx| proxy::proxy_refused(cx, ProxyRefusal::UpstreamFailed),
        },
        ProxyConnectFailed = "proxy_connect_failed", Error {
            evidence: "the proxy answered `CONNECT` with another status, or not in HTTP (a TLS \
record: an HTTPS proxy; other bytes: not a proxy), or not at all",
            says: "what it did",
            advice: "check the proxy variable; the proxy's log",
            rule: |cx| proxy::proxy_refused(cx, ProxyRefusal::ConnectFailed),
        },
        NoReply = "no_reply", Error {
            evidence: "the TLS ClientHello or the HTTP request got nothing back, or the server \
began its TLS answer and stopped (and a reduced MSS did not help)",
            says: "nothing came back: the program is hung, overloaded, or speaks another \
protocol; or \"began its answer to the TLS ClientHello (N bytes, after T), then \
stopped: nothing more came in T\" — it hangs in the middle of its handshake; what \
the reduced-MSS connection did",
            advice: "`ss -ltnp` on the server; its logs",
            rule: program::no_reply,
        },
        TlsExpired = "tls_expired", Error {
            evidence: "rustls: a certificate of the chain expired",
            says: "which certificate, when it expired; a hint when this machine's clock is before \
that date (`timedatectl`)",
            advice: "see the chain (`openssl s_client -connect HOST:PORT -servername HOST \
-showcerts </dev/null`); renew the certificate on the server and reload",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsExpired),
        },
        TlsNotYetValid = "tls_not_yet_valid", Error {
            evidence: "rustls: not valid yet",
            says: "the valid-from date against this machine's clock",
            advice: "see the chain (`openssl s_client …`); check this machine's clock: \
`timedatectl`",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsNotYetValid),
        },
        TlsWrongName = "tls_wrong_name", Error {
            evidence: "rustls: the certificate does not name the host",
            says: "the names it is valid for",
            advice: "see the chain (`openssl s_client …`); connect with one of them, or issue one \
for this name and send it for this SNI",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsWrongName),
        },
        TlsSelfSigned = "tls_self_signed", Error {
            evidence: "a self-signed leaf",
            says: "the subject",
            advice: "see the chain (`openssl s_client …`); a certificate from a trusted CA, or \
trust this one here on purpose (`sudo cp CA.crt /usr/local/share/ca-certificates/ \
&& sudo update-ca-certificates`, or one client's `curl --cacert CA.crt`)",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsSelfSigned),
        },
        TlsUnknownIssuer = "tls_unknown_issuer", Error {
            evidence: "the chain ends at an untrusted issuer",
            says: "names the issuer; with a second opinion from webpki-roots: \"a public CA this \
machine does not trust\" (stale store or an intercepting proxy) vs a private CA",
            advice: "see the chain (`openssl s_client …`); `update-ca-certificates` (public CA), \
or trust the organisation's root (`sudo cp CA.crt \
/usr/local/share/ca-certificates/ && sudo update-ca-certificates`, or `curl \
--cacert CA.crt`)",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsUnknownIssuer),
        },
        TlsMissingIntermediate = "tls_missing_intermediate", Error {
            evidence: "the leaf's issuer was not sent, is not a local anchor or a public root \
(rule in `session::tls::chain_failure`)",
            says: "names the missing issuer (or a private CA that signed the leaf directly)",
            advice: "see the chain (`openssl s_client …`); configure the full chain \
(fullchain.pem) on the server",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsMissingIntermediate),
        },
        TlsClientCertRequired = "tls_client_cert_required", Error {
            evidence: "the server asked for a client certificate and refused without one (TLS \
1.3: the alert on the first read)",
            says: "the issuers it accepts",
            advice: "configure a client certificate from one of them",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsClientCertRequired),
        },
        TlsProtocolMismatch = "tls_protocol_mismatch", Error {
            evidence: "no common version, cipher suite, group or signature scheme: the server's \
alert (`protocol_version`, `handshake_failure`, `insufficient_security`, \
`illegal_parameter`) or what this client found missing",
            says: "what is missing, the alert by its standard name; this client speaks TLS \
1.2/1.3",
            advice: "enable TLS 1.2/1.3 with current parameters on the server",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsProtocolMismatch),
        },
        NotTls = "not_tls", Error {
            evidence: "the ClientHello was answered in something else",
            says: "the first line it sent, escaped (`HTTP/1.1 400 Bad Request`)",
            advice: "use the plain protocol, or the TLS port",
            rule: |cx| tls::tls_failure(cx, FindingId::NotTls),
        },
        TlsFailed = "tls_failed", Error {
            evidence: "another alert, or another handshake error (a malformed message, a broken \
protocol rule, a certificate problem without its own id, a socket error)",
            says: "canreach's own words from one table (`diagnosis/tls/errors.rs`): what the alert \
means, with its standard name as evidence (\"it does not know the name this client \
asked for (SNI) — alert unrecognized_name\"; an alert outside the registry by its \
number), and whose side must change; never the TLS library's text",
            advice: "the step for whoever fixes it: the server's TLS log or configuration, this \
client's certificate or settings",
            rule: |cx| tls::tls_failure(cx, FindingId::TlsFailed),
        },
        ExpectsTls = "expects_tls", Error {
            evidence: "a plain HTTP request was answered with a TLS record, or with a close or \
reset without a word (OpenSSL-based servers) — in both cases a second connection \
then tries a TLS handshake (this machine's trust store; any certificate counts as \
an answer); a hang-up counts only when that handshake is answered",
            says: "confirmed: \"a second connection completed a TLS handshake (TLS 1.3, \
certificate for …)\"; when the handshake got no TLS answer: the reply only looked \
like TLS",
            advice: "use https://HOST:PORT/PATH (confirmed); else who owns the port, its logs",
            rule: http::expects_tls,
        },
        NotHttp = "not_http", Error {
            evidence: "the HTTP request got something that is not HTTP, a close, a reset, a cut \
answer, or headers over 64 KiB",
            says: "what came back",
            advice: "who owns the port; its logs",
            rule: http::not_http,
        },
        HttpServerError = "http_server_error", Error {
            evidence: "HTTP 5xx (HEAD, then GET to read ≤ 512 bytes of the body)",
            says: "the status and `Server`/`Via`; Envoy's \"no healthy upstream\", and 502–504 \
from a known proxy (envoy, nginx, haproxy, traefik, …), mean the backend behind \
the proxy is down, not the proxy",
            advice: "read the backend's logs",
            rule: http::http_server_error,
        },
        HttpClientError = "http_client_error", Error {
            evidence: "HTTP 4xx for the URL's path, not listed by `--expect-status`",
            says: "by status: 401 \"it wants credentials (it accepts: Basic realm=…)\" — the \
service is up, canreach never sends credentials; 407 an HTTP proxy that wants \
credentials; 403 a rule refuses this client or path; 404/410 nothing at the path; \
429 rate limited; else it refuses this request. Without `--expect-status`: \"if \
this answer is what the check should expect, say so: --expect-status 404\"",
            advice: "give the application its credentials (401, 407); else check the path and \
what the client sends",
            rule: http::http_client_error,
        },
        HttpUnexpectedStatus = "http_unexpected_status", Error {
            evidence: "`--expect-status` given, and the answer's status (1xx–3xx) is not in it",
            says: "\"answered 200 OK for /, and --expect-status asks for 404\"",
            advice: "check the URL and the statuses expected",
            rule: http::http_unexpected_status,
        },
        SlowHandshake = "slow_handshake", Warning {
            evidence: "a TLS handshake that came through (completed, or its certificates \
arrived), but only after the wait before the reduced-MSS connection, `max(1 s, 16 \
× rtt)` (the connect's time standing for the round trip)",
            says: "\"answered the TLS ClientHello only after 1.30 s, while the connection itself \
took 0.3 ms: the program behind port P (or a TLS terminator in front of it) is \
slow or busy; the network carried the connection\"",
            advice: "see why the server is slow to answer: its load, workers, logs",
            rule: tls::slow_handshake,
        },
        TlsNotVerified = "tls_not_verified", Warning {
            evidence: "`--insecure`: the chain was verified for the record only",
            says: "\"Certificate verification was SKIPPED (--insecure): the connection is \
encrypted, but nothing proves the server is H's. Verified, it would have failed: \
the certificate is self-signed\" — or that it would have passed and the option is \
not needed",
            advice: "fix the certificate (or trust its CA with `--cacert FILE`) rather than skip \
verification",
            rule: tls::tls_not_verified,
        },
        HttpRedirect = "http_redirect", Info {
            evidence: "HTTP 3xx",
            says: "\"it redirects to https://host/next?token=*** (canreach does not follow \
redirects)\": the `Location`, made absolute against the target's URL, userinfo and \
token-like parameters masked; when the exporter's http module follows it: \"The probe follows \
it: what the next address answered is checked next.\"",
            advice: "—",
            rule: http::http_redirect,
        },
        ServiceBanner = "service_banner", Info {
            evidence: "the server spoke first: a greeting",
            says: "identified: SSH (software), SMTP, FTP, POP3, IMAP, MySQL/MariaDB (version), \
else its first bytes",
            advice: "—",
            rule: program::service_banner,
        },
        AdvertisedMemberUnreachable = "advertised_member_unreachable", Warning {
            evidence: "a MongoDB `hello` (`hosts`, `passives`, `arbiters`, `primary`, `me`) or \
a Kafka Metadata answer (its brokers) named members that, resolved with the system's \
resolver and connected to from here (at most 16, all at once, for up to 1 s within the \
deadline), do not resolve, have no usable port, or whose every address refused, was \
silent for the whole 1 s, was rejected or unreachable",
            says: "each such member as the server advertises it and what happened (\"does not \
resolve here\", \"refused\", \"silent\"; a loopback address is this machine itself); the \
first connect works, the application's next ones fail",
            advice: "MongoDB: make the replica set configuration's names (`rs.conf()`, \
`rs.reconfig()`) resolve and reach from clients, or `directConnection=true`; Kafka: \
`advertised.listeners` on the broker",
            rule: advertised::advertised_member_unreachable,
        },
        ServiceAnswered = "service_answered", Info {
            evidence: "the service answered its opening as itself (PostgreSQL `R`, Redis \
`+PONG`/`-NOAUTH`, MySQL/MariaDB greeting then 1045, AMQP Connection.Start …)",
            says: "which service, its version when it gave one, and the authentication it \
asks for (\"asks for a password (SCRAM-SHA-256)\"); canreach sends none",
            advice: "—",
            rule: service::service_answered,
        },
        AdvertisedMembers = "advertised_members", Info {
            evidence: "the same answer named members or brokers, checked from here as above",
            says: "the replica set's name and whether the member asked is the writable \
primary or a secondary (Kafka: the cluster id), every name advertised, how many resolve and \
answer from here, and how many gave no answer in too short a time to tell",
            advice: "—",
            rule: advertised::advertised_members,
        },
        ProxyApplies = "proxy_applies", Info {
            evidence: "a URL target and `https_proxy`/`http_proxy`/`all_proxy` (curl's rules: \
lower-case `http_proxy` only, `no_proxy` with suffixes, CIDR, `*`)",
            says: "which variable applies and the proxy (credentials masked), or which `no_proxy` \
entry exempts the host; whether the check followed the proxy (an `http://` proxy), \
or took the direct path (`--no-proxy`, a SOCKS or `https://` proxy); `no_proxy` \
entries with a port that curl ignores",
            advice: "`canreach PROXYHOST PORT` when the proxy was not followed",
            rule: proxy::proxy_applies,
        },
        DirectPath = "direct_path", Info {
            evidence: "the check followed a proxy, and the destination got a plain connect \
without it (≤ 1 s)",
            says: "\"without the proxy, the direct path to H:P is open / closed / filtered …\", \
or the name does not resolve here; never the verdict",
            advice: "—",
            rule: proxy::direct_path,
        },
        FirstSynDropped = "first_syn_dropped", Warning {
            evidence: "an address of this machine with a listener, silent 10 ms: the probe waited \
for the kernel's retransmitted SYN (`connect::this_machine::LOCAL_RETRANSMIT_WAIT`, 1.1 s; \
and the next ones, as the kernel times them, while the queue stays full or the listener \
dropped the last) and one was accepted (connected after ≥ 1 s); outcome `open`",
            says: "\"The first connection attempt to A got no answer; the kernel's retry was \
accepted, 1.01 s after the first. On this machine the kernel drops a connection \
attempt to a listener without a word when the listener's accept queue is full: P \
(pid N …) does not take connections as fast as they come (its queue when looked \
at: 89 waiting, room for 100). Each new client waits a second or more while it is \
this busy.\"",
            advice: "`ss -ltn 'sport = :PORT'`; more workers, a larger backlog (and \
`net.core.somaxconn`), or less load; rules out drop-rule hunts, the walk, other \
ports, other teams",
            rule: local::first_syn_dropped,
        },
        PartialReachability = "partial_reachability", Warning {
            evidence: "some addresses open, some not",
            says: "lists both; warns when the failing address is the one clients try first; names \
the `localhost` trap (`::1` refused, `127.0.0.1` open) and the IPv4-only server",
            advice: "listen on `::1`/`::` too, or dial 127.0.0.1; fix or remove the failing \
addresses (AAAA); `sudo ss -ltnp` on the server",
            rule: address::partial_reachability,
        },
        ConnectedToItself = "connected_to_itself", Error {
            evidence: "the connect completed with this side's address equal to the peer's \
(`getsockname() == getpeername()`, v4-mapped and plain forms alike): nothing \
listened on a port of this machine that lies in its range of source ports, and the \
kernel gave the connect that very port as its source (TCP's simultaneous open). \
Outcome `closed`; the session stage's own new connection refuses such a stream too",
            says: "\"the connection to 127.0.0.1 port 40000 went from port 40000 to port 40000 of \
the same address: the kernel connected canreach's socket to itself … No program \
answered: the port is closed.\"",
            advice: "`sysctl net.ipv4.ip_local_port_range net.ipv4.ip_local_reserved_ports`; give \
the server a port outside the range or reserve it; rules out reset/drop rule \
hunts, the walk, other ports, asking other teams",
            rule: address::connected_to_itself,
        },
        UdpProgramSilent = "udp_program_silent", Error {
            evidence: "UDP, an address of this machine: no reply and no ICMP error, and the socket \
table (`sock_diag`, UDP) shows a socket bound to the port (the address or any), with its owner",
            says: "\"dnsmasq (pid 12, user nobody) holds UDP port 53 on 0.0.0.0, but did not answer \
a DNS query (2 sent in 1.9 s)\" + whether its socket holds bytes unread (not reading: hung or \
busy) or read them and sent nothing back",
            advice: "`ps -o pid,stat,etime,wchan:32,args -p PID`; read the program's logs and \
configuration; rules out the walk and `ss`",
            rule: udp::udp_program_silent,
        },
        UdpPortClosed = "udp_port_closed", Error {
            evidence: "UDP: ICMP port-unreachable **from the target** (v4 3/3, v6 1/4), or \
`ECONNREFUSED` with no ICMP queued",
            says: "no program receives on the UDP port there (a host firewall's `reject` gives the \
same answer and cannot be told apart)",
            advice: "on the server: `sudo ss -lunp 'sport = :PORT'`; `sudo nft list ruleset | grep \
-n -w -e PORT -e reject`",
            rule: udp::udp_port_closed,
        },
        UdpRejected = "udp_rejected", Error {
            evidence: "UDP: ICMP port-unreachable from **another address**, or prohibited (from \
anyone)",
            says: "names who rejected the datagram: a device on the way (\"the server never saw \
it\"), the server's own firewall, or this machine's",
            advice: "ask the team that runs that device to allow UDP port P; on it: `sudo nft list \
ruleset | grep -n -w -e P -e reject`",
            rule: udp::udp_rejected,
        },
        UdpUnreachable = "udp_unreachable", Error {
            evidence: "UDP: ICMP host- or network-unreachable (an unprivileged UDP socket sees them \
only with `IP_RECVERR`)",
            says: "the named device could not deliver the datagram: host down, wrong address, or a \
firewall answering so",
            advice: "`ip route get ADDR`",
            rule: udp::udp_unreachable,
        },
        UdpNoAnswer = "udp_no_answer", Warning {
            evidence: "UDP: no reply and no ICMP error to the request, sent again at 1 s, 3 s, … \
until the deadline; the control datagram to port 65533 of the same host (sent after \
200 ms of silence); for this machine, its UDP socket table",
            says: "silence does not tell open from filtered (nmap's open|filtered): verdict \
`inconclusive`; + \"the host does answer closed ports (port 65533: port-unreachable)\" \
or \"sends no port-unreachables, so its silence says nothing\"; on this machine with no \
socket on the port, \"a firewall rule of this machine drops it\"; a service that never \
answers a stranger (syslog, WireGuard, RADIUS) is named",
            advice: "on the server: `sudo ss -lunp 'sport = :PORT'`, `sudo nft list ruleset | grep \
-n -w -e PORT -e drop`; `--payload HEX` for a port with no known request",
            rule: udp::udp_no_answer,
        },
        UdpAnswered = "udp_answered", Info {
            evidence: "UDP: a datagram came back from the port (a connected socket takes only the \
port's own), read by the service's recogniser",
            says: "\"The DNS service on A UDP port 53 answered a DNS query in 0.4 ms: NOERROR, 1 \
record(s)\"; NTP's stratum or kiss code; or \"answered, but not as DNS does\"",
            advice: "—",
            rule: udp::udp_answered,
        },
        PortClosed = "port_closed", Error {
            evidence: "TCP reset (no ICMP)",
            says: "the host is up; nothing listens on the port — or a firewall imitates that with \
`reject with tcp reset`",
            advice: "on the server: `sudo ss -ltnp 'sport = :PORT'`; if it listens on loopback \
only, listen on the address dialled (not shown for loopback targets); look for a \
reset rule: `sudo nft list ruleset | grep -n -w PORT`",
            rule: address::port_closed,
        },
        FirewallRejectOnHost = "firewall_reject_on_host", Error {
            evidence: "ICMP port-unreachable or prohibited **from the target**",
            says: "the server's own firewall rejected the port; not a stopped service",
            advice: "on the server: `sudo nft list ruleset | grep …`, `sudo iptables -S; sudo \
ip6tables -S`; allow the port",
            rule: address::firewall_reject_on_host,
        },
        FirewallRejectOnPath = "firewall_reject_on_path", Error {
            evidence: "the same ICMP **from another address**",
            says: "the named device on the way rejected it; the server was never asked",
            advice: "ask the team running that device, with this report; on that device: `sudo \
nft list ruleset | grep …`",
            rule: address::firewall_reject_on_path,
        },
        IcmpRateLimited = "icmp_rate_limited", Info {
            evidence: "a reject (as in the two rows above) that answered only the kernel's \
retransmitted SYN, ~1 s after the first, while the check waited for it (the host \
had answered on other ports, the port stayed silent through the second SYN's \
bound, and the walk could not vouch for the routers: `liveness.retransmit_wait_ms` \
set)",
            says: "the sender limits the ICMP errors it sends to one machine (a burst of ~6, then \
1 a second) and checks just before this one spent them: back-to-back checks meet \
silence where the reject belongs, which canreach waits out",
            advice: "— (the reject's own finding says what to do)",
            rule: address::icmp_rate_limited,
        },
        HostUnreachable = "host_unreachable", Error {
            evidence: "ICMP host/network-unreachable (or other ICMP)",
            says: "the named device could not deliver: host down, wrong address, or a firewall \
answering so; from this machine's own address: nothing answered its ARP/neighbour \
lookup on the local network",
            advice: "check the host is up and has that address; `traceroute -T -p PORT ADDR`; ask \
the device's owners",
            rule: address::host_unreachable,
        },
        NoRoute = "no_route", Error {
            evidence: "`ENETUNREACH`/`EHOSTUNREACH` at once, no ICMP",
            says: "this machine has no route (for IPv6: no IPv6 connectivity)",
            advice: "`ip route get ADDR`; connect the VPN / network",
            rule: address::no_route,
        },
        LocalError = "local_error", Error {
            evidence: "another errno at once; EADDRNOTAVAIL and EMFILE/ENFILE/ENOBUFS/ENOMEM \
make the verdict `inconclusive`; for EADDRNOTAVAIL, whether the kernel has an address to send \
from (a UDP socket connected to the target)",
            says: "this machine could not start the connection; for EADDRNOTAVAIL with an \
address to send from: \"it has no free local port to connect from … Every port of its range \
of source ports is in use by other connections. Nothing was sent\"; without one: \"it has no \
IPv6 (IPv4) address to connect from\"",
            advice: "check IPv4/IPv6 settings and file limits; for EADDRNOTAVAIL `sysctl \
net.ipv4.ip_local_port_range net.ipv4.ip_local_reserved_ports` and `ss -s`, or, with no \
address, `ip -6 addr show` (`ip -4 …`) and the other family",
            rule: address::local_error,
        },
        HostUpPortDropped = "host_up_port_dropped", Error {
            evidence: "port silent, another port of the host answered (reset/handshake/its own \
ICMP)",
            says: "\"the host is up (port 22 answered: closed in 0.4 ms) but port P gets no \
answer: a firewall drops it\"; with an early verdict, says the second SYN was \
unanswered for the bound",
            advice: "on the server: `sudo nft list ruleset | grep -n -w -e P -e drop`; `sudo ss \
-ltnp 'sport = :P'`",
            rule: silence::host_up_port_dropped,
        },
        HostDown = "host_down", Error {
            evidence: "a router reports the host unreachable (ICMP host/net-unreachable from \
another address) for a liveness port",
            says: "the host is down or not at that address",
            advice: "check it is on and has that address",
            rule: silence::host_down,
        },
        SilentDrop = "silent_drop", Error {
            evidence: "no answer before the deadline or the silence bound (for an address of this \
machine: no listener, or one whose queue had room at both looks with no drop \
counted, after the kernel's retried SYN)",
            says: "something drops packets silently: server firewall, one on the way, or this \
machine's OUTPUT chain; for an address of this machine: only a rule of its own \
firewall (nftables, iptables, the legacy backend canreach does not read, another \
filter)",
            advice: "`canreach HOST 22` (only if liveness learnt nothing); this machine's output \
chain (only if no hop answered the walk); `sudo traceroute -T -p PORT ADDR` and \
\"ask the firewall owners\" (only if the path was not walked); for this machine: \
`nft list ruleset | grep -n -w -e PORT -e drop` and `iptables -S; ip6tables -S` \
there, no walk, no other team",
            rule: address::silent_drop,
        },
        HostNotAnswering = "host_not_answering", Warning {
            evidence: "port silent, liveness ports silent too",
            says: "nothing about the host answers: down, or everything to it dropped",
            advice: "ask whoever runs it whether it is up and whether a firewall drops traffic \
from here",
            rule: silence::host_not_answering,
        },
        PathEndsAfter = "path_ends_after", Error {
            evidence: "path walk: a hop answered time-exceeded, nothing beyond it answered",
            says: "\"your connection reaches R (hop N) and goes no further: the block is at that \
device's firewall or after it — on the server or just before it\"",
            advice: "ask the team running R and the network team, and the server's firewall \
owner, with this report; on R: `sudo nft list ruleset | grep …`",
            rule: silence::path_ends_after,
        },
        PathNoAnswer = "path_no_answer", Warning {
            evidence: "path walk: not even hop 1 answered",
            says: "this machine's OUTPUT firewall or the first router drops the packets (or \
routers send no time-exceeded)",
            advice: "check this machine's output chain",
            rule: silence::path_no_answer,
        },
        NothingListensHere = "nothing_listens_here", Error {
            evidence: "local target; the socket table has no listener on the port",
            says: "nothing on this machine listens on the port",
            advice: "start the program (only when no usual server is known; otherwise the next \
findings say how); rules out `ss -ltnp` and the hunt for a reset rule (with no \
program there, a rule forging a reset changes nothing)",
            rule: local::nothing_listens_here,
        },
        UsualServerElsewhere = "usual_server_elsewhere", Warning {
            evidence: "nothing on the port, but an instance of the port's usual server (table in \
`src/local/servers.rs`: PostgreSQL, MySQL/MariaDB, Redis, MongoDB, sshd, nginx, \
Apache, Caddy, RabbitMQ, memcached, dev servers) runs — one finding per instance: \
its worker processes (children of a process of the same server) are counted, not \
reported apart",
            says: "\"Redis is running (redis-server pid N: cmdline) and listens on 127.0.0.1:6380 \
— not on port 6379\"; \"PostgreSQL is running (postgres pid N and 5 worker \
processes: …)\"; without root: where it listens cannot be seen without root (as \
root, whose descriptors could not be read: could not be read)",
            advice: "point the client at that port or change the server's; `sudo ss -ltnp | grep \
-w 'pid=N'` without root; `systemctl status UNIT`",
            rule: local::usual_server_elsewhere,
        },
        UsualServerNotRunning = "usual_server_not_running", Warning {
            evidence: "nothing on the port, the usual server (with a systemd unit) is not running",
            says: "\"PostgreSQL, which usually serves port 5432, is not running\"",
            advice: "`systemctl status UNIT`, `sudo systemctl start UNIT`, `journalctl -u UNIT -n \
50`; on a machine without systemd (no /run/systemd/system: a container) `service \
UNIT status`, `sudo service UNIT start`, and no journal",
            rule: local::usual_server_not_running,
        },
        ListensOnLoopbackOnly = "listens_on_loopback_only", Error {
            evidence: "a local, non-loopback address was dialled; every listener on the port is \
on 127.0.0.1/::1",
            says: "only programs on this machine can reach it",
            advice: "set the server's listen setting (quoted from the table for the owner's \
process, else the port's usual server) and restart; or dial the loopback address",
            rule: local::listens_on_loopback_only,
        },
        ListensOnOtherFamily = "listens_on_other_family", Error {
            evidence: "the dialled address's family has no listener (e.g. ::1 dialled, 127.0.0.1 \
listens); `::` counts as both (Linux `bindv6only=0`)",
            says: "clients that get that address first (`localhost` → ::1) fail",
            advice: "as above",
            rule: local::listens_on_other_family,
        },
        BoundToOtherAddress = "bound_to_other_address", Error {
            evidence: "listeners exist, on another specific address of this machine",
            says: "it is bound to another interface's address",
            advice: "as above",
            rule: local::bound_to_other_address,
        },
        ContainerProxy = "container_proxy", Info {
            evidence: "the port's owner is a container runtime's proxy (docker-proxy, \
rootlessport, rootlesskit, slirp4netns, pasta, conmon, containerd-shim)",
            says: "the real server runs in a container",
            advice: "`docker ps --filter publish=PORT`; inside, listen on 0.0.0.0; `-p \
127.0.0.1:…` publishes to this machine only",
            rule: local::container_proxy,
        },
        OwnerNameMismatch = "owner_name_mismatch", Warning {
            evidence: "a listener's process calls itself a known server (its `comm` or `argv[0]` \
is a process name of `local/servers.rs`) but `/proc/PID/exe` names another \
executable (not the same name, not the name with a version after it, not another \
name of the same server; ` (deleted)` ignored)",
            says: "\"calls itself postgres (the name of PostgreSQL) but runs /tmp/x/evil (pid, \
user, named … by the system)\"; every named owner is shown with its executable",
            advice: "`ps -o pid,stat,etime,wchan:32,args -p PID`",
            rule: local::owner_name_mismatch,
        },
        OwnerHidden = "owner_hidden", Info {
            evidence: "not root, and a listener's process could not be seen; or, as root, the \
owner search ran out of its time budget (many processes)",
            says: "\"A process of user U listens on …, but which program cannot be seen without \
root\"",
            advice: "`sudo canreach …`",
            rule: local::owner_hidden,
        },
        FirewallNotInspected = "firewall_not_inspected", Info {
            evidence: "`nft` could not be read (not root, not installed)",
            says: "says why",
            advice: "`sudo canreach …`",
            rule: local::firewall_not_inspected,
        },
        AddressesDisagree = "addresses_disagree", Warning {
            evidence: "no address open, outcomes differ",
            says: "the verdict follows the first address; names the others' outcomes",
            advice: "fix them in the order clients try them",
            rule: address::addresses_disagree,
        },
        DnsNxdomain = "dns_nxdomain", Error {
            evidence: "NXDOMAIN (from the servers, else `EAI_NONAME`)",
            says: "the name does not exist; which server said so",
            advice: "spelling; VPN / company resolver for internal names; `dig @SERVER NAME`; \
`getent ahosts NAME`",
            rule: |cx| dns::failure(cx, DnsErrorKind::Nxdomain),
        },
        DnsNodata = "dns_nodata", Error {
            evidence: "NOERROR with no A/AAAA (`EAI_NODATA`)",
            says: "the name exists without an address (named as NAME.domain when the search list \
made that the name that matters: \"The name app.lab (app with the search domain) \
…\"); which records it does have (on NODATA each server is also asked for MX, TXT, \
NS and CAA, at once: \"It has TXT records only.\")",
            advice: "`dig NAME ANY +noall +answer`; ask for an A/AAAA record",
            rule: |cx| dns::failure(cx, DnsErrorKind::Nodata),
        },
        DnsServfail = "dns_servfail", Error {
            evidence: "SERVFAIL",
            says: "the server's upstreams are broken or unreachable, or DNSSEC failed",
            advice: "`dig @SERVER NAME`; `dig +cd NAME` (DNSSEC); retry; tell the DNS owner",
            rule: |cx| dns::failure(cx, DnsErrorKind::Servfail),
        },
        DnsRefused = "dns_refused", Error {
            evidence: "REFUSED",
            says: "this server does not serve this client or name",
            advice: "`cat /etc/resolv.conf`; use a server that serves you",
            rule: |cx| dns::failure(cx, DnsErrorKind::Refused),
        },
        DnsTimeout = "dns_timeout", Error {
            evidence: "no answer in time: no server answered within its budget (`min(timeout, \
half the time left)`, one try per server), or the system lookup ran out of time",
            says: "\"Name servers: S → no answer (port 53: TCP closed (TCP reset after 0.2 ms), \
UDP refused)\" — a silent server's port 53 is probed over TCP and UDP (100 ms) to \
tell down/unreachable/not-a-name-server; when the first server is silent and \
another answered: \"The first name server, S, does not answer for NAME (nothing in \
2.50 s): applications ask it first and wait resolv.conf's timeout (5 s) for it \
before they ask the next\", with what the others said",
            advice: "`cat /etc/resolv.conf`; `dig @SERVER NAME`; fix resolv.conf or what writes \
it",
            rule: |cx| dns::failure(cx, DnsErrorKind::Timeout),
        },
        DnsNoNameservers = "dns_no_nameservers", Error {
            evidence: "resolv.conf has no `nameserver`",
            says: "no name server configured",
            advice: "fix resolv.conf / network settings",
            rule: |cx| dns::failure(cx, DnsErrorKind::NoNameservers),
        },
        DnsFailed = "dns_failed", Error {
            evidence: "any other failure",
            says: "the resolver's own words",
            advice: "`getent ahosts NAME`",
            rule: |cx| dns::failure(cx, DnsErrorKind::Other),
        },
        Ipv6OnlyName = "ipv6_only_name", Error {
            evidence: "the name has only IPv6 addresses and the first gets \"no route\" here",
            says: "the name cannot be reached from this IPv4-only machine",
            advice: "ask for an A record or give this machine IPv6; `dig NAME A; dig NAME AAAA`",
            rule: dns::ipv6_only_name,
        },
        NameOnlyInHosts = "name_only_in_hosts", Warning {
            evidence: "the name is in /etc/hosts, DNS says NXDOMAIN",
            says: "only this machine can use the name",
            advice: "add it to DNS, or remove the left-over line",
            rule: dns::name_only_in_hosts,
        },
        HostsOverride = "hosts_override", Warning {
            evidence: "an /etc/hosts line gives the name an address the name servers do not",
            says: "\"/etc/hosts line N pins NAME to X (`line`), but DNS says Y\": the address \
probed is the one applications use",
            advice: "`sudo sed -n 'Np' /etc/hosts` (then fix or remove it); `getent ahosts NAME; \
dig +short NAME`",
            rule: dns::hosts_override,
        },
        SystemDiffersFromDns = "system_differs_from_dns", Warning {
            evidence: "no hosts line, yet the system's addresses are not DNS's",
            says: "nsswitch, mDNS or a cache answers instead of DNS",
            advice: "`grep '^hosts:' /etc/nsswitch.conf`",
            rule: dns::system_differs_from_dns,
        },
        ServersDisagree = "servers_disagree", Warning {
            evidence: "two configured servers gave different answers (address sets, NXDOMAIN, \
NODATA; failures are not opinions)",
            says: "\"S1 says …; S2 says NXDOMAIN\": split horizon or a stale secondary",
            advice: "`dig @SERVER NAME` for each",
            rule: dns::servers_disagree,
        },
        ExtraNameserversIgnored = "extra_nameservers_ignored", Info {
            evidence: "the resolv.conf facts list more than 3 name servers (glibc's `MAXNS`); \
only the first 3 are asked",
            says: "\"/etc/resolv.conf lists 4 name servers, but the system resolver (glibc) uses \
only the first 3: S4 is never asked, by applications or by this check\"",
            advice: "`cat /etc/resolv.conf`; keep at most 3, the ones that matter first",
            rule: dns::extra_nameservers_ignored,
        },
        SearchDomainUsed = "search_domain_used", Info {
            evidence: "a server's addresses came for NAME + a search domain",
            says: "\"app resolved only as app.lab\"; machines with other search domains will not \
find it",
            advice: "use the full name",
            rule: dns::search_domain_used,
        },
        NdotsSearchFirst = "ndots_search_first", Info {
            evidence: "the name resolved as given, has fewer dots than `ndots`, and a search list \
exists",
            says: "the resolver first tried NAME.s1, NAME.s2, … (a round trip each)",
            advice: "write `NAME.`, or lower `options ndots`",
            rule: dns::ndots_search_first,
        },
        }
    };
}

pub(crate) use catalog;
