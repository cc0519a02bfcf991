//! Spotify streaming history: the extended form (`Streaming_History_Audio_*.json`: `ts`,
//! `ms_played`, `master_metadata_*`, `spotify_track_uri`, `reason_end`, `skipped`) and the short
//! account-data form (`StreamingHistory*.json`: `endTime`, `artistName`, `trackName`,
//! `msPlayed`). Both are JSON arrays; the form is detected per record. Spotify stamps the END
//! of a stream; the event time is its start (end minus time played).

use super::input::{LenientText, ReadOptions, ReadReport, Skips, json_array_items, line_of};
use crate::data::error::DataError;
use crate::data::log::{EventLog, RawEvent, name_key};
use crate::data::time::parse_datetime;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Record {
    // extended
    ts: Option<String>,
    username: Option<String>,
    ms_played: Option<f64>,
    master_metadata_track_name: Option<String>,
    master_metadata_album_artist_name: Option<String>,
    spotify_track_uri: Option<String>,
    // account data
    #[serde(rename = "endTime")]
    end_time: Option<String>,
    #[serde(rename = "artistName")]
    artist_name: Option<String>,
    #[serde(rename = "trackName")]
    track_name: Option<String>,
    #[serde(rename = "msPlayed")]
    ms_played_short: Option<f64>,
    // podcasts: the extended form's episode, the account data's episode and show
    #[serde(alias = "episodeName")]
    episode_name: Option<String>,
    #[serde(rename = "podcastName")]
    podcast_name: Option<String>,
}

/// The longest stream one record may hold (a day, in milliseconds): more is a broken record.
const MAX_STREAM_MS: f64 = 86_400_000.0;

pub fn read_spotify(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<ReadReport, DataError> {
    let lenient = LenientText::read(path)?;
    let text = &lenient.text;
    let src = text.as_bytes();
    let mut skips = Skips::new(path, opts);
    skips.report.sha256 = lenient.sha256.clone();
    skips.report.bytes = lenient.bytes;
    // Account data splits podcasts into their own files (StreamingHistory_podcast_*.json).
    let podcasts = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_lowercase().contains("podcast"));
    skips.report.lines = line_of(src, src.len()) - u64::from(src.ends_with(b"\n"));
    let records = json_array_items(text).map_err(|(line, e)| DataError::Malformed {
        path: path.to_path_buf(),
        line,
        reason: format!("not a JSON array of streams: {e}"),
    })?;
    let mut key = String::new();
    for (line, raw) in records {
        if lenient.damaged(line, raw) {
            skips.skip(line, "not valid UTF-8")?;
            continue;
        }
        let r: Record = match serde_json::from_str(raw) {
            Ok(r) => r,
            Err(e) => {
                skips.skip(line, format!("not a stream record: {e}"))?;
                continue;
            }
        };
        let (stamp, ms, artist, title, uri) =
            if r.ts.is_some() || r.master_metadata_track_name.is_some() {
                (
                    r.ts,
                    r.ms_played,
                    r.master_metadata_album_artist_name,
                    r.master_metadata_track_name,
                    r.spotify_track_uri,
                )
            } else {
                (
                    r.end_time,
                    r.ms_played_short,
                    r.artist_name,
                    r.track_name,
                    None,
                )
            };
        let Some(stamp) = stamp else {
            skips.skip(line, "no 'ts' or 'endTime'")?;
            continue;
        };
        let Some(end) = parse_datetime(stamp.as_bytes()) else {
            skips.skip(line, format!("time '{stamp}' is not ISO-8601"))?;
            continue;
        };
        let Some(ms) = ms.filter(|m| m.is_finite() && *m >= 0.0) else {
            skips.skip(line, "no valid 'ms_played' / 'msPlayed'")?;
            continue;
        };
        if ms > MAX_STREAM_MS {
            skips.skip(line, format!("'ms_played' {ms} is more than a day"))?;
            continue;
        }
        let Some(end) = skips.time(line, "ts", end)? else {
            continue;
        };
        let (Some(artist), Some(title), false) = (
            artist.filter(|a| !a.is_empty()),
            title.filter(|t| !t.is_empty()),
            podcasts || r.episode_name.is_some() || r.podcast_name.is_some(),
        ) else {
            // Podcast episodes and audiobooks have no track name (or name an episode or a
            // show): not music plays.
            skips.report.ignored += 1;
            continue;
        };
        let user = opts
            .user
            .as_deref()
            .or(r.username.as_deref())
            .unwrap_or("listener");
        let track_key = match uri.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => u,
            None => {
                name_key(&mut key, &artist, &title);
                key.as_str()
            }
        };
        log.push(&RawEvent {
            user,
            ts: (end - (ms / 1000.0).floor() as i64).max(skips.times.min),
            artist_key: &artist,
            artist_name: &artist,
            track_key,
            track_name: &title,
            duration_s: None,
            played_s: Some((ms / 1000.0) as f32),
        });
        skips.report.events += 1;
    }
    Ok(skips.report)
}
