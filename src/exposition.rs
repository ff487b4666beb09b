//! The metric families mxprobe exposes about scanned domains, defined once and encoded by
//! the `prometheus-client` crate in the Prometheus text format (version 0.0.4): the textfile
//! of `monitor --prometheus` ([`crate::metrics`]) and the `/probe` answer of `mxprobe serve`
//! ([`crate::serve`]) both build their domain series with [`DomainFamilies`], so the two
//! carry the same names and labels.
//!
//! A [`Family`] keeps its samples in a sorted map keyed by label values, so that the same
//! input always gives the same bytes (the crate's own metric families keep a hash map and
//! encode in no fixed order), and each series appears once. [`Exposition`] hands the
//! families to a `prometheus-client` registry as a collector and encodes them; the escaping
//! of label values and help text and the writing of values are the crate's.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use mxprobe_core::alert::DomainStatus;
use mxprobe_core::evaluate::verdict::SessionResult;
use mxprobe_core::finding::Severity;
use mxprobe_core::mtasts::Mode;
use mxprobe_core::result::DomainResult;
use mxprobe_core::tls::describe;

/// The `Content-Type` of the text format.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The three domain statuses.
pub const STATUSES: [DomainStatus; 3] = [
    DomainStatus::Fail,
    DomainStatus::Inconclusive,
    DomainStatus::Pass,
];

/// The three severities.
pub const SEVERITIES: [Severity; 3] = [Severity::Error, Severity::Notice, Severity::Warning];

/// The three MTA-STS modes.
pub const MODES: [Mode; 3] = [Mode::Enforce, Mode::None, Mode::Testing];

/// The session results, as label values.
pub const SUCCESS: &str = "success";
/// A session that failed under its policy.
pub const FAILURE: &str = "failure";
/// A session the probe could not judge.
pub const INCONCLUSIVE: &str = "inconclusive";

/// The label value of a session result.
pub fn session_result(result: &SessionResult) -> &'static str {
    match result {
        SessionResult::Success => SUCCESS,
        SessionResult::Failure { .. } => FAILURE,
        SessionResult::Inconclusive { .. } => INCONCLUSIVE,
    }
}

/// One metric family: its name, help, type, label names and samples keyed by label values
/// (in the order of `labels`), which keeps the samples sorted and each series unique.
#[derive(Debug, Clone)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
    samples: BTreeMap<Vec<String>, f64>,
}

impl Family {
    /// A gauge.
    pub fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Self {
        Self {
            name,
            help,
            kind: MetricType::Gauge,
            labels,
            samples: BTreeMap::new(),
        }
    }

    /// A counter; `name` is given without `_total`, which the encoding adds.
    pub fn counter(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            kind: MetricType::Counter,
            ..Self::gauge(name, labels, help)
        }
    }

    /// The family's name (for a counter, without `_total`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sets the series with these label values.
    pub fn set(&mut self, values: &[&str], value: f64) {
        self.samples.insert(self.key(values), value);
    }

    /// Keeps the smaller of `value` and the value already there.
    pub fn set_min(&mut self, values: &[&str], value: f64) {
        self.samples
            .entry(self.key(values))
            .and_modify(|v| *v = v.min(value))
            .or_insert(value);
    }

    /// Adds `by` to the series (created at 0).
    pub fn add(&mut self, values: &[&str], by: f64) {
        *self.samples.entry(self.key(values)).or_insert(0.0) += by;
    }

    /// The value of a series, if set.
    pub fn get(&self, values: &[&str]) -> Option<f64> {
        self.samples.get(&self.key(values)).copied()
    }

    fn key(&self, values: &[&str]) -> Vec<String> {
        debug_assert_eq!(
            values.len(),
            self.labels.len(),
            "{}: label count",
            self.name
        );
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (values, value) in &self.samples {
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            let sample = metric.encode_family(&labels)?;
            match self.kind {
                MetricType::Counter => ConstCounter::new(Value(*value)).encode(sample)?,
                _ => ConstGauge::new(Value(*value)).encode(sample)?,
            }
        }
        Ok(())
    }
}

/// A sample value, written as an integer when it is one (a count, a timestamp in whole
/// seconds) and as the shortest decimal that reads back as the same float otherwise.
#[derive(Debug, Clone, Copy)]
struct Value(f64);

