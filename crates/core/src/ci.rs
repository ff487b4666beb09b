//! The CI outputs of `scan` and `gate`: JUnit XML, GitHub Actions workflow commands
//! (annotations) and the Markdown for `$GITHUB_STEP_SUMMARY`.
//!
//! All three read the same per-domain results ([`CiDomain`]) and agree on one [`Status`] per
//! domain: it *fails* when one of its findings fails the `--fail-on` threshold
//! ([`Finding::fails`]), else it is *inconclusive* when something could not be tested, else
//! it *passes*. In JUnit every domain is a test suite with the same fixed list of checks
//! ([`Check`]), so a dashboard can follow each check from run to run. Pure: results in,
//! strings out; the run's duration is a parameter and the clock is never read.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::domain::DomainName;
use crate::evaluate::verdict::{DomainVerdict, Status};
use crate::finding::{Counts, Finding, Severity};

/// One domain's result as CI outputs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiDomain {
    /// The domain that was judged.
    pub domain: DomainName,
    /// Everything said about it, in the order the checks ran.
    pub findings: Vec<Finding>,
    /// Something could not be tested for this domain (exit status 3 unless it also fails).
    pub inconclusive: bool,
}

/// The word the step summary shows: `pass`, `FAIL` or `inconclusive`.
const fn summary_word(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::Inconclusive => "inconclusive",
    }
}

impl CiDomain {
    /// A judged domain.
    pub fn of(verdict: &DomainVerdict) -> Self {
        Self {
            domain: verdict.domain.clone(),
            findings: verdict.findings.clone(),
            inconclusive: verdict.inconclusive,
        }
    }

    /// A domain that ended without a verdict (its deadline passed, an internal error).
    pub fn not_tested(domain: DomainName) -> Self {
        Self {
            domain,
            findings: Vec::new(),
            inconclusive: true,
        }
    }

    /// The domain's status at `fail_on` ([`Status::of`]); a finding that could not be tested
    /// makes it inconclusive even when the domain is not marked so.
    pub fn outcome(&self, fail_on: Severity) -> Status {
        let untested = self.inconclusive || self.findings.iter().any(|f| f.inconclusive);
        Status::of(&self.findings, untested, fail_on)
    }

    /// The first finding that fails at `fail_on`.
    fn first_failure(&self, fail_on: Severity) -> Option<&Finding> {
        self.findings.iter().find(|f| f.fails(fail_on))
    }

    /// The domain is inconclusive, yet no finding says what could not be tested (a domain
    /// that ran out of time has no findings at all).
    fn unexplained_inconclusive(&self) -> bool {
        self.inconclusive && !self.findings.iter().any(|f| f.inconclusive)
    }
}

/// One of the checks every domain is judged by: a JUnit test case per domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// Mail routing: the MX records and the addresses of the MX hosts.
    DnsMx,
    /// The `_mta-sts` TXT record (RFC 8461 §3.1).
    StsRecord,
    /// The MTA-STS policy: its fetch, its body and what it means for the MX hosts
    /// (RFC 8461 §3.2, §3.3, §4).
    StsPolicy,
    /// The `_smtp._tls` TXT record and its report destinations (RFC 8460 §3).
    TlsRpt,
    /// The SMTP sessions: STARTTLS, the handshake and the certificates.
    Starttls,
    /// DANE for SMTP: TLSA records and their match with the presented chain (RFC 7672).
    Dane,
    /// What a candidate record or policy would change (the `gate` command).
    Candidate,
    /// Findings whose code belongs to none of the checks above. Kept in the fixed list so
    /// that a finding with a new code can never vanish from the report (and turn a failing
    /// run green); every code in `docs/findings.md` maps elsewhere, except
    /// [`crate::finding::Code::FindingsLeftOut`], which is about the list of findings, not a
    /// check.
    Other,
}

/// Which check a finding belongs to, by the dotted prefix of its code. A prefix matches
/// whole segments only (`dns.mx` covers `dns.mx.failed`, not `dns.mx-address.failed`), and
/// no prefix here is a segment prefix of another, so every code maps to exactly one check.
const CHECK_PREFIXES: &[(&str, Check)] = &[
    ("mx", Check::DnsMx),
    ("dns.mx", Check::DnsMx),
    ("dns.mx-address", Check::DnsMx),
    // The resolver itself: every DNS answer about the domain depends on it.
    ("dns.resolver", Check::DnsMx),
    ("sts.txt", Check::StsRecord),
    ("dns.sts-txt", Check::StsRecord),
    ("sts.none", Check::StsRecord),
    ("sts.fetch", Check::StsPolicy),
    ("sts.policy", Check::StsPolicy),
    ("sts.enforce", Check::StsPolicy),
    ("tlsrpt", Check::TlsRpt),
    ("dns.tlsrpt-txt", Check::TlsRpt),
    ("smtp", Check::Starttls),
    ("dane", Check::Dane),
    ("tlsa", Check::Dane),
    ("gate", Check::Candidate),
];

impl Check {
    /// Every check, in the order the JUnit output lists them.
    pub const ALL: [Self; 8] = [
        Self::DnsMx,
        Self::StsRecord,
        Self::StsPolicy,
        Self::TlsRpt,
        Self::Starttls,
        Self::Dane,
        Self::Candidate,
        Self::Other,
    ];

    /// The test-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DnsMx => "DNS and MX",
            Self::StsRecord => "MTA-STS record",
            Self::StsPolicy => "MTA-STS policy",
            Self::TlsRpt => "TLS-RPT",
            Self::Starttls => "STARTTLS and certificates",
            Self::Dane => "DANE",
            Self::Candidate => "Candidate change",
            Self::Other => "Other findings",
        }
    }

    /// The check a finding code belongs to; [`Check::Other`] for a code no prefix covers.
    pub fn of(code: &str) -> Self {
        CHECK_PREFIXES
            .iter()
            .find(|(prefix, _)| covers(prefix, code))
            .map_or(Self::Other, |&(_, check)| check)
    }
}

