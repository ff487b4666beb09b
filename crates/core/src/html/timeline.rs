//! The certificate expiry timeline: every MX and policy-host certificate seen, once each
//! (by SHA-256), on a time axis with the 7- and 21-day warning windows, drawn as inline SVG.
//!
//! Memory stays flat as the run grows: only the [`MAX_CERTIFICATES`] certificates that
//! expire first are kept (the ones a reader acts on); the rest are counted.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::tls::cert::CertSummary;

use super::view::{Leaves, State};
use super::{day, minute};

/// The most certificates the timeline shows.
pub const MAX_CERTIFICATES: usize = 200;

/// Where the hosts that presented a certificate are named: a few, then a count.
const NAMED_HOSTS: usize = 3;

/// The warning windows before expiry, in days (as `monitor --expiry-warn` defaults).
const WINDOWS: [i64; 2] = [21, 7];

/// One certificate on the timeline.
#[derive(Debug, Clone)]
struct Entry {
    sha256: String,
    subject: String,
    issuer: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    /// `mx1.example.com (MX)`, `mta-sts.example.com (policy host)`.
    hosts: Vec<String>,
    more_hosts: usize,
}

/// The certificates that expire first, once each.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// By (notAfter, SHA-256): the last is the one to drop.
    by_expiry: BTreeMap<(OffsetDateTime, String), Entry>,
    /// notAfter by SHA-256, for the kept entries.
    kept: HashMap<String, OffsetDateTime>,
    /// Certificates dropped (or never kept) because later ones were full.
    pub(super) dropped: usize,
}

impl Timeline {
    /// Adds the leaf certificates of a domain's MX sessions and of its policy host.
    pub(crate) fn add(&mut self, leaves: &Leaves) {
        for (exchange, _, c) in &leaves.mx {
            self.add_cert(c, format!("{exchange} (MX)"));
        }
        if let Some((host, c)) = &leaves.policy {
            self.add_cert(c, format!("{host} (policy host)"));
        }
    }

    pub(super) fn add_cert(&mut self, c: &CertSummary, host: String) {
        if let Some(not_after) = self.kept.get(&c.sha256) {
            let entry = self
                .by_expiry
                .get_mut(&(*not_after, c.sha256.clone()))
                .expect("kept entries are in the map");
            if !entry.hosts.contains(&host) {
                if entry.hosts.len() < NAMED_HOSTS {
                    entry.hosts.push(host);
                } else {
                    entry.more_hosts += 1;
                }
            }
            return;
        }
        if self.kept.len() >= MAX_CERTIFICATES {
            let last = self.by_expiry.keys().next_back().cloned();
            match last {
                Some(last) if c.not_after < last.0 => {
                    self.by_expiry.remove(&last);
                    self.kept.remove(&last.1);
                    self.dropped += 1;
                }
                _ => {
                    self.dropped += 1;
                    return;
                }
            }
        }
        self.kept.insert(c.sha256.clone(), c.not_after);
        self.by_expiry.insert(
            (c.not_after, c.sha256.clone()),
            Entry {
                sha256: c.sha256.clone(),
                subject: c.subject.clone(),
                issuer: c.issuer.clone(),
                not_before: c.not_before,
                not_after: c.not_after,
                hosts: vec![host],
                more_hosts: 0,
            },
        );
    }

