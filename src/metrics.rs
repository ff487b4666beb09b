//! The Prometheus textfile that `mxprobe monitor --prometheus FILE` writes after each run, for
//! node_exporter's textfile collector.
//!
//! [`render`] turns the snapshots of one run into the text exposition format, written by the
//! `prometheus-client` crate through [`crate::exposition`] (whose domain series `mxprobe
//! serve` shares): one family per metric (`# HELP` and `# TYPE` once, then its samples),
//! families in a fixed order, samples sorted by their label values, so that the same run
//! always gives the same bytes. Every metric is a gauge named `mxprobe_…` with its unit in
//! the name. Labels stay bounded: the domain, the MX host, a status, severity, session result
//! or policy mode from a fixed set, and the address only when [`MetricsOptions::per_ip`] asks
//! for it; never policy ids, messages or finding codes. [`render`] is pure.
//!
//! [`write_atomically`] replaces the file so that the collector never reads half of it: the
//! text goes to a hidden temporary file in the same directory (whose name does not end in
//! `.prom`, so the collector skips it), is flushed to disk, and is renamed over the target.
//! It is this module's only I/O.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::exposition::{DomainFamilies, DomainOptions, Exposition, Family};
use mxprobe_core::result::DomainResult;

/// What the metrics say about the run itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunInfo {
    /// When the run finished.
    pub finished_at: OffsetDateTime,
    /// How long it took.
    pub duration: std::time::Duration,
    /// How many domains it observed.
    pub domains: u64,
}

/// Choices about what the textfile contains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Give the certificate expiry one series per MX address (an extra `ip` label) instead of
    /// one per MX host. Off by default: every address is another series to store.
    pub per_ip: bool,
}

/// Why the textfile could not be written. The previous file, if any, is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The path names no file (it is empty, `/`, or ends in `..`).
    #[error(
        "{}: not a file path; give the path of the .prom file to write, e.g. \
         /var/lib/node_exporter/textfile/mxprobe.prom",
        path.display()
    )]
    NoFileName {
        /// The path given.
        path: PathBuf,
    },
    /// Creating, writing or flushing the temporary file failed.
    #[error(
        "cannot write the temporary file {}: {source}; the directory must exist and be \
         writable by this user",
        temp.display()
    )]
    Temporary {
        /// The temporary file.
        temp: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Renaming the temporary file over the target failed.
    #[error(
        "cannot rename {} to {}: {source}; the target must not be a directory and its \
         directory must be writable by this user",
        temp.display(),
        path.display()
    )]
    Rename {
        /// The temporary file (removed again).
        temp: PathBuf,
        /// The target.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file was replaced, but flushing its directory to disk failed, so the rename may
    /// not survive a crash.
    #[error(
        "replaced {} but could not flush its directory {} to disk: {source}",
        path.display(),
        dir.display()
    )]
    SyncDirectory {
        /// The target.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Renders one run as a Prometheus textfile.
///
/// A domain given more than once is rendered once, from its most recent snapshot (the later
/// one in `snapshots` when both were observed at the same time), since a series may appear
/// only once in the file.
pub fn render(snapshots: &[&DomainResult], run: &RunInfo, opts: &MetricsOptions) -> String {
    let mut last_run = Family::gauge(
        "mxprobe_last_run_timestamp_seconds",
        &[],
        "When the last mxprobe monitor run finished, in seconds since the Unix epoch.",
    );
    let mut run_duration = Family::gauge(
        "mxprobe_run_duration_seconds",
        &[],
        "How long the last mxprobe monitor run took.",
    );
    let mut run_domains = Family::gauge(
        "mxprobe_run_domains",
        &[],
        "How many domains the last mxprobe monitor run observed.",
    );
    last_run.set(&[], seconds_since_epoch(run.finished_at));
    run_duration.set(&[], run.duration.as_secs_f64());
    run_domains.set(&[], run.domains as f64);

    let mut domains = DomainFamilies::new(&DomainOptions {
        per_ip: opts.per_ip,
    });
    for snapshot in latest_per_domain(snapshots) {
        domains.add(snapshot);
    }

    let mut exposition = Exposition::default();
    exposition.extend([last_run, run_duration, run_domains]);
    exposition.extend(domains.into_families());
    exposition.encode()
}

/// One snapshot per domain, the most recently observed (the later one on a tie).
fn latest_per_domain<'a>(snapshots: &[&'a DomainResult]) -> Vec<&'a DomainResult> {
    let mut by_domain: BTreeMap<&str, &'a DomainResult> = BTreeMap::new();
    for snapshot in snapshots {
        let entry = by_domain
            .entry(snapshot.facts.domain.as_str())
            .or_insert(*snapshot);
        if snapshot.facts.observed_at >= entry.facts.observed_at {
            *entry = *snapshot;
        }
    }
    by_domain.into_values().collect()
}