/// Whether the dotted `prefix` covers `code` in whole segments.
fn covers(prefix: &str, code: &str) -> bool {
    code.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

// ---------------------------------------------------------------------------------------
// JUnit XML
// ---------------------------------------------------------------------------------------

/// The JUnit XML report of a run, as GitLab, Jenkins and the GitHub test reporters read it.
///
/// `<testsuites>` holds one `<testsuite>` per domain (named after it), and each suite one
/// `<testcase classname="<domain>" name="<check>">` per [`Check`], always the same list. A
/// test case carries a `<failure>` when a finding of its check fails at `fail_on` (message
/// and type are those of the first one; the text lists them all, with fixes), else a
/// `<skipped>` when something could not be tested, and a `<system-out>` with the findings
/// that do not fail. `errors` is always 0: mxprobe's own trouble is never a test result.
/// `elapsed` (the run's duration) becomes the `time` of `<testsuites>`.
pub fn junit_xml(
    suite: &str,
    domains: &[CiDomain],
    fail_on: Severity,
    elapsed: Duration,
) -> String {
    let suites: Vec<SuiteReport<'_>> = domains
        .iter()
        .map(|d| SuiteReport::new(d, fail_on))
        .collect();
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_junit(&mut writer, suite, &suites, elapsed).expect("writing into a Vec<u8> cannot fail");
    let mut xml = String::from_utf8(writer.into_inner())
        .expect("quick-xml writes the UTF-8 text it is given and ASCII markup");
    xml.push('\n');
    xml
}

/// One domain's test suite, decided before anything is written.
struct SuiteReport<'a> {
    domain: &'a DomainName,
    cases: Vec<CaseReport<'a>>,
}

/// One check of one domain.
struct CaseReport<'a> {
    check: Check,
    /// Findings that fail at the threshold.
    failing: Vec<&'a Finding>,
    /// Findings that say something could not be tested.
    untested: Vec<&'a Finding>,
    /// Findings below the threshold.
    below: Vec<&'a Finding>,
    /// The domain is inconclusive with no finding saying why, so no check of it is known to
    /// pass.
    domain_untested: bool,
}

impl<'a> SuiteReport<'a> {
    fn new(d: &'a CiDomain, fail_on: Severity) -> Self {
        let mut cases: Vec<CaseReport<'a>> = Check::ALL
            .iter()
            .map(|&check| CaseReport {
                check,
                failing: Vec::new(),
                untested: Vec::new(),
                below: Vec::new(),
                domain_untested: d.unexplained_inconclusive(),
            })
            .collect();
        for f in &d.findings {
            let check = Check::of(&f.code);
            let case = cases
                .iter_mut()
                .find(|c| c.check == check)
                .expect("Check::ALL lists every check");
            if f.fails(fail_on) {
                case.failing.push(f);
            } else if f.inconclusive {
                case.untested.push(f);
            } else {
                case.below.push(f);
            }
        }
        Self {
            domain: &d.domain,
            cases,
        }
    }

    fn failures(&self) -> usize {
        self.cases.iter().filter(|c| !c.failing.is_empty()).count()
    }

    fn skipped(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.failing.is_empty() && c.skipped_message().is_some())
            .count()
    }
}

impl CaseReport<'_> {
    /// The `<skipped message>` of a case that has no failure but was not fully tested.
    fn skipped_message(&self) -> Option<String> {
        if let Some(first) = self.untested.first() {
            Some(format!("could not test: {}", first.message))
        } else if self.domain_untested {
            Some(
                "could not test: the domain's result is inconclusive and no finding says \
                 which check could not be tested"
                    .to_owned(),
            )
        } else {
            None
        }
    }

    /// The `<system-out>` text: what could not be tested and what is below the threshold.
    fn system_out(&self) -> String {
        let mut out = String::new();
        for f in &self.untested {
            out.push_str("could not test: ");
            out.push_str(&describe(f));
            out.push('\n');
        }
        for f in &self.below {
            out.push_str(&describe(f));
            out.push('\n');
        }
        out
    }
}

/// One finding as a line of text (with its fix on the next line), for the JUnit bodies.
fn describe(f: &Finding) -> String {
    let mut s = format!("{} {}", f.severity, f.code);
    let subject = f.subject.to_string();
    if !subject.is_empty() {
        let _ = write!(s, " ({subject})");
    }
    let _ = write!(s, ": {}", f.message);
    if let Some(fix) = &f.fix {
        let _ = write!(s, "\n  fix: {fix}");
    }
    s
}

