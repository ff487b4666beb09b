//! The HTML report: one self-contained file for people who would rather look than read.
//!
//! A header (when, from where, how many domains, counts by status, the version), a status
//! grid with one row per domain and one cell per concern (MX, MTA-STS, policy fetch,
//! STARTTLS, certificates, DANE, TLS-RPT), the certificate expiry timeline as inline SVG,
//! for monitoring the changes of the run and a status strip per domain, and a collapsed
//! detail section per domain with its synthetic TLS-RPT report.
//!
//! Rendered with minijinja from the templates in `crates/core/templates/`: every value is
//! escaped by the engine (the templates end in `.html`, so autoescape is on); only the
//! built-in style sheet and script are inserted as they are, and the page's
//! `Content-Security-Policy` allows exactly those two, by their SHA-256 computed here. No
//! external resource of any kind: the file opens without a network.
//!
//! Memory is flat in the number of domains: each domain's row and detail section are
//! rendered when it arrives and spooled (the binary gives temporary files), grouped by
//! status so that failing domains come first; [`HtmlReport::finish`] writes the header
//! (which needs the counts), then copies the spools. The timeline keeps only the
//! certificates that expire first ([`timeline::MAX_CERTIFICATES`]).

mod timeline;
mod view;

use std::io::{self, Read, Seek, SeekFrom, Write};

use base64::Engine as _;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::alert::Change;
use crate::finding::Counts;
use crate::output::Tag;
use crate::result::DomainResult;
use crate::synthetic_report::build_report;
use crate::tlsrpt::report::DateRange;

pub use timeline::MAX_CERTIFICATES;
use timeline::Timeline;
use view::{ChangeView, State, change_view, tag_rank};

/// The built-in style sheet, inserted as it is.
const CSS: &str = include_str!("../../templates/report.css");
/// The built-in script (sorting and filtering the grid; the page does not need it).
const JS: &str = include_str!("../../templates/report.js");

const TEMPLATES: &[(&str, &str)] = &[
    ("start.html", include_str!("../../templates/start.html")),
    ("row.html", include_str!("../../templates/row.html")),
    ("middle.html", include_str!("../../templates/middle.html")),
    ("change.html", include_str!("../../templates/change.html")),
    ("details.html", include_str!("../../templates/details.html")),
    ("detail.html", include_str!("../../templates/detail.html")),
    ("end.html", include_str!("../../templates/end.html")),
];

const DAY: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");
const MINUTE: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute] UTC");

/// A date for people (UTC).
pub(crate) fn day(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(DAY)
        .unwrap_or_default()
}

/// A time to the minute for people (UTC).
pub(crate) fn minute(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(MINUTE)
        .unwrap_or_default()
}

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HtmlError {
    /// A template failed (a bug: the templates are built in).
    #[error("rendering the HTML report: {0:#}")]
    Template(#[from] minijinja::Error),
    /// Writing the report or its spool failed.
    #[error("writing the HTML report: {0}")]
    Io(#[from] io::Error),
}

/// What kind of run the report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `scan` or `demo`: no history.
    Scan,
    /// `monitor`: the changes of the run and a status strip per domain.
    Monitor,
    /// `history`: one domain's runs.
    History,
}

/// Where and how the run was made: the header.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The heading, e.g. `mxprobe scan`.
    pub title: String,
    /// When the run started.
    pub started_at: OffsetDateTime,
    /// The EHLO name the probes sent.
    pub ehlo_name: Option<String>,
    /// The resolver asked (`system resolver` or addresses).
    pub resolver: String,
    /// The DNSSEC mode.
    pub dnssec: String,
    /// mxprobe's version.
    pub version: String,
}

/// One run of a domain in a status strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripRun {
    /// When the domain was observed.
    pub observed_at: OffsetDateTime,
    /// Its status then.
    pub status: crate::evaluate::verdict::Status,
}

/// One run of a domain in `history --html`.
#[derive(Debug, Clone)]
pub struct HistoryRun {
    /// When the domain was observed.
    pub observed_at: OffsetDateTime,
    /// Its status then.
    pub status: crate::evaluate::verdict::Status,
    /// Its findings by severity.
    pub counts: Counts,
    /// The MTA-STS mode and id, in words.
    pub policy: String,
    /// The MX hosts.
    pub mx: Vec<String>,
    /// What changed since the run before (the alert of that run).
    pub changes: Vec<Change>,
}

/// The spools of one status: grid rows and detail sections.
struct Bucket<S> {
    rows: S,
    details: S,
}

