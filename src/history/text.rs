//! The timeline for people (`mxprobe history`).

use std::io::{self, Write};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use super::TimelineEntry;
use mxprobe_core::alert::ChangeKind;
use mxprobe_core::domain::DomainName;

/// The timestamp form of [`write_timeline`]: RFC 3339 in UTC to the second.
const SHOWN_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Writes the timeline for people: a heading line, then one line per run with the time,
/// status, finding counts, MTA-STS mode and id, MX hosts and the kinds of change alerted.
pub fn write_timeline(
    out: &mut impl Write,
    domain: &DomainName,
    entries: &[TimelineEntry],
) -> io::Result<()> {
    match entries.len() {
        0 => writeln!(out, "{domain}: no runs recorded")?,
        1 => writeln!(out, "{domain}: 1 run")?,
        n => writeln!(out, "{domain}: {n} runs")?,
    }
    for e in entries {
        let when = e
            .observed_at
            .to_offset(time::UtcOffset::UTC)
            .format(SHOWN_TIME)
            .map_err(io::Error::other)?;
        let sts = match (&e.policy_mode, &e.policy_id) {
            (Some(mode), Some(id)) => format!("mta-sts {mode} (id {id})"),
            (Some(mode), None) => format!("mta-sts {mode}"),
            (None, Some(id)) => format!("mta-sts id {id}, no valid policy"),
            (None, None) => "no mta-sts".to_owned(),
        };
        let mx = if e.mx.is_empty() {
            "no mx".to_owned()
        } else {
            format!("mx {}", e.mx.join(", "))
        };
        write!(
            out,
            "{when}  {:<12}  {}, {}, {}  {sts}  {mx}",
            e.status.as_str(),
            counted(e.errors, "error"),
            counted(e.warnings, "warning"),
            counted(e.notices, "notice"),
        )?;
        if let Some(alert) = &e.alert {
            let mut kinds: Vec<ChangeKind> = Vec::new();
            for change in &alert.changes {
                if !kinds.contains(&change.kind) {
                    kinds.push(change.kind);
                }
            }
            let names: Vec<String> = kinds.iter().map(kind_name).collect();
            write!(out, "  alert: {}", names.join(", "))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `1 error`, `2 errors`, `0 errors`.
fn counted(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The wire name of a change kind (`new-failure`), as in the alert JSON.
fn kind_name(kind: &ChangeKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{kind:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{example, four_runs};
    use super::*;

    #[test]
    fn one_line_per_run_with_counts_policy_mx_and_the_kinds_alerted() {
        let mut out = Vec::new();
        write_timeline(&mut out, &example(), &four_runs()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "example.com: 4 runs\n\
             2026-11-01T06:00:00Z  pass          0 errors, 0 warnings, 1 notice  \
             mta-sts enforce (id 2026a)  mx mx1.example.com, mx2.example.com\n\
             2026-11-02T06:00:00Z  fail          1 error, 1 warning, 1 notice  \
             mta-sts testing (id 2026b)  mx mx1.example.com  alert: new-failure, policy-changed\n\
             2026-11-03T06:00:00Z  inconclusive  1 error, 0 warnings, 0 notices  \
             no mta-sts  mx mx1.example.com, mx2.example.com\n\
             2026-11-04T06:00:00Z  inconclusive  0 errors, 1 warning, 0 notices  \
             no mta-sts  mx mx1.example.com, mx2.example.com\n"
        );
        let mut out = Vec::new();
        write_timeline(&mut out, &example(), &four_runs()[..1]).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .starts_with("example.com: 1 run\n"),
        );
        let mut out = Vec::new();
        let other = DomainName::parse("example.net").unwrap();
        write_timeline(&mut out, &other, &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "example.net: no runs recorded\n"
        );
    }
}
