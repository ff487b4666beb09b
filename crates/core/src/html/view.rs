//! What the templates show of one domain: the grid row (one cell per concern, each with a
//! state, a symbol and a word) and the detail section. Read from the verdict and the facts;
//! nothing is judged here that evaluation has not judged.

use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

use crate::alert::Change;
use crate::dns::Lookup;
use crate::evaluate::records::RecordOutcome;
use crate::evaluate::verdict::{Routing, SessionResult, SessionVerdict, Status};
use crate::facts::{FetchOutcome, MxHostFacts};
use crate::finding::{Finding, Severity};
use crate::output::{Tag, sts_line, tlsrpt_line};
use crate::result::DomainResult;
use crate::tls::cert::{CertSummary, describe};
use crate::tlsrpt::PolicyType;

use super::{StripRun, day, minute};

/// The state of a cell, a finding or a certificate: its colour (a CSS class), its symbol
/// and its word (for screen readers and greyscale print).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Fail,
    Unknown,
    Warn,
    Ok,
    /// Not applicable: nothing published, nothing to test.
    None,
}

impl State {
    pub(crate) const fn symbol(self) -> &'static str {
        match self {
            Self::Fail => "\u{2717}",
            Self::Unknown => "?",
            Self::Warn => "!",
            Self::Ok => "\u{2713}",
            Self::None => "\u{2013}",
        }
    }

    pub(crate) const fn word(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Unknown => "could not tell",
            Self::Warn => "warning",
            Self::Ok => "ok",
            Self::None => "not applicable",
        }
    }

    /// The state of a domain's tag.
    pub(crate) const fn of_tag(tag: Tag) -> Self {
        match tag {
            Tag::Ok => Self::Ok,
            Tag::Warn => Self::Warn,
            Tag::Fail => Self::Fail,
            Tag::Inconclusive => Self::Unknown,
        }
    }

    /// The state of a stored status (a history strip).
    pub(crate) const fn of_status(status: Status) -> Self {
        match status {
            Status::Pass => Self::Ok,
            Status::Inconclusive => Self::Unknown,
            Status::Fail => Self::Fail,
        }
    }

    /// The state of a finding.
    fn of_finding(f: &Finding) -> Self {
        match (f.inconclusive, f.severity) {
            (true, _) => Self::Unknown,
            (false, Severity::Error) => Self::Fail,
            (false, Severity::Warning) => Self::Warn,
            (false, Severity::Notice) => Self::None,
        }
    }
}

/// The rank of a tag for sorting and bucketing: failing first.
pub(crate) const fn tag_rank(tag: Tag) -> usize {
    match tag {
        Tag::Fail => 0,
        Tag::Inconclusive => 1,
        Tag::Warn => 2,
        Tag::Ok => 3,
    }
}

/// One grid cell. Its symbol comes from the style sheet (`#grid td.s-…::before`) and the
/// script sorts by the state's class, then the text, so the row carries each text once.
#[derive(Debug, Serialize)]
pub(crate) struct Cell {
    pub state: State,
    /// For the detail section's summary (the grid's symbols come from the style sheet).
    pub symbol: &'static str,
    pub word: &'static str,
    pub text: String,
}

impl Cell {
    fn new(state: State, text: impl Into<String>) -> Self {
        Self {
            state,
            symbol: state.symbol(),
            word: state.word(),
            text: text.into(),
        }
    }
}

/// The grid's concerns, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Mx,
    Sts,
    Fetch,
    Starttls,
    Certs,
    Dane,
    Tlsrpt,
}

/// The column headings, in order.
pub(crate) const COLUMNS: [&str; 7] = [
    "MX / routing",
    "MTA-STS",
    "Policy fetch",
    "STARTTLS",
    "Certificates",
    "DANE",
    "TLS-RPT",
];

/// The column a finding code belongs to (`gate.*` and the like belong to none).
fn column_of(code: &str) -> Option<Column> {
    let starts = |p: &str| code.starts_with(p);
    if starts("sts.fetch.") {
        Some(Column::Fetch)
    } else if starts("sts.") || starts("dns.sts-txt.") {
        Some(Column::Sts)
    } else if starts("mx.") || starts("dns.mx") || starts("dns.resolver.") {
        Some(Column::Mx)
    } else if starts("smtp.cert.") || starts("smtp.chain") || starts("smtp.empty-chain") {
        Some(Column::Certs)
    } else if starts("smtp.") {
        Some(Column::Starttls)
    } else if starts("dane.") {
        Some(Column::Dane)
    } else if starts("tlsrpt.") || starts("dns.tlsrpt-txt.") {
        Some(Column::Tlsrpt)
    } else {
        None
    }
}

