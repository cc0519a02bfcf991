//! ListenBrainz listen exports: a JSON array of listens or JSON lines (one listen per line, the
//! form of the zip export). Each listen has `listened_at` (Unix seconds), `user_name` (optional)
//! and `track_metadata` with `artist_name`, `track_name` and optional `additional_info`
//! (`duration_ms`, `recording_mbid`, `artist_mbids`) and `mbid_mapping`.

use super::input::{LenientText, ReadOptions, ReadReport, Skips, json_array, json_member, line_of};
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

/// Each listen's source text and starting line, in any of the forms: a JSON array, JSON
/// lines, or an object wrapping the array (`{"listens": [...]}`, the submission form
/// `{"listen_type": "import", "payload": [...]}`, or an API response
/// `{"payload": {"listens": [...]}}`).
fn listen_items<'a>(path: &Path, text: &'a str) -> Result<Vec<(u64, &'a str)>, DataError> {
    let start = text.len() - text.trim_start().len();
    let array = if text[start..].starts_with('[') {
        Some(start)
    } else {
        wrapped_array(text, start)
    };
    let Some(at) = array else {
        return Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i as u64 + 1, l))
            .collect());
    };
    let offset = line_of(text.as_bytes(), at) - 1;
    let malformed = |(line, e): (u64, String)| DataError::Malformed {
        path: path.to_path_buf(),
        line: line + offset,
        reason: format!("not a JSON array of listens: {e}"),
    };
    let items = json_array(&text[at..], at == start).map_err(malformed)?;
    Ok(items.into_iter().map(|(l, s)| (l + offset, s)).collect())
}

/// Where the array of listens starts in a wrapping object at byte `at` (see
/// [`listen_items`]); `None` for JSON lines and other objects.
fn wrapped_array(text: &str, at: usize) -> Option<usize> {
    let is_array = |i: usize| (text.as_bytes().get(i) == Some(&b'[')).then_some(i);
    if let Some(i) = json_member(text, at, "listens") {
        return is_array(i);
    }
    let p = json_member(text, at, "payload")?;
    is_array(p).or_else(|| json_member(text, p, "listens").and_then(is_array))
}

pub fn read_listenbrainz(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<ReadReport, DataError> {
    let lenient = LenientText::read(path)?;
    let text = lenient.text.as_str();
    let mut skips = Skips::new(path, opts);
    skips.report.sha256 = lenient.sha256.clone();
    skips.report.bytes = lenient.bytes;
    let items = listen_items(path, text)?;
    skips.report.lines = text.lines().count() as u64;
    let mut key = String::new();
    for (line, item) in items {
        if lenient.damaged(line, item) {
            skips.skip(line, "not valid UTF-8")?;
            continue;
        }
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