/// The report being written (see the module documentation). `S` is a spool: a temporary
/// file in the binary, a cursor in tests.
pub struct HtmlReport<S> {
    env: Environment<'static>,
    meta: Meta,
    kind: Kind,
    /// By [`tag_rank`]: failing, inconclusive, warning, ok.
    buckets: Vec<Bucket<S>>,
    changes: S,
    counts: [usize; 4],
    findings: Counts,
    change_count: usize,
    timeline: Timeline,
    next: usize,
}

/// The template environment: the built-in templates, autoescaped (`.html`), strict about
/// undefined values so that a misspelt field fails the tests instead of printing nothing.
fn environment() -> Result<Environment<'static>, HtmlError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()?,
    );
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    env.add_filter("text", text_filter);
    Ok(env)
}

/// `{{ x|text }}`: `x` escaped for an element's text (`&`, `<`, `>`), never for an
/// attribute. The synthetic reports are JSON, full of quotes that the engine's escaping
/// (made for attributes too) would turn into five bytes each.
fn text_filter(value: &str) -> Value {
    Value::from_safe_string(escape_text(value))
}

/// `text` with `&`, `<` and `>` as character references: safe between tags (not in an
/// attribute, nor in a `<script>` or `<style>`).
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `'sha256-…'` of an inline element's text, for the Content-Security-Policy.
fn csp_hash(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// The page's policy: nothing but the built-in style sheet and script.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src 'none'; base-uri 'none'; \
         form-action 'none'",
        csp_hash(CSS),
        csp_hash(JS)
    )
}

impl<S: Read + Write + Seek> HtmlReport<S> {
    /// A report of `kind`, spooling into what `spool` makes (nine spools).
    pub fn new(
        meta: Meta,
        kind: Kind,
        mut spool: impl FnMut() -> io::Result<S>,
    ) -> Result<Self, HtmlError> {
        let mut buckets = Vec::with_capacity(4);
        for _ in 0..4 {
            buckets.push(Bucket {
                rows: spool()?,
                details: spool()?,
            });
        }
        Ok(Self {
            env: environment()?,
            meta,
            kind,
            buckets,
            changes: spool()?,
            counts: [0; 4],
            findings: Counts::default(),
            change_count: 0,
            timeline: Timeline::default(),
            next: 0,
        })
    }

    fn anchor(&mut self) -> String {
        self.next += 1;
        format!("d{}", self.next)
    }

    /// Adds a scanned domain, with the changes of this run and its status strip (both
    /// empty outside monitoring), at `now`.
    pub fn add(
        &mut self,
        r: &DomainResult,
        changes: &[Change],
        strip: &[StripRun],
        now: OffsetDateTime,
    ) -> Result<(), HtmlError> {
        let anchor = self.anchor();
        let tag = Tag::of(r);
        let rank = tag_rank(tag);
        self.counts[rank] += 1;
        let c = Counts::of(&r.verdict.findings);
        self.findings.error += c.error;
        self.findings.warning += c.warning;
        self.findings.notice += c.notice;
        let leaves = view::Leaves::of(r);
        self.timeline.add(&leaves);
        let domain = r.verdict.domain.to_string();
        let change_views: Vec<ChangeView> = changes
            .iter()
            .map(|c| change_view(c, &domain, &anchor, r.facts.observed_at))
            .collect();
        for change in &change_views {
            self.change_count += 1;
            self.env.get_template("change.html")?.render_captured_to(
                context! { c => Value::from(Serde(change)) },
                &mut self.changes,
            )?;
        }
        let row = view::row(anchor.clone(), r, &leaves, strip, now);
        let report = DateRange::utc_day(r.facts.observed_at.date())
            .ok()
            .map(|range| {
                build_report(
                    &r.facts,
                    &r.verdict,
                    range,
                    format!(
                        "mxprobe{}.{domain}@mxprobe.invalid",
                        self.meta.started_at.unix_timestamp()
                    ),
                )
                .to_json_pretty()
            });
        let detail = view::detail(anchor, r, &leaves, change_views, report, now);
        self.write_domain(rank, &row, &detail)
    }

    /// Adds a domain that ended without a report, for the reason `why`.
    pub fn add_not_tested(&mut self, domain: &str, why: &str) -> Result<(), HtmlError> {
        let anchor = self.anchor();
        let rank = tag_rank(Tag::Inconclusive);
        self.counts[rank] += 1;
        let row = view::row_not_tested(anchor.clone(), domain, why);
        let detail = view::detail_not_tested(anchor, domain, why);
        self.write_domain(rank, &row, &detail)
    }