/// The grid row of a domain.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub anchor: String,
    pub domain: String,
    pub status: Cell,
    /// `ok`, `warn`, `fail` or `inconclusive`: what the status filter matches.
    pub tag: &'static str,
    pub cells: Vec<Cell>,
    pub strip: Vec<StripCell>,
}

/// One run of a history strip.
#[derive(Debug, Serialize)]
pub(crate) struct StripCell {
    pub state: State,
    pub symbol: &'static str,
    pub title: String,
}

pub(crate) fn strip(runs: &[StripRun]) -> Vec<StripCell> {
    runs.iter()
        .map(|r| {
            let state = State::of_status(r.status);
            StripCell {
                state,
                symbol: state.symbol(),
                title: format!("{}: {}", minute(r.observed_at), r.status.as_str()),
            }
        })
        .collect()
}

pub(crate) fn tag_name(tag: Tag) -> &'static str {
    match tag {
        Tag::Ok => "ok",
        Tag::Warn => "warn",
        Tag::Fail => "fail",
        Tag::Inconclusive => "inconclusive",
    }
}

fn status_cell(tag: Tag) -> Cell {
    let state = State::of_tag(tag);
    Cell {
        state,
        symbol: state.symbol(),
        word: state.word(),
        text: tag.word().to_owned(),
    }
}

/// The grid row of a scanned domain.
pub(crate) fn row(
    anchor: String,
    r: &DomainResult,
    leaves: &Leaves,
    runs: &[StripRun],
    now: OffsetDateTime,
) -> Row {
    let tag = Tag::of(r);
    let cells = if r.facts.resolver_problem.is_some() {
        COLUMNS
            .iter()
            .map(|_| Cell::new(State::Unknown, "not judged: resolver unusable"))
            .collect()
    } else {
        [
            Column::Mx,
            Column::Sts,
            Column::Fetch,
            Column::Starttls,
            Column::Certs,
            Column::Dane,
            Column::Tlsrpt,
        ]
        .into_iter()
        .map(|c| cell(r, leaves, c, now))
        .collect()
    };
    Row {
        anchor,
        domain: r.verdict.domain.to_string(),
        status: status_cell(tag),
        tag: tag_name(tag),
        cells,
        strip: strip(runs),
    }
}

/// The grid row of a domain that ended without a report.
pub(crate) fn row_not_tested(anchor: String, domain: &str, why: &str) -> Row {
    let tag = Tag::Inconclusive;
    Row {
        anchor,
        domain: domain.to_owned(),
        status: status_cell(tag),
        tag: tag_name(tag),
        cells: COLUMNS
            .iter()
            .map(|_| Cell::new(State::Unknown, why))
            .collect(),
        strip: Vec::new(),
    }
}