/// Integers up to 2^53 are exact in an f64.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

impl prometheus_client::encoding::EncodeGaugeValue for Value {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::GaugeValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < EXACT_INTEGERS {
            (v as i64).encode(encoder)
        } else {
            v.encode(encoder)
        }
    }
}

impl prometheus_client::encoding::EncodeCounterValue for Value {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::CounterValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let v = self.0;
        if v.fract() == 0.0 && (0.0..EXACT_INTEGERS).contains(&v) {
            (v as u64).encode(encoder)
        } else {
            v.encode(encoder)
        }
    }
}

/// Families in the order they are written.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    /// Appends families (written in the order given).
    pub fn extend(&mut self, families: impl IntoIterator<Item = Family>) {
        self.families.extend(families);
    }

    /// Appends one family.
    pub fn push(&mut self, family: Family) {
        self.families.push(family);
    }

    /// The text exposition format (version 0.0.4), as `prometheus-client` writes it.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in &self.families {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

/// What the series say about certificates: one expiry per MX host (the earliest of its
/// addresses), or one per address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DomainOptions {
    /// One certificate expiry series per MX address (an extra `ip` label).
    pub per_ip: bool,
}

/// The series about domains that the textfile and `/probe` share.
#[derive(Debug, Clone)]
pub struct DomainFamilies {
    per_ip: bool,
    /// `mxprobe_domain_status{domain,status}`.
    pub status: Family,
    /// `mxprobe_domain_findings{domain,severity}`.
    pub findings: Family,
    /// `mxprobe_domain_failing_findings{domain}`.
    pub failing: Family,
    /// `mxprobe_sts_mode{domain,mode}`.
    pub sts_mode: Family,
    /// `mxprobe_mx_sessions{domain,mx,result}`.
    pub sessions: Family,
    /// `mxprobe_mx_certificate_expiry_timestamp_seconds{domain,mx[,ip]}`.
    pub expiry: Family,
}

impl DomainFamilies {
    /// Empty families.
    pub fn new(opts: &DomainOptions) -> Self {
        let expiry = if opts.per_ip {
            Family::gauge(
                "mxprobe_mx_certificate_expiry_timestamp_seconds",
                &["domain", "mx", "ip"],
                "When the leaf certificate the MX address presented expires, in seconds since \
                 the Unix epoch.",
            )
        } else {
            Family::gauge(
                "mxprobe_mx_certificate_expiry_timestamp_seconds",
                &["domain", "mx"],
                "The earliest expiry of the leaf certificates the MX host's addresses \
                 presented, in seconds since the Unix epoch.",
            )
        };
        Self {
            per_ip: opts.per_ip,
            status: Family::gauge(
                "mxprobe_domain_status",
                &["domain", "status"],
                "The domain's status in the last run: 1 for the current status (pass, fail or \
                 inconclusive), 0 for the two others.",
            ),
            findings: Family::gauge(
                "mxprobe_domain_findings",
                &["domain", "severity"],
                "How many findings the last run had for the domain, by severity (those that \
                 could not be tested included).",
            ),
            failing: Family::gauge(
                "mxprobe_domain_failing_findings",
                &["domain"],
                "How many findings at error severity say that something is wrong (not that it \
                 could not be tested); more than 0 makes the domain fail.",
            ),
            sts_mode: Family::gauge(
                "mxprobe_sts_mode",
                &["domain", "mode"],
                "The mode of the domain's valid MTA-STS policy: 1 for the current mode \
                 (enforce, testing or none), 0 for the others; all 0 when no valid policy was \
                 fetched.",
            ),
            sessions: Family::gauge(
                "mxprobe_mx_sessions",
                &["domain", "mx", "result"],
                "How many SMTP sessions (one per address) to the MX host ended in each result \
                 under the policy that applies to it.",
            ),
            expiry,
        }
    }

