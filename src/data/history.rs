//! Listening history recorded in the app: plays with completion ratios, skips and sessions.
//!
//! Platform-independent (the web app stores it in IndexedDB; tests run it natively and in the
//! browser). A history file is the JSON of [`HistoryFile`].

use crate::data::error::DataError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A new session starts when a play begins more than this long after the previous one ended.
pub const SESSION_GAP_MS: f64 = 20.0 * 60.0 * 1000.0;

/// A play counts as skipped when the listener moved on before hearing this share of it.
pub const SKIP_BELOW: f64 = 0.9;

/// One play of a track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Play {
    /// Unique within a history: the start time in ms, made unique by the recorder.
    pub id: f64,
    pub track_id: String,
    pub title: String,
    pub artist: String,
    /// Start, ms since the Unix epoch.
    pub started_ms: f64,
    /// Seconds actually heard (seeking does not count).
    pub played_s: f64,
    pub duration_s: f64,
    /// `played_s / duration_s`, in [0, 1].
    pub completion: f64,
    /// The listener moved on before the end (skip button or another track).
    pub skipped: bool,
    pub session: u32,
}

/// The exported file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryFile {
    pub format: String,
    pub plays: Vec<Play>,
}

pub const HISTORY_FORMAT: &str = "encore-history/1";

/// Counts seconds heard from the media clock: forward steps no longer than `MAX_STEP` seconds
/// of wall time (at the playback rate) add up; jumps (seeks) and steps backwards do not.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    last: Option<f64>,
    pub played_s: f64,
}

impl Tracker {
    pub const MAX_STEP: f64 = 1.5;

    /// The media's current time, whenever it changes, and its playback rate.
    pub fn observe(&mut self, t: f64, rate: f64) {
        if let Some(last) = self.last {
            let dt = t - last;
            if dt > 0.0 && dt <= Self::MAX_STEP * rate.max(1.0) {
                self.played_s += dt;
            }
        }
        self.last = Some(t);
    }

    /// After a seek the next observation starts a new stretch.
    pub fn seeked(&mut self, t: f64) {
        self.last = Some(t);
    }
}