/// One cell: its base state and text from the verdict, made worse by the findings of its
/// column (a failure, a could-not-tell, a warning).
fn cell(r: &DomainResult, leaves: &Leaves, column: Column, now: OffsetDateTime) -> Cell {
    let v = &r.verdict;
    let (base, text) = match column {
        Column::Mx => match v.routing {
            Routing::Mx => {
                let n = r.facts.hosts.len();
                (
                    State::Ok,
                    format!("{n} MX host{}", if n == 1 { "" } else { "s" }),
                )
            }
            Routing::ImplicitMx => (State::Ok, "implicit MX".to_owned()),
            Routing::NullMx => (State::None, "null MX (no mail)".to_owned()),
            Routing::NoSuchDomain => (State::Fail, "no such domain".to_owned()),
            Routing::Unknown => (State::Unknown, "could not resolve".to_owned()),
        },
        Column::Sts => match (&v.sts.policy, &v.sts.failure, v.sts.record) {
            (Some(p), _, _) => (State::Ok, format!("mode {}", p.mode)),
            (None, Some(f), _) => (State::Fail, format!("unusable: {}", f.result_type)),
            (None, None, Some(RecordOutcome::Valid)) => (State::Unknown, "record only".to_owned()),
            (None, None, Some(RecordOutcome::None)) => (State::None, "none".to_owned()),
            (None, None, Some(other)) => (State::Warn, format!("{other:?} record").to_lowercase()),
            (None, None, None) => (State::Unknown, "could not tell".to_owned()),
        },
        Column::Fetch => match &r.facts.policy_fetch {
            None => (State::None, "not fetched".to_owned()),
            Some(fetch) => match fetch.response() {
                Some(resp) if resp.status == 200 => (State::Ok, "HTTP 200".to_owned()),
                Some(resp) => (State::Fail, format!("HTTP {}", resp.status)),
                None => match fetch.attempts.last().map(|a| &a.outcome) {
                    Some(FetchOutcome::Timeout { phase }) => (
                        State::Unknown,
                        format!("timeout ({phase:?})").to_lowercase(),
                    ),
                    Some(FetchOutcome::DnsError { .. }) => (State::Fail, "DNS error".to_owned()),
                    Some(FetchOutcome::ConnectError { .. }) => {
                        (State::Fail, "cannot connect".to_owned())
                    }
                    Some(FetchOutcome::TlsError { .. }) => (State::Fail, "TLS error".to_owned()),
                    _ => (State::Fail, "no response".to_owned()),
                },
            },
        },
        Column::Starttls => {
            let total = v.sessions.len();
            let tls: Vec<&str> = v
                .sessions
                .iter()
                .filter_map(|s| s.tls_version.as_deref())
                .collect();
            if total == 0 {
                (State::None, "not probed".to_owned())
            } else {
                let mut versions: Vec<&str> = tls.clone();
                versions.sort_unstable();
                versions.dedup();
                let state = if tls.len() == total {
                    State::Ok
                } else {
                    State::Warn
                };
                (
                    state,
                    format!("{}/{total} TLS {}", tls.len(), versions.join(" "))
                        .trim_end()
                        .to_owned(),
                )
            }
        }
        Column::Certs => match leaves.soonest_mx_expiry() {
            None => (State::None, "none seen".to_owned()),
            Some(not_after) => {
                let days = (not_after - now).whole_days();
                let state = if not_after <= now || days < 7 {
                    State::Fail
                } else if days < 21 {
                    State::Warn
                } else {
                    State::Ok
                };
                let text = if not_after <= now {
                    format!("expired {}", day(not_after))
                } else {
                    format!("{} ({days} d)", day(not_after))
                };
                (state, text)
            }
        },
        Column::Dane => {
            let dane: Vec<&SessionVerdict> = v
                .sessions
                .iter()
                .filter(|s| s.policy_type == PolicyType::Tlsa)
                .collect();
            if dane.is_empty() {
                (State::None, "no TLSA".to_owned())
            } else {
                let ok = dane
                    .iter()
                    .filter(|s| s.result == SessionResult::Success)
                    .count();
                (State::Ok, format!("{ok}/{} pass", dane.len()))
            }
        }
        Column::Tlsrpt => {
            if !v.tlsrpt_rua.is_empty() {
                // Each destination with whether reports reach it, as the text output says.
                (State::Ok, tlsrpt_line(r))
            } else if r.facts.tlsrpt_txt.failure().is_some() {
                (State::Unknown, "could not tell".to_owned())
            } else {
                (State::None, "none".to_owned())
            }
        }
    };
    // The findings of the column: the worst state wins (notices do not change it).
    let worst = v
        .findings
        .iter()
        .filter(|f| column_of(&f.code) == Some(column))
        .map(State::of_finding)
        .filter(|s| *s != State::None)
        .min();
    let state = match worst {
        Some(w) if w < base => w,
        _ => base,
    };
    Cell::new(state, text)
}

/// The leaf certificates of a domain, each described once: every MX address's and the
/// policy host's.
pub(crate) struct Leaves {
    /// (MX exchange, address, certificate).
    pub mx: Vec<(String, IpAddr, CertSummary)>,
    /// (policy host, certificate).
    pub policy: Option<(String, CertSummary)>,
}

impl Leaves {
    pub(crate) fn of(r: &DomainResult) -> Self {
        let mx = r
            .facts
            .hosts
            .iter()
            .flat_map(|h| {
                h.sessions.iter().filter_map(move |s| {
                    let leaf = s.tls.as_ref()?.chain.first()?;
                    let c = describe(leaf.as_ref()).ok()?;
                    Some((h.exchange.clone(), s.address.ip(), c))
                })
            })
            .collect();
        let policy = r.facts.policy_fetch.as_ref().and_then(|fetch| {
            let leaf = fetch.response()?.chain.first()?;
            let c = describe(leaf).ok()?;
            let host = fetch
                .url
                .strip_prefix("https://")
                .and_then(|u| u.split('/').next())
                .unwrap_or(&fetch.url);
            Some((host.to_owned(), c))
        });
        Self { mx, policy }
    }

    fn soonest_mx_expiry(&self) -> Option<OffsetDateTime> {
        self.mx.iter().map(|(_, _, c)| c.not_after).min()
    }

    fn mx_leaf(&self, exchange: &str, ip: IpAddr) -> Option<&CertSummary> {
        self.mx
            .iter()
            .find(|(x, a, _)| x == exchange && *a == ip)
            .map(|(_, _, c)| c)
    }
}