fn write_junit(
    w: &mut Writer<Vec<u8>>,
    name: &str,
    suites: &[SuiteReport<'_>],
    elapsed: Duration,
) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let tests = suites.len() * Check::ALL.len();
    let failures: usize = suites.iter().map(SuiteReport::failures).sum();
    let skipped: usize = suites.iter().map(SuiteReport::skipped).sum();
    w.create_element("testsuites")
        .with_attribute(("name", &*xml_safe(name)))
        .with_attribute(("tests", tests.to_string().as_str()))
        .with_attribute(("failures", failures.to_string().as_str()))
        .with_attribute(("errors", "0"))
        .with_attribute(("skipped", skipped.to_string().as_str()))
        // Seconds with a fraction, as the JUnit schema's `time` (xs:decimal) wants.
        .with_attribute(("time", format!("{:.3}", elapsed.as_secs_f64()).as_str()))
        .write_inner_content(|w| {
            for suite in suites {
                write_suite(w, suite)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_suite(w: &mut Writer<Vec<u8>>, suite: &SuiteReport<'_>) -> io::Result<()> {
    let domain = suite.domain.as_str();
    w.create_element("testsuite")
        .with_attribute(("name", domain))
        .with_attribute(("tests", suite.cases.len().to_string().as_str()))
        .with_attribute(("failures", suite.failures().to_string().as_str()))
        .with_attribute(("errors", "0"))
        .with_attribute(("skipped", suite.skipped().to_string().as_str()))
        .write_inner_content(|w| {
            for case in &suite.cases {
                write_case(w, domain, case)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, domain: &str, case: &CaseReport<'_>) -> io::Result<()> {
    let element = w
        .create_element("testcase")
        .with_attribute(("classname", domain))
        .with_attribute(("name", case.check.name()));
    let skipped = case.skipped_message();
    let out = case.system_out();
    if case.failing.is_empty() && skipped.is_none() && out.is_empty() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|w| {
        // The JUnit schema orders a test case's children: failure or skipped first, then
        // system-out.
        if let Some(first) = case.failing.first() {
            let text: Vec<String> = case.failing.iter().map(|f| describe(f)).collect();
            w.create_element("failure")
                .with_attribute(("message", &*xml_safe(&first.message)))
                .with_attribute(("type", &*xml_safe(&first.code)))
                .write_text_content(BytesText::new(&xml_safe(&text.join("\n"))))?;
        } else if let Some(message) = &skipped {
            w.create_element("skipped")
                .with_attribute(("message", &*xml_safe(message)))
                .write_empty()?;
        }
        if !out.is_empty() {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&xml_safe(&out)))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Replaces the characters XML 1.0 cannot carry at all, not even escaped (control
/// characters other than tab, LF and CR, and U+FFFE/U+FFFF; XML 1.0 §2.2 `Char`), with
/// U+FFFD, so that text taken from the network (a banner, a policy line) cannot make the
/// report ill-formed. quick-xml escapes the rest (`<`, `&`, quotes).
fn xml_safe(text: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    }
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// GitHub Actions annotations
// ---------------------------------------------------------------------------------------

/// GitHub Actions workflow commands, one line per finding:
/// `::error title=mxprobe <code> (<domain>)::<subject>: <message>` (then `Fix: …` on a new
/// line of the annotation) for findings that fail at `fail_on`, `::warning` for the other
/// warnings and for what could not be tested, `::notice` for notices. A domain that is
/// inconclusive with no finding saying why gets one `::warning` of its own. Every line ends
/// with `\n`.
pub fn github_annotations(domains: &[CiDomain], fail_on: Severity) -> String {
    let mut out = String::new();
    for d in domains {
        for f in &d.findings {
            let level = if f.fails(fail_on) {
                "error"
            } else if f.inconclusive {
                "warning"
            } else {
                match f.severity {
                    Severity::Notice => "notice",
                    Severity::Warning => "warning",
                    // An error always fails unless it is "could not test", handled above.
                    Severity::Error => "error",
                }
            };
            let title = format!("mxprobe {} ({})", f.code, d.domain);
            let mut message = String::new();
            if f.inconclusive {
                message.push_str("could not test: ");
            }
            let subject = f.subject.to_string();
            if !subject.is_empty() {
                let _ = write!(message, "{subject}: ");
            }
            message.push_str(&f.message);
            if let Some(fix) = &f.fix {
                let _ = write!(message, "\nFix: {fix}");
            }
            push_command(&mut out, level, &title, &message);
        }
        if d.unexplained_inconclusive() {
            push_command(
                &mut out,
                "warning",
                &format!("mxprobe inconclusive ({})", d.domain),
                &format!(
                    "could not test {}: its result is inconclusive and no finding says which \
                     check could not be tested",
                    d.domain
                ),
            );
        }
    }
    out
}

/// Appends `::<level> title=<title>::<message>` and a newline.
fn push_command(out: &mut String, level: &str, title: &str, message: &str) {
    let _ = writeln!(
        out,
        "::{level} title={}::{}",
        escape_property(title),
        escape_data(message)
    );
}

/// Escapes a workflow command's message ("data"): `%`, CR and LF become `%25`, `%0D` and
/// `%0A`, as the runner decodes them (GitHub's "Workflow commands for GitHub Actions";
/// `escapeData` in `@actions/core`). `%` goes first so nothing is escaped twice.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value: as data, and `:` and `,` (which end a
/// value) become `%3A` and `%2C` (`escapeProperty` in `@actions/core`).
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

// ---------------------------------------------------------------------------------------
// Step summary (Markdown)
// ---------------------------------------------------------------------------------------

/// Markdown for `$GITHUB_STEP_SUMMARY`: a `##` heading with `title`, the totals
/// (`N domains: X failing, Y inconclusive, Z passing`), a table with one row per domain
/// (result, errors, warnings, the first failing finding's code), then for every failing or
/// inconclusive domain the list of its findings with their fixes.
pub fn step_summary(title: &str, domains: &[CiDomain], fail_on: Severity) -> String {
    let outcomes: Vec<Status> = domains.iter().map(|d| d.outcome(fail_on)).collect();
    let count = |o: Status| outcomes.iter().filter(|&&x| x == o).count();
    let mut md = String::new();
    let _ = writeln!(md, "## {}\n", md_text(title, " "));
    let _ = writeln!(
        md,
        "{} {}: {} failing, {} inconclusive, {} passing (failing means a finding of \
         severity {fail_on} or worse).\n",
        domains.len(),
        if domains.len() == 1 {
            "domain"
        } else {
            "domains"
        },
        count(Status::Fail),
        count(Status::Inconclusive),
        count(Status::Pass),
    );
    if domains.is_empty() {
        return md;
    }
    md.push_str("| domain | result | errors | warnings | first failure |\n");
    md.push_str("| --- | --- | ---: | ---: | --- |\n");
    for (d, outcome) in domains.iter().zip(&outcomes) {
        let counts = Counts::of(&d.findings);
        let first = d
            .first_failure(fail_on)
            .map_or(Cow::Borrowed("—"), |f| Cow::Owned(md_cell(&f.code)));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {first} |",
            md_cell(d.domain.as_str()),
            summary_word(*outcome),
            counts.error,
            counts.warning,
        );
    }
    for (d, outcome) in domains.iter().zip(&outcomes) {
        if *outcome == Status::Pass {
            continue;
        }
        let _ = writeln!(
            md,
            "\n### {}: {}\n",
            md_text(d.domain.as_str(), " "),
            summary_word(*outcome)
        );
        for f in &d.findings {
            let label = if f.fails(fail_on) {
                format!("FAIL, {}", f.severity)
            } else if f.inconclusive {
                "could not test".to_owned()
            } else {
                f.severity.to_string()
            };
            let _ = write!(md, "- **{label}** {}", md_text(&f.code, " "));
            let subject = f.subject.to_string();
            if !subject.is_empty() {
                let _ = write!(md, " ({})", md_text(&subject, " "));
            }
            let _ = write!(md, ": {}", md_text(&f.message, " "));
            if let Some(fix) = &f.fix {
                let _ = write!(md, " Fix: {}", md_text(fix, " "));
            }
            md.push('\n');
        }
        if d.unexplained_inconclusive() {
            md.push_str(
                "- **could not test** the result is inconclusive and no finding says which \
                 check could not be tested\n",
            );
        }
    }
    md
}

/// Text for a table cell: Markdown escaped, line breaks as `<br>` (a cell is one line, and
/// GFM's `\|` keeps a pipe from ending it; GitHub Flavored Markdown spec §4.10).
fn md_cell(text: &str) -> String {
    md_text(text, "<br>")
}

/// Text that Markdown must show as written: ASCII punctuation that could start emphasis, a
/// link, code, HTML, an entity or a table cell is backslash-escaped (CommonMark §2.4 allows
/// the escape before any ASCII punctuation), and every line break becomes `newline`.
fn md_text(text: &str, newline: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str(newline);
            }
            '\n' => out.push_str(newline),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use quick_xml::escape::resolve_predefined_entity;
    use quick_xml::{Reader, XmlVersion};

    use super::*;
    use crate::finding::{Code, Subject};

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn finding(code: &'static str, severity: Severity, domain: &DomainName, msg: &str) -> Finding {
        coded(code, severity, Subject::domain(domain), msg)
    }

    /// A finding with any code, as a stored one (or one of another version) may carry.
    fn coded(code: &'static str, severity: Severity, subject: Subject, msg: &str) -> Finding {
        Finding {
            code: code.into(),
            ..Finding::new(Code::FindingsLeftOut, severity, subject, msg)
        }
    }

    // ------------------------------------------------------------------ check mapping

    use crate::finding::code::tests::documented_codes;

    #[test]
    fn every_documented_code_maps_to_a_named_check() {
        let codes = documented_codes();
        // The extraction itself works: codes from several tables and both code columns.
        for known in [
            "sts.txt.none",
            "tlsrpt.txt.none",
            "sts.policy.mx-not-covered",
            "sts.fetch.content-type",
            "mx.null-with-policy",
            "dns.mx-address.partial",
            "smtp.inconclusive",
            "smtp.cert.unsupported-signature-algorithm",
            "dane.dane-ta-<problem>",
        ] {
            assert!(codes.iter().any(|c| c == known), "{known} not extracted");
        }
        assert!(codes.iter().all(|c| !c.is_empty() && !c.contains(' ')));
        let catalogue = Code::examples().into_iter().map(|c| c.text().into_owned());
        for code in codes.iter().cloned().chain(catalogue) {
            let code = &code;
            // The count of findings left out belongs to no check (see `Check::Other`).
            if code == &Code::FindingsLeftOut.text() {
                assert_eq!(Check::of(code), Check::Other);
                continue;
            }
            assert_ne!(
                Check::of(code),
                Check::Other,
                "{code} maps to no named check"
            );
        }
    }

    #[test]
    fn codes_map_to_their_checks() {
        let cases: &[(&str, Check)] = &[
            ("mx.null", Check::DnsMx),
            ("mx.cname", Check::DnsMx),
            ("dns.mx.failed", Check::DnsMx),
            ("dns.mx-address.failed", Check::DnsMx),
            ("dns.mx-address.partial", Check::DnsMx),
            ("dns.mx-address.bogus", Check::DnsMx),
            ("dns.resolver.unusable", Check::DnsMx),
            ("sts.txt.several", Check::StsRecord),
            ("dns.sts-txt.failed", Check::StsRecord),
            ("sts.none", Check::StsRecord),
            ("sts.fetch.failed", Check::StsPolicy),
            ("sts.fetch.content-type", Check::StsPolicy),
            ("sts.policy.mx-not-covered", Check::StsPolicy),
            ("sts.enforce.no-deliverable-mx", Check::StsPolicy),
            ("tlsrpt.txt.legacy-name", Check::TlsRpt),
            ("tlsrpt.rua.none-usable", Check::TlsRpt),
            ("tlsrpt.none", Check::TlsRpt),
            ("dns.tlsrpt-txt.failed", Check::TlsRpt),
            ("smtp.inconclusive", Check::Starttls),
            ("smtp.not-tested", Check::Starttls),
            ("smtp.port-blocked", Check::Starttls),
            ("smtp.cert.name-mismatch", Check::Starttls),
            ("smtp.rejected-550", Check::Starttls),
            ("dane.dane-no-match", Check::Dane),
            ("dane.dane-ta-name-mismatch", Check::Dane),
            ("tlsa.unusable", Check::Dane),
            ("gate.policy.mx-dropped", Check::Candidate),
            // Whole segments only.
            ("mxx.y", Check::Other),
            ("sts.nonexistent", Check::Other),
            ("sts", Check::Other),
            ("dns.caa.failed", Check::Other),
            ("", Check::Other),
        ];
        for (code, want) in cases {
            assert_eq!(Check::of(code), *want, "{code}");
        }
    }

    #[test]
    fn no_prefix_overlaps_another() {
        for (i, (a, _)) in CHECK_PREFIXES.iter().enumerate() {
            for (b, _) in &CHECK_PREFIXES[i + 1..] {
                assert!(!covers(a, b) && !covers(b, a), "{a} and {b} overlap");
            }
        }
        let named: BTreeSet<Check> = CHECK_PREFIXES.iter().map(|&(_, c)| c).collect();
        let all: BTreeSet<Check> = Check::ALL
            .into_iter()
            .filter(|&c| c != Check::Other)
            .collect();
        assert_eq!(named, all, "every named check has a prefix");
        let names: BTreeSet<&str> = Check::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Check::ALL.len(), "check names are distinct");
    }

    // ------------------------------------------------------------------ outcomes

    #[test]
    fn outcome_follows_threshold_and_untested() {
        let d = name("example.com");
        let warn = finding("mx.cname", Severity::Warning, &d, "alias");
        let err = finding("mx.nxdomain", Severity::Error, &d, "gone");
        let untested = finding("smtp.inconclusive", Severity::Warning, &d, "421").could_not_test();
        let cases: &[(&[&Finding], bool, Severity, Status)] = &[
            (&[], false, Severity::Error, Status::Pass),
            (&[&warn], false, Severity::Error, Status::Pass),
            (&[&warn], false, Severity::Warning, Status::Fail),
            (&[&err], false, Severity::Error, Status::Fail),
            (&[&untested], false, Severity::Notice, Status::Inconclusive),
            (&[], true, Severity::Error, Status::Inconclusive),
            (&[&untested, &err], true, Severity::Error, Status::Fail),
        ];
        for (findings, inconclusive, fail_on, want) in cases {
            let findings: Vec<Finding> = findings.iter().map(|f| (*f).clone()).collect();
            let cd = CiDomain {
                domain: d.clone(),
                findings: findings.clone(),
                inconclusive: *inconclusive,
            };
            assert_eq!(cd.outcome(*fail_on), *want, "{findings:?} {fail_on}");
        }
    }

    // ------------------------------------------------------------------ JUnit

    /// An element read back from the XML.
    #[derive(Debug, Default)]
    struct Node {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Self>,
        text: String,
    }

    impl Node {
        fn attr(&self, key: &str) -> &str {
            self.attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("<{}> has no {key}", self.name))
        }

        fn count(&self, key: &str) -> usize {
            self.attr(key).parse().unwrap()
        }

        fn child(&self, name: &str) -> Option<&Self> {
            self.children.iter().find(|c| c.name == name)
        }

        fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Self> {
            self.children.iter().filter(move |c| c.name == name)
        }
    }

    fn element(e: &quick_xml::events::BytesStart<'_>) -> Node {
        let attrs = e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                let key = a.key.as_ref().to_owned();
                let value = a
                    .normalized_value(XmlVersion::Explicit1_0)
                    .unwrap()
                    .into_owned();
                (key, value)
            })
            .collect();
        Node {
            name: e.name().as_ref().to_owned(),
            attrs,
            ..Node::default()
        }
    }

    /// Parses the document (any ill-formedness panics) and returns its root element, after
    /// checking the declaration comes first.
    fn parse(xml: &str) -> Node {
        use quick_xml::events::Event as E;
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<Node> = vec![Node::default()];
        let mut saw_decl = false;
        loop {
            match reader.read_event().unwrap() {
                E::Decl(d) => {
                    assert_eq!(stack.len(), 1);
                    assert_eq!(&*d.version().unwrap(), "1.0");
                    saw_decl = true;
                }
                E::Start(e) => stack.push(element(&e)),
                E::Empty(e) => stack.last_mut().unwrap().children.push(element(&e)),
                E::End(_) => {
                    let done = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(done);
                }
                E::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
                E::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().unwrap() {
                        Some(c) => c.to_string(),
                        None => resolve_predefined_entity(&r).unwrap().to_owned(),
                    };
                    stack.last_mut().unwrap().text.push_str(&resolved);
                }
                E::Eof => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(saw_decl, "no XML declaration");
        let mut document = stack.pop().unwrap();
        assert!(stack.is_empty(), "unclosed elements");
        assert!(document.text.trim().is_empty(), "text outside the root");
        assert_eq!(document.children.len(), 1, "one root element");
        document.children.pop().unwrap()
    }

    /// Checks the structure every report has and returns, per suite, the testcases' state:
    /// `F` failure, `S` skipped, `.` pass, in `Check::ALL` order.
    fn check_structure(root: &Node, domains: &[CiDomain]) -> Vec<String> {
        assert_eq!(root.name, "testsuites");
        assert!(root.children.iter().all(|c| c.name == "testsuite"));
        assert_eq!(root.children.len(), domains.len());
        let mut states = Vec::new();
        let (mut tests, mut failures, mut skipped) = (0, 0, 0);
        for (suite, d) in root.children.iter().zip(domains) {
            assert_eq!(suite.attr("name"), d.domain.as_str());
            assert!(suite.children.iter().all(|c| c.name == "testcase"));
            let names: Vec<&str> = suite.children.iter().map(|c| c.attr("name")).collect();
            let want: Vec<&str> = Check::ALL.iter().map(|c| c.name()).collect();
            assert_eq!(names, want, "every domain has every check, in order");
            let mut state = String::new();
            for case in &suite.children {
                assert_eq!(case.attr("classname"), d.domain.as_str());
                let f = case.children_named("failure").count();
                let s = case.children_named("skipped").count();
                assert!(f + s <= 1, "a case either fails or is skipped");
                assert!(
                    case.children
                        .iter()
                        .all(|c| ["failure", "skipped", "system-out"].contains(&c.name.as_str()))
                );
                state.push(if f == 1 {
                    'F'
                } else if s == 1 {
                    'S'
                } else {
                    '.'
                });
            }
            let (sf, ss) = (state.matches('F').count(), state.matches('S').count());
            assert_eq!(suite.count("tests"), suite.children.len());
            assert_eq!(suite.count("failures"), sf);
            assert_eq!(suite.count("skipped"), ss);
            assert_eq!(suite.count("errors"), 0);
            tests += suite.children.len();
            failures += sf;
            skipped += ss;
            states.push(state);
        }
        assert_eq!(root.count("tests"), tests);
        assert_eq!(root.count("failures"), failures);
        assert_eq!(root.count("skipped"), skipped);
        assert_eq!(root.count("errors"), 0);
        states
    }

    fn case(root: &Node, suite: usize, check: Check) -> &Node {
        let i = Check::ALL.iter().position(|&c| c == check).unwrap();
        &root.children[suite].children[i]
    }

    #[test]
    fn junit_reports_pass_fail_and_inconclusive_domains() {
        let good = name("good.example");
        let bad = name("bad.example");
        let unsure = name("unsure.example");
        let good_findings = vec![finding(
            "sts.policy.mode-testing",
            Severity::Notice,
            &good,
            "testing mode",
        )];
        let bad_findings = vec![
            finding(
                "sts.policy.mx-not-covered",
                Severity::Error,
                &bad,
                "MX <mx1> & \"mx2\" not covered",
            )
            .with_fix("add mx: mx1.bad.example"),
            finding("sts.policy.bad-mx", Severity::Error, &bad, "bad pattern"),
            finding("mx.cname", Severity::Warning, &bad, "mx is an alias"),
            finding("dns.tlsrpt-txt.failed", Severity::Warning, &bad, "SERVFAIL").could_not_test(),
            finding(
                "gate.new.code",
                Severity::Error,
                &bad,
                "candidate drops an MX",
            ),
            finding(
                "future.code",
                Severity::Error,
                &bad,
                "a code no check names",
            ),
        ];
        let unsure_findings = vec![
            finding(
                "smtp.inconclusive",
                Severity::Warning,
                &unsure,
                "421 too busy",
            )
            .could_not_test(),
            finding(
                "smtp.port-blocked",
                Severity::Warning,
                &unsure,
                "port 25 blocked",
            )
            .could_not_test(),
        ];
        let domains = [
            CiDomain {
                domain: good.clone(),
                findings: good_findings.clone(),
                inconclusive: false,
            },
            CiDomain {
                domain: bad.clone(),
                findings: bad_findings.clone(),
                inconclusive: true,
            },
            CiDomain {
                domain: unsure.clone(),
                findings: unsure_findings.clone(),
                inconclusive: true,
            },
        ];
        let xml = junit_xml(
            "mxprobe scan",
            &domains,
            Severity::Error,
            Duration::from_millis(1500),
        );
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        let root = parse(&xml);
        assert_eq!(root.attr("name"), "mxprobe scan");
        assert_eq!(root.attr("time"), "1.500");
        let states = check_structure(&root, &domains);
        // Check order: DNS, STS record, STS policy, TLS-RPT, STARTTLS, DANE, candidate, other.
        assert_eq!(states, ["........", "..FS..FF", "....S..."]);
        assert_eq!(
            (
                root.count("tests"),
                root.count("failures"),
                root.count("skipped")
            ),
            (24, 3, 2)
        );

        // A failure carries the first failing finding's message and code, and lists them all.
        let policy = case(&root, 1, Check::StsPolicy);
        let failure = policy.child("failure").unwrap();
        assert_eq!(failure.attr("message"), "MX <mx1> & \"mx2\" not covered");
        assert_eq!(failure.attr("type"), "sts.policy.mx-not-covered");
        assert_eq!(
            failure.text,
            "error sts.policy.mx-not-covered (bad.example): MX <mx1> & \"mx2\" not covered\n  \
             fix: add mx: mx1.bad.example\nerror sts.policy.bad-mx (bad.example): bad pattern"
        );
        assert!(policy.child("system-out").is_none());

        // Below the threshold: system-out, no failure.
        let dns = case(&root, 1, Check::DnsMx);
        assert_eq!(dns.children.len(), 1);
        assert_eq!(
            dns.child("system-out").unwrap().text,
            "warning mx.cname (bad.example): mx is an alias\n"
        );
        // Could not test, nothing failing: skipped, with the finding in system-out.
        let tlsrpt = case(&root, 1, Check::TlsRpt);
        assert_eq!(
            tlsrpt.child("skipped").unwrap().attr("message"),
            "could not test: SERVFAIL"
        );
        assert_eq!(
            tlsrpt.child("system-out").unwrap().text,
            "could not test: warning dns.tlsrpt-txt.failed (bad.example): SERVFAIL\n"
        );
        assert_eq!(
            case(&root, 1, Check::Other)
                .child("failure")
                .unwrap()
                .attr("type"),
            "future.code"
        );
        let smtp = case(&root, 2, Check::Starttls);
        assert_eq!(
            smtp.child("skipped").unwrap().attr("message"),
            "could not test: 421 too busy"
        );
        assert_eq!(smtp.child("system-out").unwrap().text.lines().count(), 2);
        // A passing case is an empty element.
        assert!(case(&root, 0, Check::Dane).children.is_empty());
        assert_eq!(
            case(&root, 0, Check::StsPolicy)
                .child("system-out")
                .unwrap()
                .text,
            "notice sts.policy.mode-testing (good.example): testing mode\n"
        );
    }

    #[test]
    fn junit_threshold_moves_warnings_between_failure_and_system_out() {
        let d = name("example.com");
        let findings = vec![
            finding("mx.cname", Severity::Warning, &d, "alias"),
            finding("sts.none", Severity::Notice, &d, "no record"),
        ];
        let domains = [CiDomain {
            domain: d.clone(),
            findings: findings.clone(),
            inconclusive: false,
        }];
        let cases: &[(Severity, &str, &str)] = &[
            (Severity::Error, "........", ""),
            (Severity::Warning, "F.......", "alias"),
            (Severity::Notice, "FF......", "alias"),
        ];
        for (fail_on, want, dns_failure) in cases {
            let root = parse(&junit_xml("t", &domains, *fail_on, Duration::ZERO));
            assert_eq!(root.attr("time"), "0.000");
            assert_eq!(check_structure(&root, &domains), [*want], "{fail_on}");
            let dns = case(&root, 0, Check::DnsMx);
            match dns.child("failure") {
                Some(f) => assert_eq!(f.attr("message"), *dns_failure),
                None => {
                    assert_eq!(*dns_failure, "");
                    assert_eq!(
                        dns.child("system-out").unwrap().text,
                        "warning mx.cname (example.com): alias\n"
                    );
                }
            }
        }
    }

    #[test]
    fn junit_skips_every_untested_check_of_an_unexplained_inconclusive_domain() {
        let d = name("slow.example");
        let findings = vec![finding("mx.cname", Severity::Error, &d, "alias")];
        let domains = [
            CiDomain {
                domain: d.clone(),
                findings: Vec::new(),
                inconclusive: true,
            },
            CiDomain {
                domain: d.clone(),
                findings: findings.clone(),
                inconclusive: true,
            },
        ];
        let root = parse(&junit_xml(
            "t",
            &domains,
            Severity::Error,
            Duration::from_secs(2),
        ));
        assert_eq!(check_structure(&root, &domains), ["SSSSSSSS", "FSSSSSSS"]);
        assert_eq!(
            case(&root, 0, Check::Dane)
                .child("skipped")
                .unwrap()
                .attr("message"),
            "could not test: the domain's result is inconclusive and no finding says which \
             check could not be tested"
        );
    }

    #[test]
    fn junit_escapes_markup_and_replaces_characters_xml_cannot_carry() {
        let d = name("example.com");
        let msg = "a <b> & \"c\" 'd'\ttab\r\nnext\u{1}bell\u{FFFF}";
        let findings = vec![
            coded(
                "smtp.x",
                Severity::Error,
                Subject::location("line <1>"),
                msg,
            )
            .with_fix("use & not <"),
        ];
        let domains = [CiDomain {
            domain: d.clone(),
            findings: findings.clone(),
            inconclusive: false,
        }];
        let xml = junit_xml(
            "suite <&\"> name",
            &domains,
            Severity::Error,
            Duration::ZERO,
        );
        assert!(!xml.contains('\u{1}') && !xml.contains("<b>") && !xml.contains("& "));
        let root = parse(&xml);
        assert_eq!(root.attr("name"), "suite <&\"> name");
        let failure = case(&root, 0, Check::Starttls).child("failure").unwrap();
        // Attribute escaping keeps tab and line breaks (no attribute-value normalisation).
        assert_eq!(
            failure.attr("message"),
            "a <b> & \"c\" 'd'\ttab\r\nnext\u{FFFD}bell\u{FFFD}"
        );
        assert_eq!(
            failure.text,
            "error smtp.x (line <1>): a <b> & \"c\" 'd'\ttab\r\nnext\u{FFFD}bell\u{FFFD}\n  \
             fix: use & not <"
        );
    }

    #[test]
    fn junit_with_no_domains_is_an_empty_well_formed_report() {
        let root = parse(&junit_xml("empty", &[], Severity::Error, Duration::ZERO));
        assert!(check_structure(&root, &[]).is_empty());
        assert_eq!(root.count("tests"), 0);
    }

    // ------------------------------------------------------------------ annotations

    #[test]
    fn annotations_one_line_per_finding_by_level() {
        let d = name("example.com");
        let findings = vec![
            finding(
                "sts.policy.mx-not-covered",
                Severity::Error,
                &d,
                "mx2 not covered",
            )
            .with_fix("add mx: mx2.example.com"),
            finding("mx.cname", Severity::Warning, &d, "alias"),
            finding("sts.policy.mode-testing", Severity::Notice, &d, "testing"),
            finding("smtp.inconclusive", Severity::Warning, &d, "421").could_not_test(),
            coded(
                "sts.none",
                Severity::Notice,
                Subject::default(),
                "no record",
            ),
        ];
        let domains = [CiDomain {
            domain: d.clone(),
            findings: findings.clone(),
            inconclusive: true,
        }];
        let cases: &[(Severity, [&str; 5])] = &[
            (
                Severity::Error,
                ["error", "warning", "notice", "warning", "notice"],
            ),
            (
                Severity::Warning,
                ["error", "error", "notice", "warning", "notice"],
            ),
            (
                Severity::Notice,
                ["error", "error", "error", "warning", "error"],
            ),
        ];
        for (fail_on, levels) in cases {
            let out = github_annotations(&domains, *fail_on);
            let got: Vec<&str> = out
                .lines()
                .map(|l| l.strip_prefix("::").unwrap().split(' ').next().unwrap())
                .collect();
            assert_eq!(got, levels, "{fail_on}");
        }
        assert_eq!(
            github_annotations(&domains, Severity::Error),
            "::error title=mxprobe sts.policy.mx-not-covered (example.com)::example.com: mx2 \
             not covered%0AFix: add mx: mx2.example.com\n\
             ::warning title=mxprobe mx.cname (example.com)::example.com: alias\n\
             ::notice title=mxprobe sts.policy.mode-testing (example.com)::example.com: testing\n\
             ::warning title=mxprobe smtp.inconclusive (example.com)::could not test: \
             example.com: 421\n\
             ::notice title=mxprobe sts.none (example.com)::no record\n"
        );
    }

    #[test]
    fn annotations_escape_data_and_properties() {
        let cases: &[(&str, &str, &str)] = &[
            ("plain", "plain", "plain"),
            ("100%", "100%25", "100%25"),
            ("%0A literal", "%250A literal", "%250A literal"),
            ("a\r\nb\nc", "a%0D%0Ab%0Ac", "a%0D%0Ab%0Ac"),
            ("k: v, w", "k: v, w", "k%3A v%2C w"),
        ];
        for (raw, data, property) in cases {
            assert_eq!(escape_data(raw), *data, "{raw:?}");
            assert_eq!(escape_property(raw), *property, "{raw:?}");
        }
        let d = name("example.com");
        let findings = vec![coded(
            "gate.x,y:z",
            Severity::Warning,
            Subject::location("line 1"),
            "50% of\nMX: a, b",
        )];
        let domains = [CiDomain {
            domain: d.clone(),
            findings: findings.clone(),
            inconclusive: false,
        }];
        assert_eq!(
            github_annotations(&domains, Severity::Error),
            "::warning title=mxprobe gate.x%2Cy%3Az (example.com)::line 1: 50%25 of%0AMX: a, b\n"
        );
    }

    #[test]
    fn annotations_name_an_unexplained_inconclusive_domain() {
        let d = name("slow.example");
        let domains = [CiDomain {
            domain: d.clone(),
            findings: Vec::new(),
            inconclusive: true,
        }];
        assert_eq!(
            github_annotations(&domains, Severity::Error),
            "::warning title=mxprobe inconclusive (slow.example)::could not test slow.example: \
             its result is inconclusive and no finding says which check could not be tested\n"
        );
        let passing = [CiDomain {
            domain: d.clone(),
            findings: Vec::new(),
            inconclusive: false,
        }];
        assert_eq!(github_annotations(&passing, Severity::Error), "");
    }

    // ------------------------------------------------------------------ step summary

    #[test]
    fn step_summary_tables_and_lists_what_needs_attention() {
        let good = name("good.example");
        let bad = name("bad.example");
        let unsure = name("unsure.example");
        let slow = name("slow.example");
        let good_findings = vec![finding("sts.none", Severity::Notice, &good, "no record")];
        let bad_findings = vec![
            finding("mx.cname", Severity::Warning, &bad, "alias"),
            coded(
                "sts.policy.a|b",
                Severity::Error,
                Subject::location("policy line 2"),
                "pipe | in\nmessage",
            )
            .with_fix("write `mx: *.example`"),
        ];
        let unsure_findings =
            vec![finding("smtp.inconclusive", Severity::Warning, &unsure, "421").could_not_test()];
        let domains = [
            CiDomain {
                domain: good.clone(),
                findings: good_findings.clone(),
                inconclusive: false,
            },
            CiDomain {
                domain: bad.clone(),
                findings: bad_findings.clone(),
                inconclusive: false,
            },
            CiDomain {
                domain: unsure.clone(),
                findings: unsure_findings.clone(),
                inconclusive: true,
            },
            CiDomain {
                domain: slow.clone(),
                findings: Vec::new(),
                inconclusive: true,
            },
        ];
        assert_eq!(
            step_summary("mxprobe | gate\nrun", &domains, Severity::Error),
            "## mxprobe \\| gate run\n\
             \n\
             4 domains: 1 failing, 2 inconclusive, 1 passing (failing means a finding of \
             severity error or worse).\n\
             \n\
             | domain | result | errors | warnings | first failure |\n\
             | --- | --- | ---: | ---: | --- |\n\
             | good.example | pass | 0 | 0 | — |\n\
             | bad.example | FAIL | 1 | 1 | sts.policy.a\\|b |\n\
             | unsure.example | inconclusive | 0 | 1 | — |\n\
             | slow.example | inconclusive | 0 | 0 | — |\n\
             \n\
             ### bad.example: FAIL\n\
             \n\
             - **warning** mx.cname (bad.example): alias\n\
             - **FAIL, error** sts.policy.a\\|b (policy line 2): pipe \\| in message Fix: \
             write \\`mx: \\*.example\\`\n\
             \n\
             ### unsure.example: inconclusive\n\
             \n\
             - **could not test** smtp.inconclusive (unsure.example): 421\n\
             \n\
             ### slow.example: inconclusive\n\
             \n\
             - **could not test** the result is inconclusive and no finding says which check \
             could not be tested\n"
        );
    }

    #[test]
    fn step_summary_threshold_and_empty_run() {
        let d = name("example.com");
        let findings = vec![finding("mx.cname", Severity::Warning, &d, "alias")];
        let domains = [CiDomain {
            domain: d.clone(),
            findings: findings.clone(),
            inconclusive: false,
        }];
        let at_warning = step_summary("t", &domains, Severity::Warning);
        assert!(at_warning.contains("1 domain: 1 failing, 0 inconclusive, 0 passing"));
        assert!(at_warning.contains("| example.com | FAIL | 0 | 1 | mx.cname |\n"));
        assert!(at_warning.ends_with(
            "### example.com: FAIL\n\n- **FAIL, warning** mx.cname (example.com): alias\n"
        ));
        let at_error = step_summary("t", &domains, Severity::Error);
        assert!(at_error.ends_with("| example.com | pass | 0 | 1 | — |\n"));
        assert_eq!(
            step_summary("t", &[], Severity::Error),
            "## t\n\n0 domains: 0 failing, 0 inconclusive, 0 passing (failing means a finding \
             of severity error or worse).\n\n"
        );
    }

    #[test]
    fn markdown_escapes_punctuation_and_line_breaks() {
        let cases: &[(&str, &str, &str)] = &[
            ("a|b", "a\\|b", "a\\|b"),
            (
                "one\ntwo\r\nthree\rfour",
                "one two three four",
                "one<br>two<br>three<br>four",
            ),
            (
                "*x* _y_ `z` [l](u) <h> ~s~ &amp; \\",
                "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\<h\\> \\~s\\~ \\&amp; \\\\",
                "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\<h\\> \\~s\\~ \\&amp; \\\\",
            ),
            (
                "mx1.example.com: 50%",
                "mx1.example.com: 50%",
                "mx1.example.com: 50%",
            ),
        ];
        for (raw, text, cell) in cases {
            assert_eq!(md_text(raw, " "), *text, "{raw:?}");
            assert_eq!(md_cell(raw), *cell, "{raw:?}");
        }
    }
}
