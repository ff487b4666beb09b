//! mxprobe's integration tests: one binary, one module per topic.

// Shared helpers: the test certificate authority.
mod support;

// The shared vectors (RFC text and peers' test suites) run through the public parsers.
mod vectors;
// Real TLS-RPT reports read back; reports we write checked against RFC 8460 §4.4.
mod reports;
// Certificate and DANE matrix built with rcgen.
mod certs;
// The policy-fetch scenarios judged from recorded facts.
mod fetch;
// The per-domain evaluation on hand-built facts: DANE before MTA-STS, session verdicts.
mod evaluate;
// The `mxprobe` binary: flags, output shapes, exit codes.
mod cli;
// docs/findings.md lists every finding code.
mod docs;
// The SMTP STARTTLS probe against the lab's SMTP servers.
mod smtp;
// STARTTLS answered 220 and then no TLS: garbage classified the same every time, closes.
mod tls_refusal;
// The DNS adapter against the lab's authoritative DNS (DNSSEC included).
mod dns;
// The policy fetcher against the lab's HTTPS servers.
mod fetch_net;
// Real software: Debian's postfix and nginx, started by the test on loopback.
mod real_mta;
// Real software: Debian's unbound validating zones signed by ldns-signzone, on loopback.
mod real_dns;
// Every lab scenario domain scanned end to end; the expectations come from the scenario file.
mod lab_scan;
// Scans and the demo through the lab's broken resolvers: the resolver is blamed, not the domain.
mod resolver;
// `mxprobe scan` and `demo` as a user runs them; the synthetic report files read back.
mod scan_cli;
// The demo's HTML report opened in headless Chromium: rows, statuses, no request, no error.
mod html_report;
// Reading scan targets from CSV files and lists.
mod input;
// Hostile input to the binary: pipes and FIFOs, no domain, output = input, signals, caps.
mod hostile_input;
// Bulk scans: shared probes, per-IP politeness, concurrency, interruption.
mod bulk;
// Distributed scans through a real redis-server: workers killed, Redis restarted, secrets.
mod distributed;
// `mxprobe gate`: exit statuses, candidate changes, port 25, JUnit and GitHub, docs/ci.md.
mod gate;
// Changing a running lab between two scans (certificates, policies).
mod lab_changes;
// The Prometheus textfile and the systemd and cron examples in fixtures/monitoring/.
mod metrics;
// `mxprobe monitor` and `history`: alerts on change, delivered once, never lost.
mod monitor;
// Ten unchanged monitor runs over the lab: no alert after the first (stable verdicts).
mod monitor_stable;
// `mxprobe reports`: ingest real TLS-RPT reports, summarise them, compare with findings.
mod reports_cli;
// Hostile and hung alert channels: an endless relay reply, an echoing webhook, hung channels.
mod delivery_faults;
// `mxprobe reports` on large and odd input: memory-limited ingest and summary, a gzip bomb,
// a byte order mark, totals past u64::MAX.
mod reports_faults;
// The binary's edges: --since outside the calendar, a reader that goes away, --db not a file.
mod cli_faults;
// `mxprobe lab` kept running: its exports evaluated in a shell, the README's "try it" as
// written, SIGTERM, no temporary files left.
mod lab_cli;
// `mxprobe serve`: the Prometheus exporter scraped over HTTP, and by a real Prometheus.
mod serve;