    /// The timeline as the template draws it, at `now`.
    pub(crate) fn view(&self, now: OffsetDateTime) -> TimelineView {
        let entries: Vec<&Entry> = self.by_expiry.values().collect();
        let start = now - Duration::days(30);
        let latest = entries
            .iter()
            .map(|e| e.not_after)
            .max()
            .unwrap_or(now)
            .min(now + Duration::days(400));
        let end = latest.max(now + Duration::days(90)) + Duration::days(10);
        let span = (end - start).whole_seconds().max(1) as f64;
        let x = |t: OffsetDateTime| -> f64 {
            let t = t.clamp(start, end);
            let f = (t - start).whole_seconds() as f64 / span;
            LABEL_WIDTH + f * PLOT_WIDTH
        };
        let rows = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let days = (e.not_after - now).whole_days();
                let state = if e.not_after <= now || days < WINDOWS[1] {
                    State::Fail
                } else if days < WINDOWS[0] {
                    State::Warn
                } else {
                    State::Ok
                };
                let mut hosts = e.hosts.join(", ");
                if e.more_hosts > 0 {
                    hosts.push_str(&format!(" and {} more", e.more_hosts));
                }
                let y = TOP + i as f64 * ROW_HEIGHT;
                let (x0, x1) = (x(e.not_before), x(e.not_after));
                TimelineRow {
                    y: fmt(y),
                    text_y: fmt(y + ROW_HEIGHT * 0.7),
                    bar_y: fmt(y + ROW_HEIGHT * 0.3),
                    bar_x: fmt(x0),
                    bar_width: fmt((x1 - x0).max(1.0)),
                    end_x: fmt(x1 - 2.0),
                    label: shorten(&hosts, 44),
                    hosts,
                    subject: e.subject.clone(),
                    issuer: e.issuer.clone(),
                    sha256: e.sha256.clone(),
                    not_after: minute(e.not_after),
                    state,
                    symbol: state.symbol(),
                    left: if e.not_after <= now {
                        "expired".to_owned()
                    } else {
                        format!("{days} days left")
                    },
                }
            })
            .collect::<Vec<_>>();
        let height = TOP + rows.len().max(1) as f64 * ROW_HEIGHT + 8.0;
        // A tick at the start of every month (every third when the axis is long).
        let months = (end - start).whole_days() / 30;
        let step = if months > 8 { 3 } else { 1 };
        let mut ticks = Vec::new();
        let mut m = start.date().replace_day(1).expect("day 1 exists");
        let mut n = 0;
        while m.midnight().assume_utc() <= end {
            let t = m.midnight().assume_utc();
            if t >= start && n % step == 0 {
                ticks.push(Tick {
                    x: fmt(x(t)),
                    label: day(t),
                });
            }
            n += 1;
            m = m.replace_day(28).expect("day 28 exists") + Duration::days(4);
            m = m.replace_day(1).expect("day 1 exists");
        }
        TimelineView {
            width: fmt(LABEL_WIDTH + PLOT_WIDTH + 10.0),
            height: fmt(height),
            axis_bottom: fmt(height - 4.0),
            now_x: fmt(x(now)),
            now_label: day(now),
            win21_x: fmt(x(now + Duration::days(WINDOWS[1]))),
            win21_width: fmt(
                x(now + Duration::days(WINDOWS[0])) - x(now + Duration::days(WINDOWS[1]))
            ),
            win7_x: fmt(x(now)),
            win7_width: fmt(x(now + Duration::days(WINDOWS[1])) - x(now)),
            ticks,
            rows,
            dropped: self.dropped,
            max: MAX_CERTIFICATES,
        }
    }
}

const LABEL_WIDTH: f64 = 300.0;
const PLOT_WIDTH: f64 = 900.0;
const ROW_HEIGHT: f64 = 18.0;
const TOP: f64 = 34.0;

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// At most `max` characters, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('\u{2026}');
        out
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct TimelineView {
    width: String,
    height: String,
    axis_bottom: String,
    now_x: String,
    now_label: String,
    win21_x: String,
    win21_width: String,
    win7_x: String,
    win7_width: String,
    ticks: Vec<Tick>,
    pub(crate) rows: Vec<TimelineRow>,
    pub(super) dropped: usize,
    max: usize,
}

#[derive(Debug, Serialize)]
struct Tick {
    x: String,
    label: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct TimelineRow {
    y: String,
    text_y: String,
    bar_y: String,
    bar_x: String,
    bar_width: String,
    end_x: String,
    label: String,
    hosts: String,
    subject: String,
    issuer: String,
    sha256: String,
    not_after: String,
    state: State,
    symbol: &'static str,
    left: String,
}
