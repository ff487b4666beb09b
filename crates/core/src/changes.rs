//! Change detection for scheduled monitoring: what differs between a domain's previous runs
//! and this one, as [`Change`]s to alert on once, never on unchanged results.
//!
//! [`detect`] compares the current [`DomainResult`] with the stored ones ([`Past`]) and reports
//! new and resolved failures, certificates crossing an expiry threshold (the leaf and the
//! intermediates of the path that actually verifies, never extra certificates the server
//! happens to send), new leaf certificates, MTA-STS policy, MX set, TLS-RPT and DANE changes,
//! a domain that stays inconclusive, and reminders of failures still open.
//!
//! The rule that shapes it: **what could not be observed is unknown, not changed.** A place
//! (a finding's domain, MX host or address; a session's certificate; a DNS answer) is compared
//! only where the current run observed it, against the newest stored run that observed it
//! too; a probe that timed out neither resolves a failure nor changes a certificate. Pure: no
//! I/O, no clock (the time is [`ChangeOptions::now`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::alert::{Change, ChangeKind, DomainStatus};
use crate::dns::Lookup;
use crate::domain::DomainName;
use crate::evaluate::policy_fetch::is_could_not_tell;
use crate::evaluate::verdict::SessionResult;
use crate::finding::{Code, Finding, Location, Severity, Subject, TLSRPT_PREFIX};
use crate::result::DomainResult;
use crate::tls::cert::hex_upper;
use crate::tls::describe;
use crate::tlsrpt::PolicyType;

/// The default warning thresholds for certificate expiry, in days.
pub const DEFAULT_EXPIRY_WARN: [u32; 2] = [21, 7];

/// The default number of inconclusive runs in a row after which the domain is alerted on.
pub const DEFAULT_INCONCLUSIVE_AFTER: u32 = 3;

/// Findings about a domain as a whole that are drawn from every session: a session that
/// could not be tested can make them disappear without anything being fixed.
const SESSION_AGGREGATES: &[Code] = &[Code::StsEnforceNoDeliverableMx];

/// How to detect changes.
#[derive(Debug, Clone)]
pub struct ChangeOptions {
    /// The time of this run: certificate days left and reminder intervals count from it.
    pub now: OffsetDateTime,
    /// Warning thresholds in days for certificate expiry, e.g. [21, 7] (the default,
    /// [`DEFAULT_EXPIRY_WARN`]). Crossing the smallest is an error, the others warnings.
    pub expiry_warn_days: Vec<u32>,
    /// Repeat still-open failures when the last alert is at least this old (`None`: never).
    pub remind_every: Option<Duration>,
    /// Alert when the domain has been inconclusive this many runs in a row (0: never).
    pub inconclusive_after: u32,
}

impl ChangeOptions {
    /// The defaults at `now`: thresholds [`DEFAULT_EXPIRY_WARN`], no reminders, inconclusive
    /// after [`DEFAULT_INCONCLUSIVE_AFTER`] runs.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            now,
            expiry_warn_days: DEFAULT_EXPIRY_WARN.to_vec(),
            remind_every: None,
            inconclusive_after: DEFAULT_INCONCLUSIVE_AFTER,
        }
    }
}

/// What is known of a domain's earlier runs.
#[derive(Debug, Clone, Default)]
pub struct Past {
    /// The previous run's snapshot; `None` on the first run, when every failing finding is
    /// new (nobody has been told yet) and nothing else can have changed.
    pub previous: Option<DomainResult>,
    /// Older runs, newest first, consulted only for what the previous run could not observe
    /// (an address that timed out, a DNS lookup that failed). A few runs suffice; with none,
    /// such places are compared again once two runs in a row have observed them.
    pub earlier: Vec<DomainResult>,
    /// How many stored runs in a row before this one were inconclusive.
    pub inconclusive_streak: u32,
    /// When the domain was last alerted on, if ever.
    pub last_alert_at: Option<OffsetDateTime>,
}

impl Past {
    /// The stored runs, newest first (none on the first run).
    fn runs(&self) -> impl Iterator<Item = &DomainResult> {
        let earlier: &[DomainResult] = if self.previous.is_some() {
            &self.earlier
        } else {
            &[]
        };
        self.previous.iter().chain(earlier)
    }
}

/// Every change between the stored runs and `current`, in the order: failures, certificates,
/// policy and DNS, inconclusive, reminder. Empty when nothing changed.
pub fn detect(past: &Past, current: &DomainResult, opts: &ChangeOptions) -> Vec<Change> {
    let mut changes = failures(past, current);
    changes.extend(expiring(past, current, opts));
    changes.extend(certificates_changed(past, current));
    changes.extend(policy_changed(past, current));
    changes.extend(mx_changed(past, current));
    changes.extend(rua_changed(past, current));
    changes.extend(dane_changed(past, current));
    changes.extend(inconclusive(past, current, opts));
    if changes.is_empty() {
        changes.extend(reminder(past, current, opts));
    }
    changes
}

// ---------------------------------------------------------------------------------------
// Failures.

/// The identity of a failing finding at one place: never its message, which may carry
/// dates or counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    code: String,
    mx: Option<DomainName>,
    ip: Option<IpAddr>,
    location: Option<Location>,
}

/// The places a finding is at: one key, or one per address of a merged finding (one problem
/// seen at every address of an MX host).
fn keys(f: &Finding) -> Vec<Key> {
    let key = |ip: Option<IpAddr>, location: Option<Location>| Key {
        code: f.code.to_string(),
        mx: f.subject.mx.clone(),
        ip,
        location,
    };
    match f.subject.addresses() {
        Some(ips) => ips.iter().map(|&ip| key(Some(ip), None)).collect(),
        None => vec![key(f.subject.ip, f.subject.location.clone())],
    }
}

fn failing(s: &DomainResult) -> impl Iterator<Item = &Finding> {
    s.verdict
        .findings
        .iter()
        .filter(|f| f.fails(Severity::Error))
}

fn failing_keys(s: &DomainResult) -> HashSet<Key> {
    failing(s).flat_map(keys).collect()
}

/// Whether the could-not-test finding `g` means that `key`'s place was not observed.
fn covers(g: &Finding, key: &Key) -> bool {
    if key.mx.is_none() && SESSION_AGGREGATES.iter().any(|c| key.code == c.text()) {
        return true;
    }
    let Some(g_mx) = &g.subject.mx else {
        // A failed TLS-RPT lookup hides only TLS-RPT findings; any other failed domain-wide
        // lookup (MX, _mta-sts, the policy) changes how every session is judged.
        return if g.is(Code::DnsTlsRptTxtFailed) {
            key.code.starts_with(TLSRPT_PREFIX)
        } else {
            true
        };
    };
    if key.mx.as_ref() != Some(g_mx) {
        return false;
    }
    match (g.subject.ip, g.subject.addresses()) {
        (Some(ip), _) => key.ip == Some(ip),
        (None, Some(ips)) => key.ip.is_some_and(|ip| ips.contains(&ip)),
        (None, None) => true,
    }
}

/// Whether `s` observed the place of `key`: nothing there was "could not test", and a
/// session place was probed to a conclusion or is definitely gone.
fn observes(s: &DomainResult, key: &Key) -> bool {
    if s.verdict
        .findings
        .iter()
        .any(|g| g.inconclusive && covers(g, key))
    {
        return false;
    }
    let Some(mx) = &key.mx else { return true };
    if !s.facts.mx.is_definite() {
        return false;
    }
    let Some(ip) = key.ip else { return true };
    match s
        .verdict
        .sessions
        .iter()
        .find(|v| &v.mx == mx && v.ip == ip)
    {
        Some(v) => !matches!(v.result, SessionResult::Inconclusive { .. }),
        None => address_gone(s, mx, ip),
    }
}

/// Whether `ip` is definitely no longer an address of MX `mx` (the host left the MX set, or
/// its address lookups answered without it).
fn address_gone(s: &DomainResult, mx: &DomainName, ip: IpAddr) -> bool {
    let Some(host) = s.facts.hosts.iter().find(|h| h.name.as_ref() == Some(mx)) else {
        return true;
    };
    host.addresses.as_ref().is_some_and(|a| {
        [&a.a, &a.aaaa]
            .into_iter()
            .flatten()
            .all(Lookup::is_definite)
            && !a.addresses().contains(&ip)
    })
}

