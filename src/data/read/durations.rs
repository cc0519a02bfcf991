//! Track metadata with durations: TSV, CSV or JSON. Text files need a header naming a track id
//! column (`track_id`, `track_mbid`, `key`, `uri`) and/or `artist` + `title`, and a duration
//! column (`duration_s`, `duration`, `seconds` in seconds, or `duration_ms`). JSON is an array
//! of objects with the same names. Lookup is by track key first, then by artist and title.

use super::input::{json_array_items, read_small_text};
use crate::data::error::DataError;
use crate::data::log::Durations;
use std::path::Path;

const ID: &[&str] = &[
    "track_id",
    "track_mbid",
    "traid",
    "key",
    "uri",
    "spotify_track_uri",
    "id",
];
const ARTIST: &[&str] = &["artist", "artist_name", "artname"];
const TITLE: &[&str] = &["title", "track", "track_name", "traname", "name"];
const SECONDS: &[&str] = &["duration_s", "duration", "seconds", "length"];
const MILLIS: &[&str] = &["duration_ms", "ms"];

pub fn read_durations(path: &Path) -> Result<Durations, DataError> {
    let text = read_small_text(path)?;
    let mut out = Durations::default();
    let bad = |line: u64, reason: String| DataError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    if text.trim_start().starts_with('[') {
        let rows = json_array_items(&text)
            .map_err(|(line, e)| bad(line, format!("not a JSON array: {e}")))?;
        for (line, raw) in rows {
            let obj: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(raw).map_err(|e| bad(line, format!("not an object: {e}")))?;
            let s = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| obj.get(*n))
                    .and_then(|v| v.as_str().map(str::to_string))
            };
            let f = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| obj.get(*n))
                    .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            };
            let secs = f(SECONDS).or_else(|| f(MILLIS).map(|ms| ms / 1000.0));
            let Some(secs) = secs.filter(|s| s.is_finite() && *s > 0.0) else {
                return Err(bad(line, "no positive duration".into()));
            };
            let (id, artist, title) = (s(ID), s(ARTIST), s(TITLE));
            if id.is_none() && (artist.is_none() || title.is_none()) {
                return Err(bad(line, "neither a track id nor artist and title".into()));
            }
            out.insert(
                id.as_deref(),
                artist.as_deref(),
                title.as_deref(),
                secs as f32,
            );
        }
        return Ok(out);
    }
    let head = text.lines().next().unwrap_or_default();
    let sep = if head.contains('\t') { b'\t' } else { b',' };
    let rows = crate::util::delimited::read_rows(text.as_bytes(), sep)
        .map_err(|(line, e)| bad(line, e))?;
    let mut rows = rows.into_iter();
    let Some(head) = rows.next() else {
        return Err(DataError::invalid(path, "empty file"));
    };
    let cols: Vec<String> = head
        .fields
        .iter()
        .map(|c| c.trim_start_matches('#').to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
    let (id, artist, title) = (find(ID), find(ARTIST), find(TITLE));
    let (secs, ms) = (find(SECONDS), find(MILLIS));
    if secs.is_none() && ms.is_none() {
        return Err(bad(
            1,
            format!("header has no duration column ({})", SECONDS.join(", ")),
        ));
    }
    if id.is_none() && (artist.is_none() || title.is_none()) {
        return Err(bad(
            1,
            "header has neither a track id column nor artist and title".into(),
        ));
    }
    for row in rows {
        let (no, f) = (row.line, row.fields);
        if f.len() != cols.len() {
            return Err(bad(
                no,
                format!("expected {} fields, found {}", cols.len(), f.len()),
            ));
        }
        let get = |c: Option<usize>| c.map(|c| f[c].as_str()).filter(|s| !s.is_empty());
        let v = match (secs, ms) {
            (Some(c), _) => f[c].trim().parse::<f64>().ok(),
            (None, Some(c)) => f[c].trim().parse::<f64>().ok().map(|m| m / 1000.0),
            _ => None,
        };
        let Some(v) = v.filter(|v| v.is_finite() && *v > 0.0) else {
            return Err(bad(no, "duration is not a positive number".into()));
        };
        out.insert(get(id), get(artist), get(title), v as f32);
    }
    Ok(out)
}