/// The completion ratio of `played_s` of `duration_s`, clamped to [0, 1].
pub fn completion(played_s: f64, duration_s: f64) -> f64 {
    if duration_s > 0.0 && played_s.is_finite() {
        (played_s / duration_s).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The session a play starting at `started_ms` belongs to, after `previous`.
pub fn session_after(previous: Option<&Play>, started_ms: f64) -> u32 {
    match previous {
        None => 0,
        Some(p) => {
            let ended = p.started_ms + p.played_s * 1000.0;
            if started_ms - ended > SESSION_GAP_MS {
                p.session + 1
            } else {
                p.session
            }
        }
    }
}

/// A play in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    pub track_id: String,
    pub title: String,
    pub artist: String,
    pub duration_s: f64,
    pub started_ms: f64,
}

/// Builds the record of a finished play. `ended` is true when the track played to its end; its
/// completion is still what was heard (a seek to the end is not a full listen), rounded up to 1
/// from 95 %.
pub fn finish_play(previous: Option<&Play>, s: &Started, played_s: f64, ended: bool) -> Play {
    let (started_ms, duration_s) = (s.started_ms, s.duration_s);
    let mut id = started_ms;
    if let Some(p) = previous
        && id <= p.id
    {
        id = p.id + 1.0;
    }
    let c = match completion(played_s, duration_s) {
        c if ended && c >= 0.95 => 1.0,
        c => c,
    };
    Play {
        id,
        track_id: s.track_id.clone(),
        title: s.title.clone(),
        artist: s.artist.clone(),
        started_ms,
        played_s,
        duration_s,
        completion: c,
        skipped: !ended && c < SKIP_BELOW,
        session: session_after(previous, started_ms),
    }
}

/// Writes a history file.
pub fn export(plays: &[Play]) -> String {
    serde_json::to_string_pretty(&HistoryFile {
        format: HISTORY_FORMAT.to_string(),
        plays: plays.to_vec(),
    })
    .expect("plays serialise")
}

/// Reads and checks a history file; the error names the file, the line and the problem.
pub fn import(name: &str, text: &str) -> Result<Vec<Play>, DataError> {
    let file: HistoryFile = serde_json::from_str(text).map_err(|e| DataError::json(name, e))?;
    if file.format != HISTORY_FORMAT {
        return Err(DataError::invalid(
            Path::new(name),
            format!("format is '{}', expected '{HISTORY_FORMAT}'", file.format),
        ));
    }
    for (i, p) in file.plays.iter().enumerate() {
        let bad = |what: &str| {
            Err(DataError::Field {
                name: name.to_string(),
                field: format!("play {} ({})", i + 1, p.track_id),
                reason: what.to_string(),
            })
        };
        if p.track_id.is_empty() {
            return bad("empty track_id");
        }
        if !(p.started_ms.is_finite() && p.started_ms > 0.0) {
            return bad("started_ms is not a time");
        }
        if !(p.duration_s.is_finite() && p.duration_s > 0.0) {
            return bad("duration_s is not positive");
        }
        if !(p.played_s.is_finite() && p.played_s >= 0.0) {
            return bad("played_s is negative");
        }
        if !(0.0..=1.0).contains(&p.completion) {
            return bad("completion is outside [0, 1]");
        }
    }
    Ok(file.plays)
}

/// Merges imported plays into a history by id (imported ones win) and orders it by start time.
pub fn merge(mut plays: Vec<Play>, imported: Vec<Play>) -> Vec<Play> {
    plays.retain(|p| !imported.iter().any(|q| q.id == p.id));
    plays.extend(imported);
    plays.sort_by(|a, b| {
        a.started_ms
            .total_cmp(&b.started_ms)
            .then(a.id.total_cmp(&b.id))
    });
    plays
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_heard_seconds_not_seeks() {
        let mut t = Tracker::default();
        for i in 0..=10 {
            t.observe(i as f64 * 0.25, 1.0);
        }
        t.observe(100.0, 1.0); // a seek
        t.observe(100.5, 1.0);
        t.observe(90.0, 1.0); // backwards: not counted, listening goes on from there
        t.observe(90.25, 1.0);
        assert!((t.played_s - 3.25).abs() < 1e-9, "{}", t.played_s);
        t.observe(94.25, 4.0); // 4 s of media in one step at 4x speed
        assert!((t.played_s - 7.25).abs() < 1e-9, "{}", t.played_s);
    }

    fn started(id: &str, started_ms: f64, duration_s: f64) -> Started {
        Started {
            track_id: id.into(),
            title: id.to_uppercase(),
            artist: "A".into(),
            duration_s,
            started_ms,
        }
    }

    #[test]
    fn sessions_skips_and_round_trip() {
        let a = finish_play(None, &started("x", 1e12, 120.0), 30.0, false);
        assert_eq!((a.session, a.skipped), (0, true));
        assert!((a.completion - 0.25).abs() < 1e-12);
        let b = finish_play(Some(&a), &started("y", 1e12 + 31_000.0, 200.0), 197.0, true);
        assert_eq!((b.session, b.skipped, b.completion), (0, false, 1.0));
        let c = finish_play(
            Some(&b),
            &started("z", 1e12 + 231_000.0 + SESSION_GAP_MS + 1.0, 100.0),
            5.0,
            false,
        );
        assert_eq!(c.session, 1);
        let text = export(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(import("h.json", &text).unwrap(), vec![a.clone(), b, c]);
        let merged = merge(vec![a.clone()], import("h.json", &text).unwrap());
        assert_eq!(merged.len(), 3);
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let e = import(
            "h.json",
            "{\"format\": \"encore-history/1\",\n \"plays\": [1,]}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("h.json: line 2"), "{e}");
        let e = import("h.json", r#"{"format": "other", "plays": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("format is 'other'"), "{e}");
        let mut p = finish_play(None, &started("x", 1e12, 120.0), 30.0, false);
        p.completion = 2.0;
        let e = import("h.json", &export(&[p])).unwrap_err().to_string();
        assert!(e.contains("play 1 (x): completion"), "{e}");
    }
}