/// `subject` narrowed to `ips` (a subset of its addresses).
fn narrowed(subject: &Subject, ips: &[IpAddr]) -> Subject {
    if subject.addresses().is_none() {
        return subject.clone();
    }
    at_ips(subject.clone(), ips)
}

/// `subject` at one address, or at several.
fn at_ips(subject: Subject, ips: &[IpAddr]) -> Subject {
    match ips {
        [ip] => Subject {
            location: None,
            ..subject
        }
        .with_ip(*ip),
        _ => subject.at_addresses(ips.to_vec()),
    }
}

/// The subject for the keys of `f` in `chosen`, or `None` when none is.
fn subject_for(f: &Finding, chosen: &[Key]) -> Option<Subject> {
    let all = keys(f);
    let picked: Vec<&Key> = all.iter().filter(|k| chosen.contains(k)).collect();
    if picked.is_empty() {
        return None;
    }
    if picked.len() == all.len() {
        return Some(f.subject.clone());
    }
    let ips: Vec<IpAddr> = picked.iter().filter_map(|k| k.ip).collect();
    Some(narrowed(&f.subject, &ips))
}

fn failures(past: &Past, current: &DomainResult) -> Vec<Change> {
    let mut out = Vec::new();
    let first_run = past.previous.is_none();
    let stored: Vec<(&DomainResult, HashSet<Key>)> =
        past.runs().map(|s| (s, failing_keys(s))).collect();
    let baseline = |key: &Key| stored.iter().find(|(s, _)| observes(s, key));

    for f in failing(current) {
        let new: Vec<Key> = keys(f)
            .into_iter()
            .filter(|k| first_run || baseline(k).is_some_and(|(_, failed)| !failed.contains(k)))
            .collect();
        if let Some(subject) = subject_for(f, &new) {
            out.push(Change {
                kind: ChangeKind::NewFailure,
                severity: f.severity,
                subject,
                message: format!("{}: {}", f.code, f.message),
                fix: f.fix.clone(),
            });
        }
    }

    let now_failing = failing_keys(current);
    let mut reported: HashSet<Key> = HashSet::new();
    for (s, _) in &stored {
        for f in failing(s) {
            let resolved: Vec<Key> = keys(f)
                .into_iter()
                .filter(|k| {
                    !now_failing.contains(k)
                        && observes(current, k)
                        && baseline(k).is_some_and(|(b, _)| std::ptr::eq(*b, *s))
                        && reported.insert(k.clone())
                })
                .collect();
            if let Some(subject) = subject_for(f, &resolved) {
                out.push(Change {
                    kind: ChangeKind::FailureResolved,
                    severity: Severity::Notice,
                    subject,
                    message: format!("{} no longer fails (it was: {})", f.code, f.message),
                    fix: None,
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Certificates.

/// One TLS session's presented chain.
struct Presented<'s> {
    mx: &'s DomainName,
    ip: IpAddr,
    chain: &'s [CertificateDer<'static>],
    /// The certificates of the chain that verified when the session was judged (indices,
    /// leaf first); `None` for a stored run or without a verified path.
    verified: Option<&'s [usize]>,
}

fn presented(s: &DomainResult) -> impl Iterator<Item = Presented<'_>> {
    s.facts
        .hosts
        .iter()
        .flat_map(|h| &h.sessions)
        .filter_map(|session| {
            let chain = &session.tls.as_ref()?.chain;
            let ip = session.address.ip();
            let verified = s
                .verdict
                .sessions
                .iter()
                .find(|v| v.mx == session.mx && v.ip == ip)
                .and_then(|v| v.verified_path.as_deref());
            (!chain.is_empty()).then_some(Presented {
                mx: &session.mx,
                ip,
                chain,
                verified,
            })
        })
}

/// SHA-256 of a certificate (DER), upper-case hex.
fn fingerprint(der: &[u8]) -> String {
    hex_upper(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// The first 16 hex digits of a fingerprint, for people.
fn short(fingerprint: &str) -> String {
    format!("{}…", &fingerprint[..16.min(fingerprint.len())])
}

fn date(t: OffsetDateTime) -> String {
    t.date().to_string()
}

fn ip_list(ips: &BTreeSet<IpAddr>) -> String {
    let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
    list.join(", ")
}

/// A subject naming the MX host and its addresses.
fn mx_subject(domain: &DomainName, mx: &DomainName, ips: &BTreeSet<IpAddr>) -> Subject {
    let ips: Vec<IpAddr> = ips.iter().copied().collect();
    at_ips(Subject::domain(domain).with_mx(mx), &ips)
}

/// A certificate of a verified chain, and where it was presented.
struct Expiring {
    leaf: bool,
    subject: String,
    not_after: OffsetDateTime,
    ips: BTreeSet<IpAddr>,
}

fn expiring(past: &Past, current: &DomainResult, opts: &ChangeOptions) -> Vec<Change> {
    let mut thresholds = opts.expiry_warn_days.clone();
    thresholds.sort_unstable();
    thresholds.dedup();
    let Some(&smallest) = thresholds.first() else {
        return Vec::new();
    };
    // (MX, fingerprint) → the certificate; BTreeMap for a stable order.
    let mut certs: BTreeMap<(&DomainName, String), Expiring> = BTreeMap::new();
    for p in presented(current) {
        // Without a verified path (a DANE-EE key, an untrusted chain) only the leaf counts.
        for &i in p.verified.unwrap_or(&[0]) {
            let Ok(summary) = describe(p.chain[i].as_ref()) else {
                continue;
            };
            certs
                .entry((p.mx, summary.sha256))
                .or_insert_with(|| Expiring {
                    leaf: i == 0,
                    subject: summary.subject,
                    not_after: summary.not_after,
                    ips: BTreeSet::new(),
                })
                .ips
                .insert(p.ip);
        }
    }
    let mut out = Vec::new();
    for ((mx, fp), cert) in certs {
        let left = cert.not_after - opts.now;
        if left <= Duration::ZERO {
            // Expired: the failing finding says so.
            continue;
        }
        // Days left when the newest stored run that saw this certificate at this MX saw it.
        let before = past
            .runs()
            .find(|s| {
                presented(s)
                    .any(|p| p.mx == mx && p.chain.iter().any(|c| fingerprint(c.as_ref()) == fp))
            })
            .map(|s| cert.not_after - s.facts.observed_at);
        let crossed = thresholds.iter().copied().find(|&t| {
            let t = Duration::days(i64::from(t));
            left <= t && before.is_none_or(|b| b > t)
        });
        let Some(threshold) = crossed else { continue };
        let which = if cert.leaf {
            format!("the server certificate ({})", cert.subject)
        } else {
            format!(
                "the intermediate certificate ({}) of the verified chain",
                cert.subject
            )
        };
        out.push(Change {
            kind: ChangeKind::CertificateExpiring,
            severity: if threshold == smallest {
                Severity::Error
            } else {
                Severity::Warning
            },
            subject: mx_subject(&current.facts.domain, mx, &cert.ips),
            message: format!(
                "{which} presented by MX {mx} at {} expires on {} (in {} days, within the \
                 {threshold}-day warning); SHA-256 {}",
                ip_list(&cert.ips),
                date(cert.not_after),
                left.whole_days(),
                short(&fp),
            ),
            fix: Some(if cert.leaf {
                format!("renew the certificate of {mx} (and automate renewal)")
            } else {
                format!(
                    "install the issuing CA's current intermediate certificate on {mx} (renewing \
                     the server certificate usually brings it)"
                )
            }),
        });
    }
    out
}

fn certificates_changed(past: &Past, current: &DomainResult) -> Vec<Change> {
    // (MX, old fingerprint, new fingerprint) → (old not_after, new not_after, addresses).
    type Seen = (
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
        BTreeSet<IpAddr>,
    );
    let mut changed: BTreeMap<(&DomainName, String, String), Seen> = BTreeMap::new();
    for p in presented(current) {
        let now = fingerprint(p.chain[0].as_ref());
        let leaf_at = |s: &'_ DomainResult| {
            presented(s)
                .find(|q| q.mx == p.mx && q.ip == p.ip)
                .map(|q| q.chain[0].as_ref().to_vec())
        };
        let Some(before) = past.runs().find_map(leaf_at) else {
            continue;
        };
        let was = fingerprint(&before);
        if was == now {
            continue;
        }
        let not_after = |der: &[u8]| describe(der).ok().map(|c| c.not_after);
        changed
            .entry((p.mx, was, now))
            .or_insert_with(|| {
                (
                    not_after(&before),
                    not_after(p.chain[0].as_ref()),
                    BTreeSet::new(),
                )
            })
            .2
            .insert(p.ip);
    }
    let valid = |t: Option<OffsetDateTime>| {
        t.map(|t| format!(", valid until {}", date(t)))
            .unwrap_or_default()
    };
    changed
        .into_iter()
        .map(|((mx, was, now), (old, new, ips))| Change {
            kind: ChangeKind::CertificateChanged,
            severity: Severity::Notice,
            subject: mx_subject(&current.facts.domain, mx, &ips),
            message: format!(
                "MX {mx} at {} presents a new certificate: SHA-256 {}{} (was {}{})",
                ip_list(&ips),
                short(&now),
                valid(new),
                short(&was),
                valid(old),
            ),
            fix: None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Policy, MX, TLS-RPT, DANE.

/// The MTA-STS state as far as changes go: the record id and the policy's mode and mx.
#[derive(Debug, PartialEq, Eq)]
struct StsView {
    id: Option<String>,
    policy: Option<(String, BTreeSet<String>)>,
}

fn sts_view(s: &DomainResult) -> Option<StsView> {
    let sts = &s.verdict.sts;
    let unknown = !s.facts.sts_txt.is_definite()
        || sts
            .failure
            .as_ref()
            .is_some_and(|f| is_could_not_tell(&f.reason_code));
    (!unknown).then(|| StsView {
        id: sts.id.clone(),
        policy: sts.policy.as_ref().map(|p| {
            (
                p.mode.as_str().to_owned(),
                p.mx.iter().map(ToString::to_string).collect(),
            )
        }),
    })
}

fn describe_sts(v: &StsView) -> String {
    match (&v.id, &v.policy) {
        (None, None) => "no MTA-STS record".to_owned(),
        (Some(id), None) => format!("record id {id} but no valid policy"),
        (id, Some((mode, mx))) => format!(
            "id {}, mode {mode}, mx {}",
            id.as_deref().unwrap_or("(none)"),
            mx.iter().cloned().collect::<Vec<_>>().join(" ")
        ),
    }
}

/// "added a, b; removed c" between two sets (empty when equal).
fn set_diff(before: &BTreeSet<String>, now: &BTreeSet<String>) -> Vec<String> {
    let added: Vec<&str> = now.difference(before).map(String::as_str).collect();
    let removed: Vec<&str> = before.difference(now).map(String::as_str).collect();
    let mut out = Vec::new();
    if !added.is_empty() {
        out.push(format!("added {}", added.join(", ")));
    }
    if !removed.is_empty() {
        out.push(format!("removed {}", removed.join(", ")));
    }
    out
}

fn policy_changed(past: &Past, current: &DomainResult) -> Vec<Change> {
    let (Some(now), Some(before)) = (sts_view(current), past.runs().find_map(sts_view)) else {
        return Vec::new();
    };
    if now == before {
        return Vec::new();
    }
    let message = match (&before.policy, &now.policy) {
        (None, Some(_)) => format!("an MTA-STS policy appeared: {}", describe_sts(&now)),
        (Some(_), None) => format!(
            "the MTA-STS policy is gone: {} (it was {})",
            describe_sts(&now),
            describe_sts(&before)
        ),
        (None, None) => format!(
            "the MTA-STS record changed: {} (it was {})",
            describe_sts(&now),
            describe_sts(&before)
        ),
        (Some((old_mode, old_mx)), Some((new_mode, new_mx))) => {
            let mut parts = Vec::new();
            if before.id != now.id {
                parts.push(format!(
                    "id {} → {}",
                    before.id.as_deref().unwrap_or("(none)"),
                    now.id.as_deref().unwrap_or("(none)")
                ));
            }
            if old_mode != new_mode {
                parts.push(format!("mode {old_mode} → {new_mode}"));
            }
            parts.extend(
                set_diff(old_mx, new_mx)
                    .into_iter()
                    .map(|d| format!("mx {d}")),
            );
            format!(
                "the MTA-STS policy changed: {} (now {})",
                parts.join("; "),
                describe_sts(&now)
            )
        }
    };
    vec![Change {
        kind: ChangeKind::PolicyChanged,
        severity: Severity::Notice,
        subject: Subject::domain(&current.facts.domain).at("MTA-STS policy"),
        message,
        fix: None,
    }]
}

fn exchanges(s: &DomainResult) -> Option<BTreeSet<String>> {
    s.facts
        .mx
        .is_definite()
        .then(|| s.facts.hosts.iter().map(|h| h.exchange.clone()).collect())
}

fn mx_changed(past: &Past, current: &DomainResult) -> Vec<Change> {
    let (Some(now), Some(before)) = (exchanges(current), past.runs().find_map(exchanges)) else {
        return Vec::new();
    };
    let diff = set_diff(&before, &now);
    if diff.is_empty() {
        return Vec::new();
    }
    let list = if now.is_empty() {
        "none".to_owned()
    } else {
        now.into_iter().collect::<Vec<_>>().join(", ")
    };
    vec![Change {
        kind: ChangeKind::MxChanged,
        severity: Severity::Notice,
        subject: Subject::domain(&current.facts.domain).at("MX"),
        message: format!("the MX hosts changed: {} (now: {list})", diff.join("; ")),
        fix: None,
    }]
}

fn rua(s: &DomainResult) -> Option<BTreeSet<String>> {
    s.facts
        .tlsrpt_txt
        .is_definite()
        .then(|| s.verdict.tlsrpt_rua.iter().cloned().collect())
}

fn rua_changed(past: &Past, current: &DomainResult) -> Vec<Change> {
    let (Some(now), Some(before)) = (rua(current), past.runs().find_map(rua)) else {
        return Vec::new();
    };
    let diff = set_diff(&before, &now);
    if diff.is_empty() {
        return Vec::new();
    }
    let (message, fix) = if now.is_empty() {
        (
            format!(
                "the TLS-RPT rua changed: {}; no usable destination is left, so senders \
                 send no reports",
                diff.join("; ")
            ),
            Some(
                "publish \"v=TLSRPTv1; rua=mailto:<address>\" at _smtp._tls.<domain> if the \
                 reports are still wanted"
                    .to_owned(),
            ),
        )
    } else {
        (
            format!("the TLS-RPT rua changed: {}", diff.join("; ")),
            None,
        )
    };
    vec![Change {
        kind: ChangeKind::TlsrptRuaChanged,
        severity: Severity::Notice,
        subject: Subject::domain(&current.facts.domain).at("_smtp._tls TXT"),
        message,
        fix,
    }]
}

/// Whether MX `mx` is judged under DANE in `s`: `None` when that could not be observed (the
/// host is absent or unprobed, or its TLSA lookup failed without a DNSSEC verdict).
fn dane_state(s: &DomainResult, mx: &DomainName) -> Option<bool> {
    let host = s.facts.hosts.iter().find(|h| h.name.as_ref() == Some(mx))?;
    let tlsa_unknown = host
        .tlsa
        .as_ref()
        .is_some_and(|l| !l.is_definite() && !matches!(l, Lookup::Bogus { .. }));
    let mut sessions = s.verdict.sessions.iter().filter(|v| &v.mx == mx).peekable();
    if tlsa_unknown || sessions.peek().is_none() {
        return None;
    }
    Some(sessions.any(|v| v.policy_type == PolicyType::Tlsa))
}

fn dane_changed(past: &Past, current: &DomainResult) -> Vec<Change> {
    let mut out = Vec::new();
    for mx in current.facts.hosts.iter().filter_map(|h| h.name.as_ref()) {
        let Some(now) = dane_state(current, mx) else {
            continue;
        };
        // The newest run that either judged the host or saw it absent from the MX set.
        let before = past.runs().find_map(|s| match dane_state(s, mx) {
            Some(state) => Some(Some(state)),
            None => exchanges(s)
                .is_some_and(|e| !e.contains(mx.as_str()))
                .then_some(None),
        });
        let Some(Some(before)) = before else { continue };
        if before == now {
            continue;
        }
        let subject = Subject::domain(&current.facts.domain).with_mx(mx);
        out.push(if now {
            Change {
                kind: ChangeKind::DaneAppeared,
                severity: Severity::Notice,
                subject,
                message: format!(
                    "MX {mx} now has usable DANE TLSA records (_25._tcp.{mx}): DANE senders \
                     authenticate it by them"
                ),
                fix: None,
            }
        } else {
            Change {
                kind: ChangeKind::DaneDisappeared,
                severity: Severity::Notice,
                subject,
                message: format!(
                    "MX {mx} no longer has usable DANE TLSA records (_25._tcp.{mx}): DANE \
                     senders fall back to MTA-STS or opportunistic TLS"
                ),
                fix: Some(format!(
                    "if this was not intended, publish the TLSA records at _25._tcp.{mx} again \
                     and check that the zones of {mx} are DNSSEC-signed"
                )),
            }
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Inconclusive and reminders.

/// Where a subject points, without the domain.
fn place(subject: &Subject) -> String {
    Subject {
        domain: None,
        ..subject.clone()
    }
    .to_string()
}

fn code_at(f: &Finding) -> String {
    let at = place(&f.subject);
    if at.is_empty() {
        f.code.to_string()
    } else {
        format!("{} ({at})", f.code)
    }
}

fn inconclusive(past: &Past, current: &DomainResult, opts: &ChangeOptions) -> Option<Change> {
    let runs = past.inconclusive_streak.checked_add(1)?;
    if current.verdict.status(Severity::Error) != DomainStatus::Inconclusive
        || runs != opts.inconclusive_after
    {
        return None;
    }
    let what: Vec<String> = current
        .verdict
        .findings
        .iter()
        .filter(|f| f.inconclusive)
        .map(code_at)
        .collect();
    Some(Change {
        kind: ChangeKind::Inconclusive,
        severity: Severity::Warning,
        subject: Subject::domain(&current.facts.domain),
        message: format!(
            "{} has been inconclusive for {runs} runs in a row; could not test: {}",
            current.facts.domain,
            what.join(", ")
        ),
        fix: Some(
            "check that the domain's name servers answer and that port 25 of its MX hosts is \
             reachable from where mxprobe runs"
                .to_owned(),
        ),
    })
}

fn reminder(past: &Past, current: &DomainResult, opts: &ChangeOptions) -> Option<Change> {
    let every = opts.remind_every?;
    let open: Vec<&Finding> = failing(current).collect();
    let due = past.last_alert_at.is_none_or(|t| opts.now - t >= every);
    if open.is_empty() || !due {
        return None;
    }
    let mut codes: Vec<String> = Vec::new();
    for f in &open {
        let c = code_at(f);
        if !codes.contains(&c) {
            codes.push(c);
        }
    }
    Some(Change {
        kind: ChangeKind::Reminder,
        severity: open
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Error),
        subject: Subject::domain(&current.facts.domain),
        message: format!(
            "{} failure{} still open: {}",
            open.len(),
            if open.len() == 1 { " is" } else { "s are" },
            codes.join(", ")
        ),
        fix: None,
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use time::macros::datetime;

    use super::*;
    use crate::dns::{AddressLookups, DnssecStatus, Mx, Tlsa, Txt};
    use crate::evaluate::policy_fetch::ContentTypeRule;
    use crate::evaluate::{EvalOptions, evaluate_domain};
    use crate::facts::{
        DomainFacts, FetchAttempt, FetchOutcome, HttpResponse, MxHostFacts, PolicyFetchFacts,
    };
    use crate::smtp::{Phase, SmtpFacts, SmtpOutcome, TlsFacts};
    use crate::tls::Anchors;

    /// The time of the first run in most tests.
    const T0: OffsetDateTime = datetime!(2026-11-01 06:00 UTC);
    const NOT_BEFORE: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
    const FAR: OffsetDateTime = datetime!(2035-01-01 0:00 UTC);

    fn days(n: i64) -> Duration {
        Duration::days(n)
    }

    fn name(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    fn ca_params(cn: &str, not_after: OffsetDateTime) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(cn);
        params.not_before = NOT_BEFORE;
        params.not_after = not_after;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    /// A root (the only anchor), an intermediate under it, and leaves under the intermediate.
    struct Pki {
        root_key: KeyPair,
        int_params: CertificateParams,
        int_key: KeyPair,
        int_der: CertificateDer<'static>,
        anchors: Anchors,
        policy_chain: Vec<CertificateDer<'static>>,
    }

    impl Pki {
        fn new(int_not_after: OffsetDateTime) -> Self {
            let root_key = KeyPair::generate().unwrap();
            let root_params = ca_params("Root", FAR);
            let root = root_params.self_signed(&root_key).unwrap();
            let int_key = KeyPair::generate().unwrap();
            let int_params = ca_params("Intermediate", int_not_after);
            let int_der = int_params
                .signed_by(&int_key, &Issuer::from_params(&root_params, &root_key))
                .unwrap()
                .der()
                .clone();
            let mut pki = Self {
                root_key,
                int_params,
                int_key,
                int_der,
                anchors: Anchors::from_pem(root.pem().as_bytes()).unwrap(),
                policy_chain: Vec::new(),
            };
            pki.policy_chain = pki.chain("mta-sts.example.com", FAR);
            pki
        }

        /// A leaf for `host` expiring at `not_after`, with the intermediate: what a
        /// correctly configured server sends.
        fn chain(&self, host: &str, not_after: OffsetDateTime) -> Vec<CertificateDer<'static>> {
            let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
            params.distinguished_name = name(host);
            params.not_before = NOT_BEFORE;
            params.not_after = not_after;
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let key = KeyPair::generate().unwrap();
            let issuer = Issuer::from_params(&self.int_params, &self.int_key);
            let leaf = params.signed_by(&key, &issuer).unwrap().der().clone();
            vec![leaf, self.int_der.clone()]
        }

        /// The root's name and key certified by another, untrusted root until `not_after`:
        /// the cross-signed copy some servers append to their chain.
        fn cross_signed_root(&self, not_after: OffsetDateTime) -> CertificateDer<'static> {
            let old_key = KeyPair::generate().unwrap();
            let old_params = ca_params("Old Root", FAR);
            ca_params("Root", not_after)
                .signed_by(&self.root_key, &Issuer::from_params(&old_params, &old_key))
                .unwrap()
                .der()
                .clone()
        }
    }

    fn dn(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// What the probe of one address saw.
    #[derive(Clone)]
    enum Probe {
        Tls(Vec<CertificateDer<'static>>),
        NoStarttls,
        Timeout,
    }

    #[derive(Clone)]
    struct HostSpec {
        name: &'static str,
        /// `Some(true)`: a secure DANE-EE record for the key of the first TLS session;
        /// `Some(false)`: a secure denial of TLSA records; `None`: addresses insecure.
        dane: Option<bool>,
        tlsa_timeout: bool,
        probes: Vec<(&'static str, Probe)>,
    }

    fn host(name: &'static str, probes: Vec<(&'static str, Probe)>) -> HostSpec {
        HostSpec {
            name,
            dane: None,
            tlsa_timeout: false,
            probes,
        }
    }

    /// One run's view of example.com, turned into facts and judged by the evaluator.
    #[derive(Clone)]
    struct World {
        at: OffsetDateTime,
        mx_timeout: bool,
        /// `(id, mode)` of the MTA-STS policy; its mx lines list every host.
        sts: Option<(&'static str, &'static str)>,
        sts_txt_timeout: bool,
        rua: Vec<&'static str>,
        hosts: Vec<HostSpec>,
    }

    fn tls_host(pki: &Pki, name: &'static str, ips: &[&'static str]) -> HostSpec {
        let chain = pki.chain(name, FAR);
        host(
            name,
            ips.iter()
                .map(|ip| (*ip, Probe::Tls(chain.clone())))
                .collect(),
        )
    }

    /// Enforce policy, TLS-RPT, two healthy MX hosts.
    fn world(pki: &Pki) -> World {
        World {
            at: T0,
            mx_timeout: false,
            sts: Some(("20261101", "enforce")),
            sts_txt_timeout: false,
            rua: vec!["mailto:tlsrpt@example.com"],
            hosts: vec![
                tls_host(pki, "mx1.example.com", &["192.0.2.1"]),
                tls_host(pki, "mx2.example.com", &["192.0.2.11"]),
            ],
        }
    }

    fn records<T>(records: Vec<T>, dnssec: DnssecStatus) -> Lookup<T> {
        Lookup::Records {
            records,
            dnssec,
            cname_chain: Vec::new(),
        }
    }

    fn spki_sha256(der: &[u8]) -> Vec<u8> {
        let hex = describe(der).unwrap().spki_sha256;
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    impl World {
        fn facts(&self, pki: &Pki) -> DomainFacts {
            let secure = self.hosts.iter().any(|h| h.dane.is_some());
            let status = if secure {
                DnssecStatus::Secure
            } else {
                DnssecStatus::Insecure
            };
            let mx = if self.mx_timeout {
                Lookup::Timeout
            } else {
                records(
                    self.hosts
                        .iter()
                        .enumerate()
                        .map(|(i, h)| Mx {
                            preference: 10 * (i as u16 + 1),
                            exchange: h.name.to_owned(),
                        })
                        .collect(),
                    status,
                )
            };
            let hosts = if self.mx_timeout {
                Vec::new()
            } else {
                self.hosts.iter().map(|h| self.host(h, status)).collect()
            };
            let sts_txt = match (self.sts_txt_timeout, self.sts) {
                (true, _) => Lookup::Timeout,
                (false, Some((id, _))) => records(
                    vec![Txt {
                        strings: vec![format!("v=STSv1; id={id}")],
                    }],
                    DnssecStatus::Insecure,
                ),
                (false, None) => Lookup::NoData {
                    dnssec: DnssecStatus::Insecure,
                },
            };
            let policy_fetch = self.sts.filter(|_| !self.sts_txt_timeout).map(|(_, mode)| {
                let mx: String = self
                    .hosts
                    .iter()
                    .map(|h| format!("mx: {}\n", h.name))
                    .collect();
                PolicyFetchFacts {
                    url: "https://mta-sts.example.com/.well-known/mta-sts.txt".to_owned(),
                    attempts: vec![FetchAttempt {
                        address: Some(ip("192.0.2.80")),
                        outcome: FetchOutcome::Response(HttpResponse {
                            status: 200,
                            content_type: Some("text/plain".to_owned()),
                            location: None,
                            chain: pki.policy_chain.iter().map(|c| c.to_vec()).collect(),
                            body: format!("version: STSv1\nmode: {mode}\n{mx}max_age: 604800\n"),
                            body_not_utf8: false,
                            body_truncated: false,
                        }),
                    }],
                }
            });
            let tlsrpt_txt = if self.rua.is_empty() {
                Lookup::NoData {
                    dnssec: DnssecStatus::Insecure,
                }
            } else {
                records(
                    vec![Txt {
                        strings: vec![format!("v=TLSRPTv1; rua={}", self.rua.join(","))],
                    }],
                    DnssecStatus::Insecure,
                )
            };
            DomainFacts {
                domain: dn("example.com"),
                observed_at: self.at,
                mx,
                sts_txt,
                tlsrpt_txt,
                policy_fetch,
                hosts,
                resolver_problem: None,
                rua: Vec::new(),
            }
        }

        fn host(&self, h: &HostSpec, status: DnssecStatus) -> MxHostFacts {
            let mx = dn(h.name);
            let first_leaf = h.probes.iter().find_map(|(_, p)| match p {
                Probe::Tls(chain) => Some(chain[0].clone()),
                _ => None,
            });
            let tlsa = match (h.tlsa_timeout, h.dane) {
                (true, _) => Some(Lookup::Timeout),
                (false, Some(true)) => Some(records(
                    vec![Tlsa {
                        usage: 3,
                        selector: 1,
                        matching_type: 1,
                        data: spki_sha256(first_leaf.as_ref().unwrap()),
                    }],
                    DnssecStatus::Secure,
                )),
                (false, Some(false)) => Some(Lookup::NoData {
                    dnssec: DnssecStatus::Secure,
                }),
                (false, None) => None,
            };
            let sessions = h
                .probes
                .iter()
                .map(|(addr, probe)| {
                    let address = SocketAddr::new(ip(addr), 25);
                    match probe {
                        Probe::Tls(chain) => {
                            let mut s = SmtpFacts::new(mx.clone(), address, SmtpOutcome::Completed);
                            s.tls = Some(TlsFacts {
                                version: "TLSv1.3".to_owned(),
                                cipher_suite: "TLS_AES_128_GCM_SHA256".to_owned(),
                                sni: Some(h.name.to_owned()),
                                chain: chain.clone(),
                            });
                            s
                        }
                        Probe::NoStarttls => {
                            SmtpFacts::new(mx.clone(), address, SmtpOutcome::StarttlsNotOffered)
                        }
                        Probe::Timeout => SmtpFacts::new(
                            mx.clone(),
                            address,
                            SmtpOutcome::Timeout {
                                phase: Phase::Greeting,
                            },
                        ),
                    }
                })
                .collect();
            MxHostFacts {
                exchange: h.name.to_owned(),
                name: Some(mx.clone()),
                preference: 10,
                implicit: false,
                addresses: Some(AddressLookups {
                    a: Some(records(
                        h.probes.iter().map(|(a, _)| ip(a)).collect(),
                        status,
                    )),
                    aaaa: None,
                }),
                tlsa,
                tlsa_base: None,
                sessions,
            }
        }

        fn snapshot(&self, pki: &Pki) -> DomainResult {
            let facts = self.facts(pki);
            let verdict = evaluate_domain(
                &facts,
                &EvalOptions {
                    anchors: &pki.anchors,
                    now: self.at,
                    content_type: ContentTypeRule::Warn,
                    expiry_warn_days: 14,
                },
            );
            DomainResult::new(facts, verdict)
        }
    }

    fn past(previous: Option<DomainResult>) -> Past {
        Past {
            previous,
            ..Past::default()
        }
    }

    fn kinds(changes: &[Change]) -> Vec<ChangeKind> {
        changes.iter().map(|c| c.kind).collect()
    }

    fn opts(now: OffsetDateTime) -> ChangeOptions {
        ChangeOptions::new(now)
    }

    fn fp(der: &CertificateDer<'_>) -> String {
        short(&fingerprint(der.as_ref()))
    }

    fn subject(mx: &str, ip_addr: Option<&str>, location: Option<&str>) -> Subject {
        Subject {
            domain: Some(dn("example.com")),
            mx: Some(dn(mx)),
            ip: ip_addr.map(ip),
            // As stored findings are read back.
            location: location.map(|l| serde_json::from_value(serde_json::json!(l)).unwrap()),
        }
    }

    const NO_STARTTLS: &str = "smtp.starttls.unavailable: the server does not offer STARTTLS in \
                               its EHLO reply; in enforce mode senders will not deliver to \
                               mx1.example.com";

    #[test]
    fn fixture_is_healthy() {
        let pki = Pki::new(FAR);
        let s = world(&pki).snapshot(&pki);
        assert_eq!(s.verdict.status(Severity::Error), DomainStatus::Pass);
        assert_eq!(s.verdict.findings, Vec::new());
        assert_eq!(s.verdict.sessions.len(), 2);
        assert_eq!(detect(&past(None), &s, &opts(T0)), Vec::new());
    }

    #[test]
    fn identical_snapshots_report_nothing() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0].probes[0].1 = Probe::NoStarttls;
        w.hosts[1] = host(
            "mx2.example.com",
            vec![(
                "192.0.2.11",
                Probe::Tls(pki.chain("mx2.example.com", T0 + days(5))),
            )],
        );
        let s = w.snapshot(&pki);
        // The first run alerts on both; the same snapshot again on nothing.
        assert_eq!(
            kinds(&detect(&past(None), &s, &opts(T0))),
            [ChangeKind::NewFailure, ChangeKind::CertificateExpiring]
        );
        assert_eq!(detect(&past(Some(s.clone())), &s, &opts(T0)), Vec::new());
    }

    #[test]
    fn runs_differing_only_in_time_report_nothing() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0].probes[0].1 = Probe::NoStarttls;
        // Ten days left at the first run, nine at the second: within the 21-day threshold
        // both times, and the evaluator's own expiry warning names the days left.
        w.hosts[1] = host(
            "mx2.example.com",
            vec![(
                "192.0.2.11",
                Probe::Tls(pki.chain("mx2.example.com", T0 + days(10))),
            )],
        );
        let first = w.snapshot(&pki);
        w.at = T0 + days(1);
        let mut second = w.snapshot(&pki);
        let messages = |s: &DomainResult| -> Vec<String> {
            s.verdict
                .findings
                .iter()
                .map(|f| f.message.clone())
                .collect()
        };
        assert_ne!(messages(&first), messages(&second));
        for f in &mut second.verdict.findings {
            f.message.push_str(" (observed 2026-11-02T06:00:00Z)");
        }
        assert_eq!(
            detect(&past(Some(first)), &second, &opts(T0 + days(1))),
            Vec::new()
        );
    }

    #[test]
    fn first_run_reports_every_failure_once() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0] = host(
            "mx1.example.com",
            vec![
                ("192.0.2.1", Probe::NoStarttls),
                ("192.0.2.2", Probe::NoStarttls),
            ],
        );
        let s = w.snapshot(&pki);
        assert_eq!(
            detect(&past(None), &s, &opts(T0)),
            vec![Change {
                kind: ChangeKind::NewFailure,
                severity: Severity::Error,
                subject: subject(
                    "mx1.example.com",
                    None,
                    Some("addresses 192.0.2.1, 192.0.2.2")
                ),
                message: NO_STARTTLS.to_owned(),
                fix: Some(
                    "enable STARTTLS on the server (with a certificate for its MX name)".to_owned()
                ),
            }]
        );
    }

    #[test]
    fn new_failure_then_resolved() {
        let pki = Pki::new(FAR);
        let healthy = world(&pki);
        let mut broken = healthy.clone();
        broken.hosts[0].probes[0].1 = Probe::NoStarttls;
        let r1 = healthy.snapshot(&pki);
        let r2 = broken.snapshot(&pki);
        let r3 = healthy.snapshot(&pki);

        let changes = detect(&past(Some(r1.clone())), &r2, &opts(T0));
        assert_eq!(kinds(&changes), [ChangeKind::NewFailure]);
        assert_eq!(changes[0].severity, Severity::Error);
        assert_eq!(
            changes[0].subject,
            subject("mx1.example.com", Some("192.0.2.1"), None)
        );
        assert_eq!(changes[0].message, NO_STARTTLS);

        let p = Past {
            previous: Some(r2),
            earlier: vec![r1],
            ..Past::default()
        };
        assert_eq!(
            detect(&p, &r3, &opts(T0)),
            vec![Change {
                kind: ChangeKind::FailureResolved,
                severity: Severity::Notice,
                subject: subject("mx1.example.com", Some("192.0.2.1"), None),
                message: format!(
                    "smtp.starttls.unavailable no longer fails (it was: {})",
                    NO_STARTTLS.trim_start_matches("smtp.starttls.unavailable: ")
                ),
                fix: None,
            }]
        );
    }

    #[test]
    fn a_timed_out_address_is_neither_resolved_nor_new() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0] = host(
            "mx1.example.com",
            vec![
                ("192.0.2.1", Probe::NoStarttls),
                ("192.0.2.2", Probe::NoStarttls),
            ],
        );
        let r1 = w.snapshot(&pki);
        w.hosts[0].probes[0].1 = Probe::Timeout;
        let r2 = w.snapshot(&pki);
        assert_eq!(r2.verdict.status(Severity::Error), DomainStatus::Fail);
        // 192.0.2.2 still fails; 192.0.2.1 could not be tested: nothing changed.
        assert_eq!(detect(&past(Some(r1.clone())), &r2, &opts(T0)), Vec::new());
        // Failing again after the timeout is not new, with or without the older run.
        let r3_failing = {
            let mut w = w.clone();
            w.hosts[0].probes[0].1 = Probe::NoStarttls;
            w.snapshot(&pki)
        };
        let with_earlier = Past {
            previous: Some(r2.clone()),
            earlier: vec![r1.clone()],
            ..Past::default()
        };
        assert_eq!(detect(&with_earlier, &r3_failing, &opts(T0)), Vec::new());
        assert_eq!(
            detect(&past(Some(r2.clone())), &r3_failing, &opts(T0)),
            Vec::new()
        );
        // Fixed at both: each address resolves against the newest run that tested it.
        let fixed = tls_host(&pki, "mx1.example.com", &["192.0.2.1", "192.0.2.2"]);
        w.hosts[0] = fixed;
        let r3_fixed = w.snapshot(&pki);
        let changes = detect(&with_earlier, &r3_fixed, &opts(T0));
        assert_eq!(
            changes
                .iter()
                .map(|c| (c.kind, c.subject.clone()))
                .collect::<Vec<_>>(),
            vec![
                (
                    ChangeKind::FailureResolved,
                    subject("mx1.example.com", Some("192.0.2.2"), None)
                ),
                (
                    ChangeKind::FailureResolved,
                    subject("mx1.example.com", Some("192.0.2.1"), None)
                ),
            ]
        );
    }

    #[test]
    fn a_timed_out_session_is_not_a_certificate_change() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        let r1 = w.snapshot(&pki);
        let old = pki_leaf(&w);
        w.hosts[0].probes[0].1 = Probe::Timeout;
        let r2 = w.snapshot(&pki);
        assert_eq!(detect(&past(Some(r1.clone())), &r2, &opts(T0)), Vec::new());
        let p = Past {
            previous: Some(r2.clone()),
            earlier: vec![r1.clone()],
            ..Past::default()
        };
        // The same certificate after the timeout: nothing.
        w.hosts[0].probes[0].1 = Probe::Tls(vec![old.clone(), pki.int_der.clone()]);
        assert_eq!(detect(&p, &w.snapshot(&pki), &opts(T0)), Vec::new());
        // Another one: changed, against the run before the timeout.
        let new = pki.chain("mx1.example.com", datetime!(2034-06-01 0:00 UTC));
        w.hosts[0].probes[0].1 = Probe::Tls(new.clone());
        assert_eq!(
            detect(&p, &w.snapshot(&pki), &opts(T0)),
            vec![Change {
                kind: ChangeKind::CertificateChanged,
                severity: Severity::Notice,
                subject: subject("mx1.example.com", Some("192.0.2.1"), None),
                message: format!(
                    "MX mx1.example.com at 192.0.2.1 presents a new certificate: SHA-256 {}, \
                     valid until 2034-06-01 (was {}, valid until 2035-01-01)",
                    fp(&new[0]),
                    fp(&old)
                ),
                fix: None,
            }]
        );
    }

    /// The leaf mx1 presents at its first address.
    fn pki_leaf(w: &World) -> CertificateDer<'static> {
        match &w.hosts[0].probes[0].1 {
            Probe::Tls(chain) => chain[0].clone(),
            _ => unreachable!("mx1 presents a chain in this test"),
        }
    }

    #[test]
    fn renewal_at_several_addresses_is_one_change() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0] = tls_host(&pki, "mx1.example.com", &["192.0.2.1", "192.0.2.2"]);
        let old = pki_leaf(&w);
        let r1 = w.snapshot(&pki);
        w.hosts[0] = tls_host(&pki, "mx1.example.com", &["192.0.2.1", "192.0.2.2"]);
        let new = pki_leaf(&w);
        let changes = detect(&past(Some(r1)), &w.snapshot(&pki), &opts(T0));
        assert_eq!(kinds(&changes), [ChangeKind::CertificateChanged]);
        assert_eq!(
            changes[0].subject,
            subject(
                "mx1.example.com",
                None,
                Some("addresses 192.0.2.1, 192.0.2.2")
            )
        );
        assert_eq!(
            changes[0].message,
            format!(
                "MX mx1.example.com at 192.0.2.1, 192.0.2.2 presents a new certificate: SHA-256 \
                 {}, valid until 2035-01-01 (was {}, valid until 2035-01-01)",
                fp(&new),
                fp(&old)
            )
        );
    }

    #[test]
    fn expiry_alerts_once_per_threshold_crossed() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        let chain = pki.chain("mx1.example.com", T0 + days(25));
        w.hosts[0].probes[0].1 = Probe::Tls(chain.clone());
        let run = |w: &mut World, day: i64| {
            w.at = T0 + days(day);
            w.snapshot(&pki)
        };
        let runs: Vec<DomainResult> = [0, 5, 6, 19, 20].iter().map(|&d| run(&mut w, d)).collect();
        let at = |i: usize| opts(runs[i].facts.observed_at);
        let expected = |left: i64, threshold: u32, severity: Severity| Change {
            kind: ChangeKind::CertificateExpiring,
            severity,
            subject: subject("mx1.example.com", Some("192.0.2.1"), None),
            message: format!(
                "the server certificate (CN=mx1.example.com) presented by MX mx1.example.com at \
                 192.0.2.1 expires on 2026-11-26 (in {left} days, within the {threshold}-day \
                 warning); SHA-256 {}",
                fp(&chain[0])
            ),
            fix: Some("renew the certificate of mx1.example.com (and automate renewal)".to_owned()),
        };
        // 25 days left on the first run: above every threshold.
        assert_eq!(detect(&past(None), &runs[0], &at(0)), Vec::new());
        // 20 days: the 21-day threshold is crossed.
        assert_eq!(
            detect(&past(Some(runs[0].clone())), &runs[1], &at(1)),
            vec![expected(20, 21, Severity::Warning)]
        );
        // 19 days: still within it, nothing new.
        assert_eq!(
            detect(&past(Some(runs[1].clone())), &runs[2], &at(2)),
            Vec::new()
        );
        // 6 days: the 7-day threshold, the smallest, is an error.
        assert_eq!(
            detect(&past(Some(runs[2].clone())), &runs[3], &at(3)),
            vec![expected(6, 7, Severity::Error)]
        );
        assert_eq!(
            detect(&past(Some(runs[3].clone())), &runs[4], &at(4)),
            Vec::new()
        );
        // From 25 straight to 6: one change, at the tightest threshold.
        assert_eq!(
            detect(&past(Some(runs[0].clone())), &runs[3], &at(3)),
            vec![expected(6, 7, Severity::Error)]
        );
    }

    #[test]
    fn a_new_certificate_already_within_a_threshold_alerts() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        let r1 = w.snapshot(&pki);
        w.hosts[0] = host(
            "mx1.example.com",
            vec![
                (
                    "192.0.2.1",
                    Probe::Tls(pki.chain("mx1.example.com", T0 + days(15))),
                ),
                (
                    "192.0.2.2",
                    Probe::Tls(pki.chain("mx1.example.com", T0 + days(15))),
                ),
            ],
        );
        // Two different certificates at two addresses of one MX: one change each.
        let changes = detect(&past(Some(r1)), &w.snapshot(&pki), &opts(T0));
        assert_eq!(
            changes
                .iter()
                .map(|c| (c.kind, c.severity, c.subject.ip))
                .collect::<BTreeSet<_>>(),
            [
                (
                    ChangeKind::CertificateExpiring,
                    Severity::Warning,
                    Some(ip("192.0.2.1"))
                ),
                (
                    ChangeKind::CertificateExpiring,
                    Severity::Warning,
                    Some(ip("192.0.2.2"))
                ),
                (
                    ChangeKind::CertificateChanged,
                    Severity::Notice,
                    Some(ip("192.0.2.1"))
                ),
            ]
            .into_iter()
            .collect()
        );
    }

    #[test]
    fn one_certificate_at_several_addresses_alerts_once() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        let chain = pki.chain("mx1.example.com", T0 + days(5));
        w.hosts[0] = host(
            "mx1.example.com",
            vec![
                ("192.0.2.1", Probe::Tls(chain.clone())),
                ("192.0.2.2", Probe::Tls(chain.clone())),
            ],
        );
        let changes = detect(&past(None), &w.snapshot(&pki), &opts(T0));
        assert_eq!(kinds(&changes), [ChangeKind::CertificateExpiring]);
        assert_eq!(changes[0].severity, Severity::Error);
        assert_eq!(
            changes[0].subject,
            subject(
                "mx1.example.com",
                None,
                Some("addresses 192.0.2.1, 192.0.2.2")
            )
        );
        assert!(
            changes[0]
                .message
                .contains("MX mx1.example.com at 192.0.2.1, 192.0.2.2 expires on 2026-11-06"),
            "{}",
            changes[0].message
        );
    }

    #[test]
    fn an_extra_cross_signed_certificate_does_not_alert() {
        // The verified chain (leaf, intermediate, trusted root) is good for years; the server
        // also sends the root cross-signed by an old root, expiring in three days.
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        let mut chain = pki.chain("mx1.example.com", FAR);
        chain.push(pki.cross_signed_root(T0 + days(3)));
        w.hosts[0].probes[0].1 = Probe::Tls(chain);
        let s = w.snapshot(&pki);
        assert_eq!(s.verdict.sessions[0].verified_path, Some(vec![0, 1]));
        assert_eq!(s.verdict.status(Severity::Error), DomainStatus::Pass);
        assert_eq!(detect(&past(None), &s, &opts(T0)), Vec::new());
    }

    #[test]
    fn an_expiring_intermediate_on_the_verified_chain_alerts() {
        let pki = Pki::new(T0 + days(10));
        let w = World {
            hosts: vec![tls_host(&pki, "mx1.example.com", &["192.0.2.1"])],
            ..world(&pki)
        };
        let changes = detect(&past(None), &w.snapshot(&pki), &opts(T0));
        assert_eq!(
            changes,
            vec![Change {
                kind: ChangeKind::CertificateExpiring,
                severity: Severity::Warning,
                subject: subject("mx1.example.com", Some("192.0.2.1"), None),
                message: format!(
                    "the intermediate certificate (CN=Intermediate) of the verified chain presented \
                     by MX mx1.example.com at 192.0.2.1 expires on 2026-11-11 (in 10 days, within \
                     the 21-day warning); SHA-256 {}",
                    fp(&pki.int_der)
                ),
                fix: Some(
                    "install the issuing CA's current intermediate certificate on \
                     mx1.example.com (renewing the server certificate usually brings it)"
                        .to_owned()
                ),
            }]
        );
    }

    fn one(changes: Vec<Change>) -> Change {
        assert_eq!(changes.len(), 1, "{changes:#?}");
        changes.into_iter().next().unwrap()
    }

    #[test]
    fn policy_changes_are_named() {
        let pki = Pki::new(FAR);
        let w = world(&pki);
        let testing = World {
            sts: Some(("1", "testing")),
            ..w.clone()
        };
        let enforce = World {
            sts: Some(("2", "enforce")),
            ..w.clone()
        };
        let none = World { sts: None, ..w };
        let cases = [
            (
                &testing,
                &enforce,
                "the MTA-STS policy changed: id 1 → 2; mode testing → enforce (now id 2, mode \
                 enforce, mx mx1.example.com mx2.example.com)",
            ),
            (
                &none,
                &enforce,
                "an MTA-STS policy appeared: id 2, mode enforce, mx mx1.example.com \
                 mx2.example.com",
            ),
            (
                &enforce,
                &none,
                "the MTA-STS policy is gone: no MTA-STS record (it was id 2, mode enforce, mx \
                 mx1.example.com mx2.example.com)",
            ),
        ];
        for (before, now, message) in cases {
            let c = one(detect(
                &past(Some(before.snapshot(&pki))),
                &now.snapshot(&pki),
                &opts(T0),
            ));
            assert_eq!(c.kind, ChangeKind::PolicyChanged);
            assert_eq!(c.severity, Severity::Notice);
            assert_eq!(
                c.subject,
                Subject::domain(&dn("example.com")).at("MTA-STS policy")
            );
            assert_eq!(c.message, message);
        }
    }

    #[test]
    fn a_failed_policy_lookup_changes_nothing() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0].probes[0].1 = Probe::NoStarttls;
        let r1 = w.snapshot(&pki);
        w.sts_txt_timeout = true;
        let r2 = w.snapshot(&pki);
        // Without the policy the session is judged as having none (not failing at error):
        // that is not the failure resolved, nor the policy gone.
        assert!(!r2.verdict.findings.iter().any(|f| f.fails(Severity::Error)));
        assert_eq!(detect(&past(Some(r1)), &r2, &opts(T0)), Vec::new());
    }

    #[test]
    fn mx_changes_are_named_and_a_failed_mx_lookup_is_not_one() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0].probes[0].1 = Probe::NoStarttls;
        let r1 = w.snapshot(&pki);
        let moved = World {
            hosts: vec![
                w.hosts[0].clone(),
                tls_host(&pki, "mx3.example.com", &["192.0.2.21"]),
            ],
            ..w.clone()
        };
        let changes = detect(&past(Some(r1.clone())), &moved.snapshot(&pki), &opts(T0));
        assert_eq!(
            kinds(&changes),
            [ChangeKind::PolicyChanged, ChangeKind::MxChanged]
        );
        assert_eq!(
            changes[1],
            Change {
                kind: ChangeKind::MxChanged,
                severity: Severity::Notice,
                subject: Subject::domain(&dn("example.com")).at("MX"),
                message: "the MX hosts changed: added mx3.example.com; removed mx2.example.com \
                          (now: mx1.example.com, mx3.example.com)"
                    .to_owned(),
                fix: None,
            }
        );
        assert!(
            changes[0]
                .message
                .contains("mx added mx3.example.com; mx removed mx2.example.com"),
            "{}",
            changes[0].message
        );
        w.mx_timeout = true;
        assert_eq!(
            detect(&past(Some(r1)), &w.snapshot(&pki), &opts(T0)),
            Vec::new()
        );
    }

    #[test]
    fn tlsrpt_rua_changes_are_named() {
        let pki = Pki::new(FAR);
        let w = world(&pki);
        let r1 = w.snapshot(&pki);
        let more = World {
            rua: vec!["mailto:tlsrpt@example.com", "mailto:reports@example.net"],
            ..w.clone()
        };
        let c = one(detect(
            &past(Some(r1.clone())),
            &more.snapshot(&pki),
            &opts(T0),
        ));
        assert_eq!(c.kind, ChangeKind::TlsrptRuaChanged);
        assert_eq!(c.severity, Severity::Notice);
        assert_eq!(
            c.message,
            "the TLS-RPT rua changed: added mailto:reports@example.net"
        );
        assert_eq!(c.fix, None);
        let gone = World {
            rua: Vec::new(),
            ..w
        };
        let c = one(detect(&past(Some(r1)), &gone.snapshot(&pki), &opts(T0)));
        assert_eq!(
            c.message,
            "the TLS-RPT rua changed: removed mailto:tlsrpt@example.com; no usable destination \
             is left, so senders send no reports"
        );
        assert!(c.fix.is_some());
    }

    #[test]
    fn dane_appearing_and_disappearing() {
        let pki = Pki::new(FAR);
        let mut without = world(&pki);
        without.hosts[0].dane = Some(false);
        let mut with = without.clone();
        with.hosts[0].dane = Some(true);
        let (a, b) = (without.snapshot(&pki), with.snapshot(&pki));
        assert_eq!(b.verdict.sessions[0].policy_type, PolicyType::Tlsa);
        assert_eq!(a.verdict.sessions[0].policy_type, PolicyType::Sts);
        let mx1 = Subject::domain(&dn("example.com")).with_mx(&dn("mx1.example.com"));

        let c = one(detect(&past(Some(a.clone())), &b, &opts(T0)));
        assert_eq!(
            (c.kind, c.severity, &c.subject),
            (ChangeKind::DaneAppeared, Severity::Notice, &mx1)
        );
        let c = one(detect(&past(Some(b.clone())), &a, &opts(T0)));
        assert_eq!(
            (c.kind, c.severity, &c.subject),
            (ChangeKind::DaneDisappeared, Severity::Notice, &mx1)
        );
        assert_eq!(
            c.message,
            "MX mx1.example.com no longer has usable DANE TLSA records \
             (_25._tcp.mx1.example.com): DANE senders fall back to MTA-STS or opportunistic TLS"
        );
        // A TLSA lookup that timed out is not DANE gone.
        let mut timed_out = with.clone();
        timed_out.hosts[0].tlsa_timeout = true;
        assert_eq!(
            detect(&past(Some(b)), &timed_out.snapshot(&pki), &opts(T0)),
            Vec::new()
        );
    }

    #[test]
    fn inconclusive_alerts_once_when_the_streak_reaches_the_limit() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0].probes[0].1 = Probe::Timeout;
        let s = w.snapshot(&pki);
        assert_eq!(
            s.verdict.status(Severity::Error),
            DomainStatus::Inconclusive
        );
        let with_streak = |streak| Past {
            previous: Some(s.clone()),
            inconclusive_streak: streak,
            ..Past::default()
        };
        for streak in [0, 1, 3, 4] {
            assert_eq!(
                detect(&with_streak(streak), &s, &opts(T0)),
                Vec::new(),
                "streak {streak}"
            );
        }
        let c = one(detect(&with_streak(2), &s, &opts(T0)));
        assert_eq!(c.kind, ChangeKind::Inconclusive);
        assert_eq!(c.severity, Severity::Warning);
        assert_eq!(c.subject, Subject::domain(&dn("example.com")));
        assert_eq!(
            c.message,
            "example.com has been inconclusive for 3 runs in a row; could not test: \
             smtp.inconclusive (MX mx1.example.com, 192.0.2.1)"
        );
        // A failing domain is not inconclusive, whatever the streak.
        w.hosts[1].probes[0].1 = Probe::NoStarttls;
        let failing = w.snapshot(&pki);
        let p = Past {
            previous: Some(failing.clone()),
            inconclusive_streak: 2,
            ..Past::default()
        };
        assert_eq!(detect(&p, &failing, &opts(T0)), Vec::new());
    }

    #[test]
    fn reminders_repeat_open_failures_when_due_and_quiet() {
        let pki = Pki::new(FAR);
        let mut w = world(&pki);
        w.hosts[0].probes[0].1 = Probe::NoStarttls;
        let s = w.snapshot(&pki);
        let p = |last| Past {
            previous: Some(s.clone()),
            last_alert_at: last,
            ..Past::default()
        };
        let every_day = ChangeOptions {
            remind_every: Some(days(1)),
            ..opts(T0)
        };
        let c = one(detect(&p(Some(T0 - days(2))), &s, &every_day));
        assert_eq!(
            c,
            Change {
                kind: ChangeKind::Reminder,
                severity: Severity::Error,
                subject: Subject::domain(&dn("example.com")),
                message: "1 failure is still open: smtp.starttls.unavailable (MX \
                          mx1.example.com, 192.0.2.1)"
                    .to_owned(),
                fix: None,
            }
        );
        assert_eq!(
            kinds(&detect(&p(None), &s, &every_day)),
            [ChangeKind::Reminder]
        );
        assert_eq!(
            kinds(&detect(&p(Some(T0 - days(1))), &s, &every_day)),
            [ChangeKind::Reminder]
        );
        assert_eq!(
            detect(&p(Some(T0 - Duration::hours(12))), &s, &every_day),
            Vec::new()
        );
        assert_eq!(detect(&p(Some(T0 - days(30))), &s, &opts(T0)), Vec::new());
        // Another change speaks for itself: no reminder beside it.
        let other = World {
            rua: Vec::new(),
            ..w
        }
        .snapshot(&pki);
        assert_eq!(
            kinds(&detect(&p(Some(T0 - days(2))), &other, &every_day)),
            [ChangeKind::TlsrptRuaChanged]
        );
        // Nothing failing: nothing to remind of.
        let healthy = world(&pki).snapshot(&pki);
        let quiet = Past {
            previous: Some(healthy.clone()),
            ..Past::default()
        };
        assert_eq!(detect(&quiet, &healthy, &every_day), Vec::new());
    }

    #[test]
    fn merged_subjects_expand_to_their_addresses() {
        let f = Finding::new(
            Code::SmtpInconclusive,
            Severity::Error,
            subject(
                "mx1.example.com",
                None,
                Some("addresses 192.0.2.1, 2001:db8::1"),
            ),
            "m",
        );
        assert_eq!(
            keys(&f)
                .into_iter()
                .map(|k| (k.ip, k.location))
                .collect::<Vec<_>>(),
            vec![
                (Some(ip("192.0.2.1")), None),
                (Some(ip("2001:db8::1")), None)
            ]
        );
        let plain = Finding::new(
            Code::SmtpInconclusive,
            Severity::Error,
            subject("mx1.example.com", None, Some("addresses of nothing")),
            "m",
        );
        assert_eq!(
            keys(&plain)
                .into_iter()
                .map(|k| (k.ip, k.location))
                .collect::<Vec<_>>(),
            vec![(
                None,
                Some(Location::Text("addresses of nothing".to_owned()))
            )]
        );
    }
}