    /// Adds the series of one domain (a domain added twice keeps the later values).
    pub fn add(&mut self, snapshot: &DomainResult) {
        let domain = snapshot.facts.domain.to_string();
        let verdict = &snapshot.verdict;

        let current = verdict.status(Severity::Error);
        for s in STATUSES {
            self.status
                .set(&[&domain, s.as_str()], indicator(s == current));
        }

        for severity in SEVERITIES {
            let count = verdict
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .count();
            self.findings
                .set(&[&domain, severity.as_str()], count as f64);
        }
        let failing_count = verdict
            .findings
            .iter()
            .filter(|f| f.fails(Severity::Error))
            .count();
        self.failing.set(&[&domain], failing_count as f64);

        let mode = verdict.sts.policy.as_ref().map(|p| p.mode);
        for m in MODES {
            self.sts_mode
                .set(&[&domain, m.as_str()], indicator(mode == Some(m)));
        }

        // Every named MX host gets its three session counts, so that a host whose addresses
        // are gone reads 0 rather than disappearing.
        let hosts = snapshot
            .facts
            .hosts
            .iter()
            .filter_map(|h| h.name.as_ref())
            .map(ToString::to_string)
            .chain(verdict.sessions.iter().map(|s| s.mx.to_string()));
        for mx in hosts {
            for result in [FAILURE, INCONCLUSIVE, SUCCESS] {
                self.sessions.add(&[&domain, &mx, result], 0.0);
            }
        }
        for session in &verdict.sessions {
            let result = session_result(&session.result);
            self.sessions
                .add(&[&domain, session.mx.as_str(), result], 1.0);
        }

        for smtp in snapshot.facts.hosts.iter().flat_map(|h| &h.sessions) {
            let Some(leaf) = smtp.tls.as_ref().and_then(|t| t.chain.first()) else {
                continue;
            };
            // A leaf that does not parse has no expiry to show; evaluation reports it.
            let Ok(summary) = describe(leaf) else {
                continue;
            };
            let not_after = summary.not_after.unix_timestamp() as f64;
            let mx = smtp.mx.to_string();
            if self.per_ip {
                let ip = smtp.address.ip().to_string();
                self.expiry.set_min(&[&domain, &mx, &ip], not_after);
            } else {
                self.expiry.set_min(&[&domain, &mx], not_after);
            }
        }
    }

    /// The families in the order they are written.
    pub fn into_families(self) -> [Family; 6] {
        [
            self.status,
            self.findings,
            self.failing,
            self.sts_mode,
            self.sessions,
            self.expiry,
        ]
    }
}

/// 1 for true, 0 for false.
pub fn indicator(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_encoded_in_order_sorted_and_escaped_by_the_crate() {
        let mut gauge = Family::gauge("mxprobe_test", &["domain"], "A test \\ with\nlines.");
        let odd = "a\\b\"c\nd";
        gauge.set(&["plain"], 2.0);
        gauge.set(&[odd], 1.5);
        gauge.set_min(&["plain"], 3.0);
        let mut counter = Family::counter("mxprobe_test_events", &[], "Events.");
        counter.add(&[], 2.0);
        counter.add(&[], 1.0);
        assert_eq!(counter.get(&[]), Some(3.0));
        let mut exposition = Exposition::default();
        exposition.extend([gauge]);
        exposition.push(counter);
        assert_eq!(
            exposition.encode(),
            "# HELP mxprobe_test A test \\\\ with\\nlines.\n# TYPE mxprobe_test gauge\n\
             mxprobe_test{domain=\"a\\\\b\\\"c\\nd\"} 1.5\nmxprobe_test{domain=\"plain\"} 2\n\
             # HELP mxprobe_test_events_total Events.\n# TYPE mxprobe_test_events_total counter\n\
             mxprobe_test_events_total 3\n"
        );
    }

    #[test]
    fn values_are_integers_when_they_are_whole() {
        let mut family = Family::gauge("v", &["k"], "V.");
        for (k, v) in [
            ("a", 3.0),
            ("b", 12.5),
            ("c", 1_799_971_200.0),
            ("d", -4.0),
            ("e", f64::NAN),
            ("f", f64::INFINITY),
            ("g", 1e300),
        ] {
            family.set(&[k], v);
        }
        let mut e = Exposition::default();
        e.push(family);
        let text = e.encode();
        let values: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(values[..4], ["3", "12.5", "1799971200", "-4"]);
        assert_eq!(values[4], "NaN");
        assert_eq!(values[5], "+Inf");
        assert!(values[6].parse::<f64>().unwrap() == 1e300, "{}", values[6]);
    }
}
