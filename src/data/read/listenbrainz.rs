//! ListenBrainz listen exports: a JSON array of listens or JSON lines (one listen per line, the
//! form of the zip export). Each listen has `listened_at` (Unix seconds), `user_name` (optional)
//! and `track_metadata` with `artist_name`, `track_name` and optional `additional_info`
//! (`duration_ms`, `recording_mbid`, `artist_mbids`) and `mbid_mapping`.

use super::input::{ReadOptions, ReadReport, Skips, json_array_items, read_small_text, sha256_hex};
use crate::data::error::DataError;
use crate::data::log::{EventLog, RawEvent, name_key};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Listen {
    listened_at: Option<serde_json::Value>,
    user_name: Option<String>,
    track_metadata: Option<Meta>,
}

#[derive(Deserialize, Default)]
struct Meta {
    artist_name: Option<String>,
    track_name: Option<String>,
    additional_info: Option<Info>,
    mbid_mapping: Option<Mapping>,
}

#[derive(Deserialize, Default)]
struct Info {
    duration_ms: Option<f64>,
    duration: Option<f64>,
    recording_mbid: Option<String>,
    artist_mbids: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct Mapping {
    recording_mbid: Option<String>,
    artist_mbids: Option<Vec<String>>,
}

pub fn read_listenbrainz(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<ReadReport, DataError> {
    let text = read_small_text(path)?;
    let src = text.as_bytes();
    let mut skips = Skips::new(path, opts);
    skips.report.sha256 = sha256_hex(src);
    skips.report.bytes = src.len() as u64;
    let mut items: Vec<(u64, &str)> = Vec::new();
    if text.trim_start().starts_with('[') {
        let records = json_array_items(&text).map_err(|(line, e)| DataError::Malformed {
            path: path.to_path_buf(),
            line,
            reason: format!("not a JSON array of listens: {e}"),
        })?;
        items = records;
    } else {
        for (i, l) in text.lines().enumerate() {
            if !l.trim().is_empty() {
                items.push((i as u64 + 1, l));
            }
        }
    }
    skips.report.lines = text.lines().count() as u64;
    let mut key = String::new();
    for (line, item) in items {
        let l: Listen = match serde_json::from_str(item) {
            Ok(l) => l,
            Err(e) => {
                skips.skip(line, format!("not a listen: {e}"))?;
                continue;
            }
        };
        let ts = match &l.listened_at {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s
                .parse()
                .ok()
                .or_else(|| crate::data::time::parse_datetime(s.as_bytes()).map(|t| t as f64)),
            _ => None,
        };
        let Some(ts) = ts else {
            skips.skip(line, "no valid 'listened_at'")?;
            continue;
        };
        let Some(ts) = skips.time_f64(line, "listened_at", ts)? else {
            continue;
        };
        let Some(m) = l.track_metadata else {
            skips.skip(line, "no 'track_metadata'")?;
            continue;
        };
        let (Some(artist), Some(title)) = (
            m.artist_name.filter(|a| !a.is_empty()),
            m.track_name.filter(|t| !t.is_empty()),
        ) else {
            skips.skip(line, "no artist_name or track_name")?;
            continue;
        };
        let info = m.additional_info.unwrap_or_default();
        let map = m.mbid_mapping.unwrap_or_default();
        let recording = map
            .recording_mbid
            .or(info.recording_mbid)
            .filter(|s| !s.is_empty());
        let artist_mbid = map
            .artist_mbids
            .or(info.artist_mbids)
            .and_then(|v| v.into_iter().next())
            .filter(|s| !s.is_empty());
        let duration = info
            .duration_ms
            .map(|ms| ms / 1000.0)
            .or(info.duration)
            .map(|d| d as f32);
        let user = opts
            .user
            .as_deref()
            .or(l.user_name.as_deref())
            .unwrap_or("listener");
        let track_key = match recording.as_deref() {
            Some(r) => r,
            None => {
                name_key(&mut key, &artist, &title);
                key.as_str()
            }
        };
        log.push(&RawEvent {
            user,
            ts,
            artist_key: artist_mbid.as_deref().unwrap_or(&artist),
            artist_name: &artist,
            track_key,
            track_name: &title,
            duration_s: duration,
            played_s: None,
        });
        skips.report.events += 1;
    }
    Ok(skips.report)
}
