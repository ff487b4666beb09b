//! The delivery of each stored alert on each channel: pending until marked delivered, with
//! the failed attempts counted.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::error::During;
use super::{AlertId, History, HistoryError, stored_time};
use mxprobe_core::alert::Alert;

impl History {
    /// Every alert still pending on `channel`, oldest first (from this run and earlier ones).
    pub fn pending(&self, channel: &str) -> Result<Vec<(AlertId, Alert)>, HistoryError> {
        let what = || format!("reading the alerts pending on channel {channel:?}");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT a.id, a.alert FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                 WHERE d.channel = ?1 AND d.state = 'pending'
                 ORDER BY a.id",
            )
            .during(what)?;
        let rows = stmt
            .query_map(params![channel], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .during(what)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .during(what)?;
        rows.into_iter()
            .map(|(id, json)| {
                let alert = serde_json::from_str(&json).map_err(|source| HistoryError::Json {
                    what: format!("reading stored alert {id}"),
                    source,
                })?;
                Ok((AlertId(id), alert))
            })
            .collect()
    }

    /// Marks the alert delivered on `channel` at `at`. Marking a delivered alert again
    /// changes nothing (the first delivery time is kept).
    pub fn mark_delivered(
        &mut self,
        alert: AlertId,
        channel: &str,
        at: OffsetDateTime,
    ) -> Result<(), HistoryError> {
        let at = stored_time(at)?;
        let changed = self
            .conn
            .execute(
                "UPDATE deliveries
                 SET state = 'delivered', attempts = attempts + 1, last_attempt_at = ?3,
                     delivered_at = ?3
                 WHERE alert_id = ?1 AND channel = ?2 AND state = 'pending'",
                params![alert.0, channel, at],
            )
            .during(|| format!("marking alert {} delivered on channel {channel:?}", alert.0))?;
        if changed == 1 {
            return Ok(());
        }
        match self.delivery_state(alert, channel)? {
            Some(DeliveryState::Delivered) => Ok(()),
            // Pending cannot occur here: the update above would have matched it.
            Some(DeliveryState::Pending) | None => Err(HistoryError::NoSuchDelivery {
                alert: alert.0,
                channel: channel.to_owned(),
            }),
        }
    }

    /// Records a failed attempt to deliver the alert on `channel` at `at`: the attempt count
    /// grows and `error` is kept as the last error; the delivery stays pending.
    pub fn mark_failed(
        &mut self,
        alert: AlertId,
        channel: &str,
        at: OffsetDateTime,
        error: &str,
    ) -> Result<(), HistoryError> {
        let at = stored_time(at)?;
        let changed = self
            .conn
            .execute(
                "UPDATE deliveries
                 SET attempts = attempts + 1, last_attempt_at = ?3, last_error = ?4
                 WHERE alert_id = ?1 AND channel = ?2 AND state = 'pending'",
                params![alert.0, channel, at, error],
            )
            .during(|| {
                format!(
                    "recording a failed delivery of alert {} on channel {channel:?}",
                    alert.0
                )
            })?;
        if changed == 1 {
            return Ok(());
        }
        match self.delivery_state(alert, channel)? {
            Some(DeliveryState::Delivered) => Err(HistoryError::AlreadyDelivered {
                alert: alert.0,
                channel: channel.to_owned(),
            }),
            Some(DeliveryState::Pending) | None => Err(HistoryError::NoSuchDelivery {
                alert: alert.0,
                channel: channel.to_owned(),
            }),
        }
    }

    /// Whether `alert` has a delivery on `channel`, and its state.
    fn delivery_state(
        &self,
        alert: AlertId,
        channel: &str,
    ) -> Result<Option<DeliveryState>, HistoryError> {
        let what = || {
            format!(
                "reading the delivery of alert {} on channel {channel:?}",
                alert.0
            )
        };
        let state: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM deliveries WHERE alert_id = ?1 AND channel = ?2",
                params![alert.0, channel],
                |row| row.get(0),
            )
            .optional()
            .during(what)?;
        state
            .map(|state| match state.as_str() {
                "pending" => Ok(DeliveryState::Pending),
                "delivered" => Ok(DeliveryState::Delivered),
                _ => Err(HistoryError::Corrupt {
                    what: format!(
                        "deliveries.state of alert {} on channel {channel:?}",
                        alert.0
                    ),
                    value: state,
                }),
            })
            .transpose()
    }
}

/// The state of one delivery.
enum DeliveryState {
    Pending,
    Delivered,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::super::test_support::*;
    use super::*;
    use mxprobe_core::alert::{ChangeKind, DomainStatus};