/// The detail section of a domain.
#[derive(Debug, Serialize)]
pub(crate) struct Detail {
    pub anchor: String,
    pub domain: String,
    pub status: Cell,
    pub observed_at: String,
    pub sts: String,
    pub tlsrpt: String,
    pub routing: Option<String>,
    pub hosts: Vec<HostView>,
    pub findings: Vec<FindingView>,
    pub policy: Option<PolicyView>,
    pub changes: Vec<ChangeView>,
    pub report: Option<String>,
    /// The report's size when only its start is shown ([`REPORT_SHOWN`]).
    pub report_cut_from: Option<usize>,
    pub not_tested: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct HostView {
    pub exchange: String,
    pub preference: u16,
    pub implicit: bool,
    pub tlsa: Vec<String>,
    pub addresses: Vec<AddressView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AddressView {
    pub ip: String,
    pub policy: &'static str,
    pub result: Cell,
    pub tls: String,
    pub helo: String,
    pub cert: Option<CertView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CertView {
    pub subject: String,
    pub issuer: String,
    pub names: String,
    pub not_after: String,
    pub state: State,
    pub symbol: &'static str,
    pub left: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct FindingView {
    pub state: State,
    pub symbol: &'static str,
    pub severity: &'static str,
    pub code: String,
    pub subject: String,
    pub message: String,
    pub fix: Option<String>,
    pub reports: Option<String>,
    pub could_not_test: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct PolicyView {
    pub url: String,
    pub status: String,
    pub content_type: String,
    pub body: String,
    pub truncated: bool,
    /// The body's size when only its start is shown ([`POLICY_SHOWN`]).
    pub cut_from: Option<usize>,
}

/// The most of a policy body a page shows: a real policy is a few hundred bytes; a body up
/// to the fetch limit (64 KiB) on thousands of domains would make the page unusable.
pub(crate) const POLICY_SHOWN: usize = 4096;

/// The most of a synthetic report a page shows (its policy-string carries the policy).
pub(crate) const REPORT_SHOWN: usize = 16_384;

/// The start of `text`, at most `max` bytes (on a character boundary), and the full size
/// when it was cut.
pub(crate) fn at_most(text: &str, max: usize) -> (String, Option<usize>) {
    if text.len() <= max {
        return (text.to_owned(), None);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), Some(text.len()))
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangeView {
    pub state: State,
    pub symbol: &'static str,
    pub severity: &'static str,
    pub kind: String,
    pub domain: String,
    pub anchor: String,
    pub message: String,
    pub fix: Option<String>,
    pub when: String,
}

pub(crate) fn change_view(
    c: &Change,
    domain: &str,
    anchor: &str,
    when: OffsetDateTime,
) -> ChangeView {
    let state = match c.severity {
        Severity::Error => State::Fail,
        Severity::Warning => State::Warn,
        Severity::Notice => State::None,
    };
    ChangeView {
        state,
        symbol: state.symbol(),
        severity: c.severity.as_str(),
        kind: serde_json::to_value(c.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        domain: domain.to_owned(),
        anchor: anchor.to_owned(),
        message: c.message.clone(),
        fix: c.fix.clone(),
        when: minute(when),
    }
}

fn finding_view(f: &Finding) -> FindingView {
    let state = State::of_finding(f);
    let reports = f.result_type.map(|rt| {
        let mut line = rt.to_string();
        if let Some(pt) = f.policy_type {
            line.push_str(&format!(" ({pt})"));
        }
        if let Some(code) = &f.failure_reason_code {
            line.push_str(&format!(", {code}"));
        }
        line
    });
    FindingView {
        state,
        symbol: state.symbol(),
        severity: f.severity.as_str(),
        code: f.code.to_string(),
        subject: f.subject.to_string(),
        message: f.message.clone(),
        fix: f.fix.clone(),
        reports,
        could_not_test: f.inconclusive,
    }
}

fn cert_view(c: &CertSummary, now: OffsetDateTime) -> CertView {
    let days = (c.not_after - now).whole_days();
    let (state, left) = if c.not_after <= now {
        (State::Fail, "expired".to_owned())
    } else if days < 7 {
        (State::Fail, format!("{days} days left"))
    } else if days < 21 {
        (State::Warn, format!("{days} days left"))
    } else {
        (State::Ok, format!("{days} days left"))
    };
    CertView {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        names: c.dns_names.join(", "),
        not_after: minute(c.not_after),
        state,
        symbol: state.symbol(),
        left,
    }
}

/// The detail section of a scanned domain; `report` is the synthetic TLS-RPT report as JSON.
pub(crate) fn detail(
    anchor: String,
    r: &DomainResult,
    leaves: &Leaves,
    changes: Vec<ChangeView>,
    report: Option<String>,
    now: OffsetDateTime,
) -> Detail {
    let v = &r.verdict;
    let (report, report_cut_from) = match report {
        Some(text) => {
            let (shown, cut) = at_most(&text, REPORT_SHOWN);
            (Some(shown), cut)
        }
        None => (None, None),
    };
    let routing = match v.routing {
        Routing::NullMx => Some("null MX: the domain accepts no mail".to_owned()),
        Routing::NoSuchDomain => Some("the domain does not exist".to_owned()),
        Routing::Unknown if matches!(r.facts.mx, Lookup::Bogus { .. }) => {
            Some("DNSSEC-bogus: validating senders cannot route mail to the domain".to_owned())
        }
        Routing::Unknown => Some("could not be resolved".to_owned()),
        Routing::ImplicitMx | Routing::Mx => None,
    };
    let hosts = r
        .facts
        .hosts
        .iter()
        .map(|h| {
            let addresses = v
                .sessions
                .iter()
                .filter(|s| Some(&s.mx) == h.name.as_ref())
                .map(|s| address_view(h, s, leaves, now))
                .collect();
            HostView {
                exchange: h.exchange.clone(),
                preference: h.preference,
                implicit: h.implicit,
                tlsa: h
                    .tlsa
                    .as_ref()
                    .and_then(Lookup::records)
                    .map(|rs| rs.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
                addresses,
            }
        })
        .collect();
    let mut findings: Vec<&Finding> = v.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let policy = r
        .facts
        .policy_fetch
        .as_ref()
        .map(|fetch| match fetch.response() {
            Some(resp) => {
                let (body, cut_from) = at_most(&resp.body, POLICY_SHOWN);
                PolicyView {
                    url: fetch.url.clone(),
                    status: format!("HTTP {}", resp.status),
                    content_type: resp.content_type.clone().unwrap_or_default(),
                    body,
                    truncated: resp.body_truncated,
                    cut_from,
                }
            }
            None => PolicyView {
                url: fetch.url.clone(),
                status: "no HTTP response".to_owned(),
                content_type: String::new(),
                body: String::new(),
                truncated: false,
                cut_from: None,
            },
        });
    let (sts, tlsrpt) = if r.facts.resolver_problem.is_some() {
        let line = "not judged: the resolver cannot be used".to_owned();
        (line.clone(), line)
    } else {
        (sts_line(r), tlsrpt_line(r))
    };
    Detail {
        anchor,
        domain: v.domain.to_string(),
        status: status_cell(Tag::of(r)),
        observed_at: minute(r.facts.observed_at),
        sts,
        tlsrpt,
        routing,
        hosts,
        findings: findings.into_iter().map(finding_view).collect(),
        policy,
        changes,
        report_cut_from,
        report,
        not_tested: None,
    }
}

/// The detail section of a domain that ended without a report.
pub(crate) fn detail_not_tested(anchor: String, domain: &str, why: &str) -> Detail {
    Detail {
        anchor,
        domain: domain.to_owned(),
        status: status_cell(Tag::Inconclusive),
        observed_at: String::new(),
        sts: String::new(),
        tlsrpt: String::new(),
        routing: None,
        hosts: Vec::new(),
        findings: Vec::new(),
        policy: None,
        changes: Vec::new(),
        report: None,
        report_cut_from: None,
        not_tested: Some(why.to_owned()),
    }
}

fn address_view(
    host: &MxHostFacts,
    s: &SessionVerdict,
    leaves: &Leaves,
    now: OffsetDateTime,
) -> AddressView {
    let policy = match s.policy_type {
        PolicyType::Tlsa => "DANE",
        PolicyType::Sts => "MTA-STS",
        PolicyType::NoPolicyFound => "none",
    };
    let result = match &s.result {
        SessionResult::Success => Cell::new(State::Ok, "pass"),
        SessionResult::Failure { failures } => Cell::new(
            State::Fail,
            failures
                .iter()
                .map(|f| format!("{} ({})", f.result_type, f.reason_code))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        SessionResult::Inconclusive { reason } => Cell::new(State::Unknown, reason.clone()),
    };
    let cert = leaves
        .mx_leaf(&host.exchange, s.ip)
        .map(|c| cert_view(c, now));
    AddressView {
        ip: s.ip.to_string(),
        policy,
        result,
        tls: s.tls_version.clone().unwrap_or_else(|| "no TLS".to_owned()),
        helo: s.helo.clone().unwrap_or_default(),
        cert,
    }
}