    fn write_domain(
        &mut self,
        rank: usize,
        row: &view::Row,
        detail: &view::Detail,
    ) -> Result<(), HtmlError> {
        let strip = self.kind != Kind::Scan;
        let bucket = &mut self.buckets[rank];
        self.env.get_template("row.html")?.render_captured_to(
            context! { r => Value::from(Serde(row)), strip },
            &mut bucket.rows,
        )?;
        self.env.get_template("detail.html")?.render_captured_to(
            context! { d => Value::from(Serde(detail)) },
            &mut bucket.details,
        )?;
        Ok(())
    }

    /// Writes the whole page to `out`: the header, the grid, the timeline, the changes (or
    /// the runs of `history`), the details. `now` is the time the expiry is measured from.
    pub fn finish(
        mut self,
        out: &mut dyn Write,
        now: OffsetDateTime,
        runs: Option<&[HistoryRun]>,
    ) -> Result<(), HtmlError> {
        let total: usize = self.counts.iter().sum();
        let counts: Vec<CountView> = [Tag::Fail, Tag::Inconclusive, Tag::Warn, Tag::Ok]
            .into_iter()
            .map(|tag| {
                let state = State::of_tag(tag);
                CountView {
                    state,
                    symbol: state.symbol(),
                    word: tag.word(),
                    tag: view::tag_name(tag),
                    n: self.counts[tag_rank(tag)],
                }
            })
            .collect();
        let history: Option<Vec<RunView>> = runs.map(|runs| {
            runs.iter()
                .rev()
                .map(|r| {
                    let state = State::of_status(r.status);
                    RunView {
                        when: minute(r.observed_at),
                        state,
                        symbol: state.symbol(),
                        status: r.status.as_str(),
                        errors: r.counts.error,
                        warnings: r.counts.warning,
                        notices: r.counts.notice,
                        policy: r.policy.clone(),
                        mx: r.mx.join(", "),
                        changes: r
                            .changes
                            .iter()
                            .map(|c| change_view(c, "", "", r.observed_at))
                            .collect(),
                    }
                })
                .collect()
        });
        let meta = &self.meta;
        let ctx = context! {
            title => &meta.title,
            when => minute(meta.started_at),
            ehlo => meta.ehlo_name.as_deref().unwrap_or("(none)"),
            resolver => &meta.resolver,
            dnssec => &meta.dnssec,
            version => &meta.version,
            csp => content_security_policy(),
            css => Value::from_safe_string(CSS.to_owned()),
            js => Value::from_safe_string(JS.to_owned()),
            total,
            counts => Value::from(Serde(&counts)),
            findings => Value::from(Serde(self.findings)),
            columns => Value::from(Serde(view::COLUMNS)),
            strip => self.kind != Kind::Scan,
            monitor => self.kind == Kind::Monitor,
            change_count => self.change_count,
            timeline => Value::from(Serde(self.timeline.view(now))),
            runs => Value::from(Serde(&history)),
        };
        let mut out = io::BufWriter::with_capacity(1 << 16, out);
        self.env
            .get_template("start.html")?
            .render_captured_to(ctx.clone(), &mut out)?;
        for b in &mut self.buckets {
            copy(&mut b.rows, &mut out)?;
        }
        self.env
            .get_template("middle.html")?
            .render_captured_to(ctx.clone(), &mut out)?;
        copy(&mut self.changes, &mut out)?;
        self.env
            .get_template("details.html")?
            .render_captured_to(ctx.clone(), &mut out)?;
        for b in &mut self.buckets {
            copy(&mut b.details, &mut out)?;
        }
        self.env
            .get_template("end.html")?
            .render_captured_to(ctx, &mut out)?;
        out.flush()?;
        Ok(())
    }
}

/// Copies a spool from its start.
fn copy<S: Read + Seek>(spool: &mut S, out: &mut impl Write) -> io::Result<()> {
    spool.seek(SeekFrom::Start(0))?;
    io::copy(spool, out)?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct CountView {
    state: State,
    symbol: &'static str,
    word: &'static str,
    tag: &'static str,
    n: usize,
}

#[derive(Debug, Serialize)]
struct RunView {
    when: String,
    state: State,
    symbol: &'static str,
    status: &'static str,
    errors: usize,
    warnings: usize,
    notices: usize,
    policy: String,
    mx: String,
    changes: Vec<ChangeView>,
}

#[cfg(test)]
mod tests;