fn seconds_since_epoch(t: OffsetDateTime) -> f64 {
    (t - OffsetDateTime::UNIX_EPOCH).as_seconds_f64()
}

/// Replaces the file at `path` with `text` so that a reader sees the old file or the new one,
/// never a mix: writes `.<name>.tmp.<pid>` in the same directory, flushes it to disk, renames
/// it over `path`, then flushes the directory. On failure the temporary file is removed and
/// the old file is left as it was.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    let Some(name) = path.file_name() else {
        return Err(WriteError::NoFileName {
            path: path.to_owned(),
        });
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));

    if let Err(source) = write_synced(&temp, text) {
        // The temporary file may not exist; there is nothing else to undo.
        let _ = fs::remove_file(&temp);
        return Err(WriteError::Temporary { temp, source });
    }
    if let Err(source) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(WriteError::Rename {
            temp,
            path: path.to_owned(),
            source,
        });
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| WriteError::SyncDirectory {
            path: path.to_owned(),
            dir: dir.to_owned(),
            source,
        })
}

fn write_synced(path: &Path, text: &str) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::io::Read as _;
    use std::process::{Command, Stdio};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use mxprobe_testpki::{LeafSpec, Validity, self_signed_leaf};

    // ---- the validator ------------------------------------------------------------------

    /// Checks `text` against the rules of the Prometheus text exposition format (version
    /// 0.0.4) and node_exporter's textfile collector: metric and label name grammar,
    /// HELP/TYPE at most once per family and before its samples, escapes, float values, no
    /// duplicate series, each family's lines contiguous, a final line feed, no timestamps.
    fn check_exposition(text: &str) -> Result<(), String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the last line does not end with a line feed".to_owned());
        }
        let mut helps: HashSet<String> = HashSet::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut sampled: HashSet<String> = HashSet::new();
        let mut closed: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();

        // Entering family `f` closes the current one; a closed family may not come back.
        let mut enter = |f: &str, current: &mut Option<String>, n: usize| {
            if current.as_deref() == Some(f) {
                return Ok(());
            }
            if closed.contains(f) {
                return Err(format!(
                    "line {n}: the lines of family {f} are not contiguous"
                ));
            }
            if let Some(c) = current.take() {
                closed.insert(c);
            }
            *current = Some(f.to_owned());
            Ok(())
        };

        for (i, line) in text.split_terminator('\n').enumerate() {
            let n = i + 1;
            let line = line.trim_matches([' ', '\t']);
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut tokens = comment
                    .trim_start_matches([' ', '\t'])
                    .splitn(2, [' ', '\t']);
                let keyword = tokens.next().unwrap_or("");
                if keyword != "HELP" && keyword != "TYPE" {
                    continue;
                }
                let rest = tokens.next().unwrap_or("").trim_start_matches([' ', '\t']);
                let (name, tail) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
                check_metric_name(name).map_err(|e| format!("line {n}: {e}"))?;
                if sampled.contains(name) {
                    return Err(format!("line {n}: {keyword} for {name} after its samples"));
                }
                enter(name, &mut current, n)?;
                if keyword == "HELP" {
                    if !helps.insert(name.to_owned()) {
                        return Err(format!("line {n}: a second HELP for {name}"));
                    }
                    check_help_escapes(tail).map_err(|e| format!("line {n}: {e}"))?;
                } else {
                    let kind = tail.trim_matches([' ', '\t']);
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(format!("line {n}: {kind:?} is not a metric type"));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(format!("line {n}: a second TYPE for {name}"));
                    }
                }
                continue;
            }

            let (name, labels, rest) = parse_sample(line).map_err(|e| format!("line {n}: {e}"))?;
            let family = family_of(&name, &types);
            enter(&family, &mut current, n)?;
            sampled.insert(family);
            let mut tokens = rest.split([' ', '\t']).filter(|t| !t.is_empty());
            let value = tokens
                .next()
                .ok_or_else(|| format!("line {n}: {name} has no value"))?;
            check_float(value).map_err(|e| format!("line {n}: {e}"))?;
            if tokens.next().is_some() {
                return Err(format!(
                    "line {n}: {name} has a timestamp or extra tokens (the textfile collector \
                     rejects client-side timestamps)"
                ));
            }
            let mut key = labels;
            key.sort();
            if !series.insert((name.clone(), key)) {
                return Err(format!(
                    "line {n}: a second sample of the same series of {name}"
                ));
            }
        }
        Ok(())
    }

    fn check_metric_name(name: &str) -> Result<(), String> {
        let mut chars = name.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if ok {
            Ok(())
        } else {
            Err(format!("{name:?} is not a metric name"))
        }
    }

    fn check_label_name(name: &str) -> Result<(), String> {
        let mut chars = name.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!("{name:?} is not a label name"));
        }
        if name.starts_with("__") {
            return Err(format!("label name {name:?} is reserved (starts with __)"));
        }
        Ok(())
    }

    fn check_help_escapes(help: &str) -> Result<(), String> {
        let mut chars = help.chars();
        while let Some(c) = chars.next() {
            if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                return Err(format!("bad escape in HELP text {help:?}"));
            }
        }
        Ok(())
    }

    /// What Go's `ParseFloat` reads in decimal: digits with an optional fraction and
    /// exponent, or (in any case) `NaN` and a signed or unsigned `Inf` / `Infinity`. Hex
    /// floats, which Go also reads, are not accepted.
    fn check_float(v: &str) -> Result<(), String> {
        if v.eq_ignore_ascii_case("nan") {
            return Ok(());
        }
        let body = v.strip_prefix(['+', '-']).unwrap_or(v);
        if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
            return Ok(());
        }
        let (mantissa, exponent) = match body.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e)),
            None => (body, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        });
        if mantissa_ok && exponent_ok {
            Ok(())
        } else {
            Err(format!("{v:?} is not a float value"))
        }
    }

    /// The family a sample belongs to: histogram and summary samples carry a suffix.
    fn family_of(name: &str, types: &HashMap<String, String>) -> String {
        for (suffix, kinds) in [
            ("_bucket", &["histogram"][..]),
            ("_sum", &["histogram", "summary"][..]),
            ("_count", &["histogram", "summary"][..]),
        ] {
            if let Some(base) = name.strip_suffix(suffix)
                && types.get(base).is_some_and(|t| kinds.contains(&t.as_str()))
            {
                return base.to_owned();
            }
        }
        name.to_owned()
    }

    type Labels = Vec<(String, String)>;

    /// Splits a sample line into name, labels (values unescaped) and the rest.
    fn parse_sample(line: &str) -> Result<(String, Labels, &str), String> {
        let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
        let name = &line[..end];
        check_metric_name(name)?;
        let mut rest = &line[end..];
        let mut labels: Labels = Vec::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let eq = inner
                    .find('=')
                    .ok_or_else(|| format!("{name}: a label without '='"))?;
                let label = &inner[..eq];
                check_label_name(label)?;
                if labels.iter().any(|(l, _)| l == label) {
                    return Err(format!("{name}: label {label} given twice"));
                }
                let quoted = inner[eq + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| format!("{name}: the value of {label} is not quoted"))?;
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let close = loop {
                    match chars.next() {
                        None => return Err(format!("{name}: the value of {label} is not closed")),
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            _ => {
                                return Err(format!("{name}: bad escape in the value of {label}"));
                            }
                        },
                        Some((_, c)) => value.push(c),
                    }
                };
                labels.push((label.to_owned(), value));
                inner = &quoted[close + 1..];
                if let Some(after) = inner.strip_prefix(',') {
                    inner = after;
                } else if !inner.starts_with('}') {
                    return Err(format!("{name}: expected ',' or '}}' after {label}"));
                }
            }
        }
        if !rest.starts_with([' ', '\t']) {
            return Err(format!("{name}: no space before the value"));
        }
        Ok((name.to_owned(), labels, rest))
    }

    /// Runs `promtool check metrics` on `text` when promtool is installed.
    fn promtool_check(text: &str) {
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("promtool is not installed: `promtool check metrics` skipped");
                return;
            }
            Err(e) => panic!("cannot start promtool: {e}"),
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn check(text: &str) {
        if let Err(e) = check_exposition(text) {
            panic!("invalid exposition: {e}\n{text}");
        }
        promtool_check(text);
    }

    #[test]
    fn the_validator_rejects_what_the_format_forbids() {
        let ok = "# HELP a_b A help with \\\\ and \\n.\n# TYPE a_b gauge\na_b{x=\"1\",y=\"q\\\"\\n\\\\\",} 1.5e3\n\
                  a_b{y=\"2\",x=\"1\"} -Inf\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n";
        assert_eq!(check_exposition(ok), Ok(()));
        assert_eq!(check_exposition(""), Ok(()));
        let bad = [
            ("a 1", "the last line does not end with a line feed"),
            ("1a 1\n", "line 1: \"1a\" is not a metric name"),
            ("a{1x=\"v\"} 1\n", "\"1x\" is not a label name"),
            (
                "a{__x=\"v\"} 1\n",
                "label name \"__x\" is reserved (starts with __)",
            ),
            ("a{x=\"v\",x=\"w\"} 1\n", "line 1: a: label x given twice"),
            (
                "a{x=\"\\t\"} 1\n",
                "line 1: a: bad escape in the value of x",
            ),
            ("a{x=\"v} 1\n", "line 1: a: the value of x is not closed"),
            ("a{x=v} 1\n", "line 1: a: the value of x is not quoted"),
            ("a one\n", "line 1: \"one\" is not a float value"),
            ("a 1e\n", "line 1: \"1e\" is not a float value"),
            ("a 1.2.3\n", "line 1: \"1.2.3\" is not a float value"),
            ("a +NaN\n", "line 1: \"+NaN\" is not a float value"),
            ("a\n", "line 1: a: no space before the value"),
            (
                "a 1 1700000000000\n",
                "line 1: a has a timestamp or extra tokens (the textfile collector rejects \
                 client-side timestamps)",
            ),
            (
                "a 1\na 2\n",
                "line 2: a second sample of the same series of a",
            ),
            (
                "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n",
                "line 2: a second sample of the same series of a",
            ),
            ("# HELP a x\n# HELP a y\n", "line 2: a second HELP for a"),
            (
                "# TYPE a gauge\n# TYPE a gauge\n",
                "line 2: a second TYPE for a",
            ),
            ("# TYPE a meter\n", "line 1: \"meter\" is not a metric type"),
            (
                "a 1\n# TYPE a gauge\n",
                "line 2: TYPE for a after its samples",
            ),
            (
                "# HELP a x \\t\n",
                "line 1: bad escape in HELP text \"x \\\\t\"",
            ),
            (
                "a 1\nb 1\na{x=\"1\"} 1\n",
                "line 3: the lines of family a are not contiguous",
            ),
            (
                "a 1\n# HELP b x\na{x=\"1\"} 1\n",
                "line 3: the lines of family a are not contiguous",
            ),
        ];
        for (text, want) in bad {
            let got = check_exposition(text).expect_err(text);
            assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
        }
    }

    // ---- the snapshots ------------------------------------------------------------------

    fn leaf_b64(name: &str, not_after: OffsetDateTime) -> String {
        let validity = Validity::new(datetime!(2026-01-01 0:00 UTC), not_after);
        let leaf = self_signed_leaf(&LeafSpec::new(&[name], validity)).unwrap();
        STANDARD.encode(leaf.der().as_ref())
    }

    fn session(mx: &str, address: &str, not_after: Option<OffsetDateTime>) -> serde_json::Value {
        match not_after {
            Some(t) => json!({
                "mx": mx, "address": address, "total-ms": 40,
                "tls": {"version": "TLSv1.3", "cipher-suite": "TLS_AES_128_GCM_SHA256",
                        "sni": mx, "chain": [leaf_b64(mx, t)]},
                "outcome": {"kind": "completed"}
            }),
            None => json!({
                "mx": mx, "address": address, "total-ms": 40,
                "outcome": {"kind": "starttls-not-offered"}
            }),
        }
    }

    fn finding(code: &str, severity: &str, inconclusive: bool) -> serde_json::Value {
        json!({"code": code, "severity": severity, "subject": {}, "message": "m",
               "inconclusive": inconclusive})
    }

    const NODATA: &str = r#"{"status": "nodata", "dnssec": "insecure"}"#;

    /// example.com: passing, MTA-STS enforce, one MX with an IPv4 and an IPv6 address whose
    /// certificates expire at different times, a warning and a notice.
    fn passing() -> DomainResult {
        let mx = "mx1.example.com";
        let nodata: serde_json::Value = serde_json::from_str(NODATA).unwrap();
        serde_json::from_value(json!({
            "facts": {
                "domain": "example.com",
                "observed_at": "2026-11-29T06:00:00Z",
                "mx": {"status": "records", "dnssec": "insecure", "cname-chain": [],
                       "records": [{"preference": 10, "exchange": mx}]},
                "sts_txt": nodata, "tlsrpt_txt": nodata,
                "hosts": [{
                    "exchange": mx, "name": mx, "preference": 10,
                    "sessions": [
                        session(mx, "192.0.2.1:25", Some(datetime!(2027-02-01 0:00 UTC))),
                        session(mx, "[2001:db8::1]:25", Some(datetime!(2027-01-15 0:00 UTC))),
                    ]
                }]
            },
            "verdict": {
                "domain": "example.com", "routing": "mx",
                "sts": {"record": "valid", "id": "20261129",
                        "policy": {"mode": "enforce", "max_age": 86400, "mx": [mx],
                                   "extensions": []}},
                "sessions": [
                    {"mx": mx, "ip": "192.0.2.1", "policy_type": "sts", "result": "success"},
                    {"mx": mx, "ip": "2001:db8::1", "policy_type": "sts", "result": "success"}
                ],
                "inconclusive": false,
                "findings": [finding("tlsrpt.none", "warning", false),
                             finding("mx.single", "notice", false)]
            }
        }))
        .unwrap()
    }

    /// example.org: failing, no policy; mx.example.org offers no STARTTLS, mx2.example.org
    /// timed out, mx3.example.org has no address.
    fn failing() -> DomainResult {
        let nodata: serde_json::Value = serde_json::from_str(NODATA).unwrap();
        serde_json::from_value(json!({
            "facts": {
                "domain": "example.org",
                "observed_at": "2026-11-29T06:01:00Z",
                "mx": {"status": "records", "dnssec": "insecure", "cname-chain": [],
                       "records": [{"preference": 10, "exchange": "mx.example.org"},
                                   {"preference": 20, "exchange": "mx2.example.org"},
                                   {"preference": 30, "exchange": "mx3.example.org"}]},
                "sts_txt": nodata, "tlsrpt_txt": nodata,
                "hosts": [
                    {"exchange": "mx.example.org", "name": "mx.example.org", "preference": 10,
                     "sessions": [session("mx.example.org", "198.51.100.7:25", None)]},
                    {"exchange": "mx2.example.org", "name": "mx2.example.org", "preference": 20,
                     "sessions": [{"mx": "mx2.example.org", "address": "198.51.100.8:25",
                                   "total-ms": 30000,
                                   "outcome": {"kind": "timeout", "phase": "greeting"}}]},
                    {"exchange": "mx3.example.org", "name": "mx3.example.org", "preference": 30}
                ]
            },
            "verdict": {
                "domain": "example.org", "routing": "mx",
                "sts": {"record": "none"},
                "sessions": [
                    {"mx": "mx.example.org", "ip": "198.51.100.7",
                     "policy_type": "no-policy-found", "result": "failure",
                     "failures": [{"result_type": "starttls-not-supported",
                                   "reason_code": "starttls-not-offered"}]},
                    {"mx": "mx2.example.org", "ip": "198.51.100.8",
                     "policy_type": "no-policy-found", "result": "inconclusive",
                     "reason": "timeout"}
                ],
                "inconclusive": true,
                "findings": [finding("smtp.starttls.not-offered", "error", false),
                             finding("smtp.timeout", "error", true),
                             finding("sts.none", "warning", false)]
            }
        }))
        .unwrap()
    }

    fn run() -> RunInfo {
        RunInfo {
            finished_at: datetime!(2026-11-29 06:05:00 UTC),
            duration: std::time::Duration::from_millis(12_500),
            domains: 2,
        }
    }

    /// Every family but the certificate expiry, which differs with `per_ip`.
    const COMMON: &str = "\
# HELP mxprobe_last_run_timestamp_seconds When the last mxprobe monitor run finished, in seconds since the Unix epoch.
# TYPE mxprobe_last_run_timestamp_seconds gauge
mxprobe_last_run_timestamp_seconds 1795932300
# HELP mxprobe_run_duration_seconds How long the last mxprobe monitor run took.
# TYPE mxprobe_run_duration_seconds gauge
mxprobe_run_duration_seconds 12.5
# HELP mxprobe_run_domains How many domains the last mxprobe monitor run observed.
# TYPE mxprobe_run_domains gauge
mxprobe_run_domains 2
# HELP mxprobe_domain_status The domain's status in the last run: 1 for the current status (pass, fail or inconclusive), 0 for the two others.
# TYPE mxprobe_domain_status gauge
mxprobe_domain_status{domain=\"example.com\",status=\"fail\"} 0
mxprobe_domain_status{domain=\"example.com\",status=\"inconclusive\"} 0
mxprobe_domain_status{domain=\"example.com\",status=\"pass\"} 1
mxprobe_domain_status{domain=\"example.org\",status=\"fail\"} 1
mxprobe_domain_status{domain=\"example.org\",status=\"inconclusive\"} 0
mxprobe_domain_status{domain=\"example.org\",status=\"pass\"} 0
# HELP mxprobe_domain_findings How many findings the last run had for the domain, by severity (those that could not be tested included).
# TYPE mxprobe_domain_findings gauge
mxprobe_domain_findings{domain=\"example.com\",severity=\"error\"} 0
mxprobe_domain_findings{domain=\"example.com\",severity=\"notice\"} 1
mxprobe_domain_findings{domain=\"example.com\",severity=\"warning\"} 1
mxprobe_domain_findings{domain=\"example.org\",severity=\"error\"} 2
mxprobe_domain_findings{domain=\"example.org\",severity=\"notice\"} 0
mxprobe_domain_findings{domain=\"example.org\",severity=\"warning\"} 1
# HELP mxprobe_domain_failing_findings How many findings at error severity say that something is wrong (not that it could not be tested); more than 0 makes the domain fail.
# TYPE mxprobe_domain_failing_findings gauge
mxprobe_domain_failing_findings{domain=\"example.com\"} 0
mxprobe_domain_failing_findings{domain=\"example.org\"} 1
# HELP mxprobe_sts_mode The mode of the domain's valid MTA-STS policy: 1 for the current mode (enforce, testing or none), 0 for the others; all 0 when no valid policy was fetched.
# TYPE mxprobe_sts_mode gauge
mxprobe_sts_mode{domain=\"example.com\",mode=\"enforce\"} 1
mxprobe_sts_mode{domain=\"example.com\",mode=\"none\"} 0
mxprobe_sts_mode{domain=\"example.com\",mode=\"testing\"} 0
mxprobe_sts_mode{domain=\"example.org\",mode=\"enforce\"} 0
mxprobe_sts_mode{domain=\"example.org\",mode=\"none\"} 0
mxprobe_sts_mode{domain=\"example.org\",mode=\"testing\"} 0
# HELP mxprobe_mx_sessions How many SMTP sessions (one per address) to the MX host ended in each result under the policy that applies to it.
# TYPE mxprobe_mx_sessions gauge
mxprobe_mx_sessions{domain=\"example.com\",mx=\"mx1.example.com\",result=\"failure\"} 0
mxprobe_mx_sessions{domain=\"example.com\",mx=\"mx1.example.com\",result=\"inconclusive\"} 0
mxprobe_mx_sessions{domain=\"example.com\",mx=\"mx1.example.com\",result=\"success\"} 2
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx.example.org\",result=\"failure\"} 1
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx.example.org\",result=\"inconclusive\"} 0
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx.example.org\",result=\"success\"} 0
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx2.example.org\",result=\"failure\"} 0
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx2.example.org\",result=\"inconclusive\"} 1
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx2.example.org\",result=\"success\"} 0
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx3.example.org\",result=\"failure\"} 0
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx3.example.org\",result=\"inconclusive\"} 0
mxprobe_mx_sessions{domain=\"example.org\",mx=\"mx3.example.org\",result=\"success\"} 0
";

    #[test]
    fn renders_a_run_exactly_one_series_per_mx() {
        let (a, b) = (passing(), failing());
        // Input order does not matter.
        let text = render(&[&b, &a], &run(), &MetricsOptions::default());
        let expiry = "\
# HELP mxprobe_mx_certificate_expiry_timestamp_seconds The earliest expiry of the leaf certificates the MX host's addresses presented, in seconds since the Unix epoch.
# TYPE mxprobe_mx_certificate_expiry_timestamp_seconds gauge
mxprobe_mx_certificate_expiry_timestamp_seconds{domain=\"example.com\",mx=\"mx1.example.com\"} 1799971200
";
        assert_eq!(text, format!("{COMMON}{expiry}"));
        assert_eq!(render(&[&a, &b], &run(), &MetricsOptions::default()), text);
        check(&text);
    }

    #[test]
    fn per_ip_gives_one_expiry_series_per_address() {
        let (a, b) = (passing(), failing());
        let text = render(&[&a, &b], &run(), &MetricsOptions { per_ip: true });
        let expiry = "\
# HELP mxprobe_mx_certificate_expiry_timestamp_seconds When the leaf certificate the MX address presented expires, in seconds since the Unix epoch.
# TYPE mxprobe_mx_certificate_expiry_timestamp_seconds gauge
mxprobe_mx_certificate_expiry_timestamp_seconds{domain=\"example.com\",mx=\"mx1.example.com\",ip=\"192.0.2.1\"} 1801440000
mxprobe_mx_certificate_expiry_timestamp_seconds{domain=\"example.com\",mx=\"mx1.example.com\",ip=\"2001:db8::1\"} 1799971200
";
        assert_eq!(text, format!("{COMMON}{expiry}"));
        check(&text);
    }

    #[test]
    fn a_domain_given_twice_is_rendered_once_from_its_latest_snapshot() {
        let old = passing();
        let mut new = failing();
        new.facts.domain = old.facts.domain.clone();
        new.verdict.domain = old.facts.domain.clone();
        let text = render(&[&new, &old], &run(), &MetricsOptions::default());
        check(&text);
        assert!(text.contains("mxprobe_domain_status{domain=\"example.com\",status=\"fail\"} 1\n"));
        assert_eq!(text.matches("mxprobe_domain_status{").count(), 3);
        assert!(!text.contains("domain=\"example.org\""));
        assert!(!text.contains("mx1.example.com"));
    }

    #[test]
    fn an_empty_run_still_describes_every_family() {
        let text = render(
            &[],
            &RunInfo {
                finished_at: datetime!(2026-11-29 06:05:00.25 UTC),
                duration: std::time::Duration::ZERO,
                domains: 0,
            },
            &MetricsOptions::default(),
        );
        check(&text);
        assert_eq!(text.matches("# TYPE ").count(), 9);
        assert!(text.contains("\nmxprobe_last_run_timestamp_seconds 1795932300.25\n"));
        assert!(text.contains("\nmxprobe_run_duration_seconds 0\n"));
        assert!(text.contains("\nmxprobe_run_domains 0\n"));
    }

    #[test]
    fn odd_label_values_are_escaped_and_values_read_back() {
        let odd = "a\\b\"c\nd";
        let mut family = Family::gauge("mxprobe_test", &["domain"], "A test.");
        family.set(&[odd], 1.0);
        family.set(&["plain"], 2.0);
        family.set(&["x-half"], 12.5);
        family.set(&["y-inf"], f64::INFINITY);
        family.set(&["z-nan"], f64::NAN);
        let mut exposition = Exposition::default();
        exposition.push(family);
        let text = exposition.encode();
        assert_eq!(
            text,
            "# HELP mxprobe_test A test.\n# TYPE mxprobe_test gauge\n\
             mxprobe_test{domain=\"a\\\\b\\\"c\\nd\"} 1\nmxprobe_test{domain=\"plain\"} 2\n\
             mxprobe_test{domain=\"x-half\"} 12.5\nmxprobe_test{domain=\"y-inf\"} +Inf\n\
             mxprobe_test{domain=\"z-nan\"} NaN\n"
        );
        check(&text);
        let (_, labels, _) = parse_sample(text.lines().nth(2).unwrap()).unwrap();
        assert_eq!(labels, vec![("domain".to_owned(), odd.to_owned())]);
    }

    // ---- writing ------------------------------------------------------------------------

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mxprobe-metrics-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writing_replaces_the_file_by_rename_and_leaves_no_temporary_file() {
        let dir = temp_dir("replace");
        let path = dir.join("mxprobe.prom");
        fs::write(&path, "old contents\n").unwrap();
        // A reader that opened the old file before the write keeps reading the old file in
        // full: the new text went to another file that was renamed over it. Writing in place
        // would change what this reader sees.
        let mut reader = File::open(&path).unwrap();

        write_atomically(&path, "new contents\n").unwrap();

        assert_eq!(fs::read_to_string(&path).unwrap(), "new contents\n");
        let mut old = String::new();
        reader.read_to_string(&mut old).unwrap();
        assert_eq!(old, "old contents\n");
        assert_eq!(dir_entries(&dir), vec!["mxprobe.prom"]);

        // A temporary file left by a crashed run with the same process id is overwritten.
        let stale = dir.join(format!(".mxprobe.prom.tmp.{}", std::process::id()));
        fs::write(&stale, "stale and longer than the new text\n").unwrap();
        write_atomically(&path, "third\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "third\n");
        assert_eq!(dir_entries(&dir), vec!["mxprobe.prom"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_readers_see_the_old_or_the_new_file_never_a_mix() {
        let dir = temp_dir("readers");
        let path = dir.join("mxprobe.prom");
        let a = "a".repeat(1 << 20);
        let b = "b".repeat(1 << 20);
        write_atomically(&path, &a).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, done, a, b) = (path.clone(), done.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0_u32;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                    let seen = fs::read_to_string(&path).unwrap();
                    assert!(
                        seen == a || seen == b,
                        "a partial file of {} bytes",
                        seen.len()
                    );
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..40 {
            write_atomically(&path, if i % 2 == 0 { &b } else { &a }).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(dir_entries(&dir), vec!["mxprobe.prom"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_names_the_cause() {
        let dir = temp_dir("fail");
        let path = dir.join("mxprobe.prom");

        // The target is a directory: the rename fails, the temporary file is removed.
        fs::create_dir(&path).unwrap();
        let err = write_atomically(&path, "x\n").unwrap_err();
        let temp = dir.join(format!(".mxprobe.prom.tmp.{}", std::process::id()));
        assert!(
            matches!(&err, WriteError::Rename { temp: t, path: p, .. } if *t == temp && *p == path),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&format!(
            "cannot rename {} to {}: ",
            temp.display(),
            path.display()
        )));
        assert_eq!(dir_entries(&dir), vec!["mxprobe.prom"]);
        assert!(path.is_dir());

        // The directory does not exist: nothing is created.
        let missing = dir.join("missing").join("mxprobe.prom");
        let err = write_atomically(&missing, "x\n").unwrap_err();
        assert!(
            matches!(&err, WriteError::Temporary { temp, .. }
                if *temp == dir.join("missing").join(format!(".mxprobe.prom.tmp.{}", std::process::id()))),
            "{err:?}"
        );
        assert!(!dir.join("missing").exists());

        let err = write_atomically(Path::new("/"), "x\n").unwrap_err();
        assert!(matches!(err, WriteError::NoFileName { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "/: not a file path; give the path of the .prom file to write, e.g. \
             /var/lib/node_exporter/textfile/mxprobe.prom"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