    #[test]
    fn deliveries_are_tracked_per_channel() {
        let dir = TempDir::new("deliveries");
        let mut h = History::open(&dir.db()).unwrap();
        let s1 = snapshot("2026-11-01T06:00:00Z", &[], None, &["mx1.example.com"]);
        let s2 = snapshot("2026-11-02T06:00:00Z", &[], None, &["mx2.example.com"]);
        let a1 = alert(
            datetime!(2026-11-01 06:00 UTC),
            DomainStatus::Fail,
            &[ChangeKind::NewFailure],
        );
        let a2 = alert(
            datetime!(2026-11-02 06:00 UTC),
            DomainStatus::Pass,
            &[ChangeKind::MxChanged],
        );
        let r1 = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
        let id1 = h
            .record(r1, &s1, Some(&a1), &["webhook", "email", "webhook"])
            .unwrap()
            .unwrap();
        let r2 = h.begin_run(datetime!(2026-11-02 06:00 UTC)).unwrap();
        let id2 = h
            .record(r2, &s2, Some(&a2), &["webhook", "email"])
            .unwrap()
            .unwrap();

        // Oldest first, on both channels; no delivery on a channel not named.
        assert_eq!(
            h.pending("webhook").unwrap(),
            vec![(id1, a1.clone()), (id2, a2.clone())]
        );
        assert_eq!(
            h.pending("email").unwrap(),
            vec![(id1, a1.clone()), (id2, a2.clone())]
        );
        assert_eq!(h.pending("exec").unwrap(), vec![]);

        // The webhook works; e-mail fails twice for the first alert.
        h.mark_delivered(id1, "webhook", datetime!(2026-11-02 06:01 UTC))
            .unwrap();
        h.mark_failed(
            id1,
            "email",
            datetime!(2026-11-02 06:01 UTC),
            "connection refused",
        )
        .unwrap();
        h.mark_failed(
            id1,
            "email",
            datetime!(2026-11-02 06:02 UTC),
            "421 try later",
        )
        .unwrap();
        assert_eq!(h.pending("webhook").unwrap(), vec![(id2, a2.clone())]);
        assert_eq!(
            h.pending("email").unwrap(),
            vec![(id1, a1.clone()), (id2, a2.clone())]
        );

        let row = |h: &History,
                   id: AlertId,
                   channel: &str|
         -> (String, i64, Option<String>, Option<String>, Option<String>) {
            h.conn
                .query_row(
                    "SELECT state, attempts, last_error, last_attempt_at, delivered_at
                     FROM deliveries WHERE alert_id = ?1 AND channel = ?2",
                    params![id.0, channel],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .unwrap()
        };
        assert_eq!(
            row(&h, id1, "email"),
            (
                "pending".to_owned(),
                2,
                Some("421 try later".to_owned()),
                Some("2026-11-02T06:02:00.000000000Z".to_owned()),
                None
            )
        );
        assert_eq!(
            row(&h, id1, "webhook"),
            (
                "delivered".to_owned(),
                1,
                None,
                Some("2026-11-02T06:01:00.000000000Z".to_owned()),
                Some("2026-11-02T06:01:00.000000000Z".to_owned())
            )
        );

        // Marking again keeps the first delivery; a failure after delivery is refused.
        h.mark_delivered(id1, "webhook", datetime!(2026-11-03 00:00 UTC))
            .unwrap();
        assert_eq!(
            row(&h, id1, "webhook").4.as_deref(),
            Some("2026-11-02T06:01:00.000000000Z")
        );
        let err = h
            .mark_failed(id1, "webhook", datetime!(2026-11-03 00:00 UTC), "late")
            .unwrap_err();
        assert!(
            matches!(&err, HistoryError::AlreadyDelivered { alert: a, channel }
                if *a == id1.0 && channel == "webhook"),
            "{err:?}"
        );
        for err in [
            h.mark_delivered(id1, "exec", datetime!(2026-11-03 00:00 UTC))
                .unwrap_err(),
            h.mark_failed(AlertId(99), "email", datetime!(2026-11-03 00:00 UTC), "x")
                .unwrap_err(),
        ] {
            assert!(
                matches!(err, HistoryError::NoSuchDelivery { .. }),
                "{err:?}"
            );
        }

        h.mark_delivered(id1, "email", datetime!(2026-11-02 07:00 UTC))
            .unwrap();
        assert_eq!(h.pending("email").unwrap(), vec![(id2, a2.clone())]);
        assert_eq!(row(&h, id1, "email").1, 3);
    }

    #[test]
    fn alerts_recorded_before_a_crash_are_still_pending_after_reopening() {
        let dir = TempDir::new("crash");
        let path = dir.db();
        let a = alert(
            datetime!(2026-11-01 06:00 UTC),
            DomainStatus::Fail,
            &[ChangeKind::NewFailure],
        );
        let id = {
            let mut h = History::open(&path).unwrap();
            let run = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
            let s = snapshot(
                "2026-11-01T06:00:00Z",
                &[("error", false)],
                None,
                &["mx1.example.com"],
            );
            let id = h
                .record(run, &s, Some(&a), &["webhook", "email", "exec"])
                .unwrap()
                .unwrap();
            // The run never finishes and nothing is marked: the process dies here. The files
            // as they are on disk at this moment (no checkpoint, no clean close) are what a
            // killed process leaves behind.
            std::fs::copy(&path, dir.0.join("killed.db")).unwrap();
            std::fs::copy(dir.0.join("history.db-wal"), dir.0.join("killed.db-wal")).unwrap();
            id
        };
        for db in [path, dir.0.join("killed.db")] {
            let h = History::open(&db).unwrap();
            for channel in ["webhook", "email", "exec"] {
                assert_eq!(
                    h.pending(channel).unwrap(),
                    vec![(id, a.clone())],
                    "{} {channel}",
                    db.display()
                );
            }
        }
        let h = History::open(&dir.db()).unwrap();
        assert_eq!(
            h.last_alert_at(&example()).unwrap(),
            Some(datetime!(2026-11-01 06:00 UTC))
        );
    }
}
