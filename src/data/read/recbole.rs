//! RecBole atomic `.inter` files: tab-separated with a typed header (`user_id:token
//! item_id:token rating:float timestamp:float`). The user comes from `user_id` (or
//! `session_id`), the track from `item_id` (or `track_id`), the time from `timestamp` when
//! present, else from the line order.
//!
//! A `.item` file beside the `.inter` file (same stem, RecBole's layout) names the tracks: the
//! title from `movie_title`, `title`, `track_name` or `name` (with `release_year` or `year` in
//! brackets when present), the artist from `artist` or `artist_name`, the length in seconds
//! from `duration_s` or `duration`. Items it does not name keep their id as name. Lines it
//! skips are counted and listed in the `.inter` file's report, under the `.item` file's name.
//!
//! How much of each play was heard: `played_s` (seconds) in the `.inter` file, or `completion`
//! (a ratio in 0..1, as `encore catalog simulate` writes it). A ratio becomes seconds through
//! the item's duration; an item without one is read as a one-second track, so the ratio
//! survives either way.

use super::input::{ReadOptions, ReadReport, Skips, for_each_line};
use crate::data::error::DataError;
use crate::data::log::{EventLog, RawEvent};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Token,
    TokenSeq,
    Float,
    FloatSeq,
}

pub fn read_recbole(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<ReadReport, DataError> {
    let item_path = path.with_extension("item");
    let (items, item_report) = match path.extension() {
        Some(e) if e == "inter" && item_path.exists() => read_items(&item_path, opts)?,
        _ => (HashMap::new(), ReadReport::default()),
    };
    let mut skips = Skips::new(path, opts);
    let mut header: Option<Vec<(String, Kind)>> = None;
    let (mut ui, mut ii, mut ti) = (0usize, 0usize, None::<usize>);
    let (mut pi, mut ci) = (None::<usize>, None::<usize>);
    let mut events = 0u64;
    let (sha, bytes) = for_each_line(path, opts, |no, line| {
        skips.report.lines = no;
        let Ok(line) = std::str::from_utf8(line) else {
            return skips.skip(no, "not valid UTF-8");
        };
        let Some(h) = &header else {
            let cols = parse_header(path, no, line)?;
            let find = |names: &[&str]| cols.iter().position(|(n, _)| names.contains(&n.as_str()));
            let missing = |what: &str| DataError::Malformed {
                path: path.to_path_buf(),
                line: no,
                reason: format!("header has no {what} column"),
            };
            ui = find(&["user_id", "session_id"]).ok_or_else(|| missing("user_id"))?;
            ii = find(&["item_id", "track_id"]).ok_or_else(|| missing("item_id"))?;
            ti = find(&["timestamp"]);
            pi = find(&["played_s"]);
            ci = find(&["completion"]);
            header = Some(cols);
            return Ok(());
        };
        if line.is_empty() {
            return Ok(());
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != h.len() {
            return skips.skip(
                no,
                format!("expected {} fields, found {}", h.len(), f.len()),
            );
        }
        for ((name, kind), v) in h.iter().zip(&f) {
            if *kind == Kind::Float && !v.is_empty() && v.trim().parse::<f64>().is_err() {
                return skips.skip(no, format!("{name} '{v}' is not a float"));
            }
            if *kind == Kind::FloatSeq && v.split_whitespace().any(|x| x.parse::<f64>().is_err()) {
                return skips.skip(no, format!("{name} '{v}' is not a float sequence"));
            }
        }
        let (user, item) = (f[ui], f[ii]);
        if user.is_empty() || item.is_empty() {
            return skips.skip(no, "empty user or item id");
        }
        let ts = match ti {
            Some(t) => match f[t].trim().parse::<f64>() {
                Ok(v) => match skips.time_f64(no, "timestamp", v)? {
                    Some(ts) => ts,
                    None => return Ok(()),
                },
                Err(_) => return skips.skip(no, format!("timestamp '{}' is not a number", f[t])),
            },
            None => no as i64,
        };
        let meta = items.get(item);
        let title = meta.map_or(item, |m| m.title.as_deref().unwrap_or(item));
        let artist = meta.map_or("", |m| m.artist.as_str());
        let float = |c: Option<usize>| {
            c.and_then(|c| f[c].trim().parse::<f32>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let mut duration_s = meta.and_then(|m| m.duration_s);
        let played_s = match (float(pi), float(ci)) {
            (Some(p), _) => Some(p),
            (None, Some(c)) => Some(c * *duration_s.get_or_insert(1.0)),
            (None, None) => None,
        };
        log.push(&RawEvent {
            user,
            ts,
            artist_key: artist,
            artist_name: artist,
            track_key: item,
            track_name: title,
            duration_s,
            played_s,
        });
        events += 1;
        Ok(())
    })?;
    if header.is_none() {
        return Err(DataError::invalid(path, "empty file: no typed header"));
    }
    skips.report.sha256 = sha;
    skips.report.bytes = bytes;
    skips.report.events = events;
    // The `.item` file's skipped lines, each issue naming that file.
    skips
        .report
        .add_skips(item_report.skipped, item_report.issues);
    Ok(skips.report)
}

/// A typed RecBole header: `name:type` fields.
fn parse_header(path: &Path, no: u64, line: &str) -> Result<Vec<(String, Kind)>, DataError> {
    let mut cols = Vec::new();
    for col in line.split('\t') {
        let Some((name, kind)) = col.rsplit_once(':') else {
            return Err(DataError::Malformed {
                path: path.to_path_buf(),
                line: no,
                reason: format!("header field '{col}' is not name:type"),
            });
        };
        let kind = match kind {
            "token" => Kind::Token,
            "token_seq" => Kind::TokenSeq,
            "float" => Kind::Float,
            "float_seq" => Kind::FloatSeq,
            k => {
                return Err(DataError::Malformed {
                    path: path.to_path_buf(),
                    line: no,
                    reason: format!(
                        "header field '{col}' has unknown type '{k}' (token, token_seq, float, float_seq)"
                    ),
                });
            }
        };
        cols.push((name.to_string(), kind));
    }
    Ok(cols)
}

/// Where a `.item` file keeps what it says of an item.
#[derive(Clone, Copy)]
struct ItemColumns {
    id: usize,
    title: Option<usize>,
    year: Option<usize>,
    artist: Option<usize>,
    duration: Option<usize>,
    width: usize,
}

/// What a `.item` file says of one item.
#[derive(Clone, Debug, Default, PartialEq)]
struct ItemMeta {
    title: Option<String>,
    artist: String,
    duration_s: Option<f32>,
}

/// Item id -> title, artist and duration from a RecBole `.item` file, and the report of the
/// lines skipped.
fn read_items(
    path: &Path,
    opts: &ReadOptions,
) -> Result<(HashMap<String, ItemMeta>, ReadReport), DataError> {
    let mut skips = Skips::new(path, opts);
    let mut cols: Option<ItemColumns> = None;
    let mut out = HashMap::new();
    for_each_line(path, opts, |no, line| {
        let Ok(line) = std::str::from_utf8(line) else {
            return skips.skip(no, "not valid UTF-8");
        };
        let Some(ItemColumns {
            id,
            title,
            year,
            artist,
            duration,
            width,
        }) = cols
        else {
            let h = parse_header(path, no, line)?;
            let find = |names: &[&str]| h.iter().position(|(n, _)| names.contains(&n.as_str()));
            let id = find(&["item_id", "track_id"]).ok_or_else(|| DataError::Malformed {
                path: path.to_path_buf(),
                line: no,
                reason: "header has no item_id column".into(),
            })?;
            cols = Some(ItemColumns {
                id,
                title: find(&["movie_title", "title", "track_name", "name"]),
                year: find(&["release_year", "year"]),
                artist: find(&["artist", "artist_name"]),
                duration: find(&["duration_s", "duration"]),
                width: h.len(),
            });
            return Ok(());
        };
        if line.is_empty() {
            return Ok(());
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != width {
            return skips.skip(no, format!("expected {width} fields, found {}", f.len()));
        }
        if f[id].is_empty() {
            return Ok(());
        }
        let title = title
            .map(|t| f[t].trim())
            .filter(|t| !t.is_empty())
            .map(
                |t| match year.map(|y| f[y].trim()).filter(|y| !y.is_empty()) {
                    Some(y) => format!("{t} ({y})"),
                    None => t.to_string(),
                },
            );
        let duration_s = match duration.map(|d| f[d].trim()).filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => match d.parse::<f32>() {
                Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                _ => return skips.skip(no, format!("duration '{d}' is not a positive number")),
            },
        };
        let artist = artist.map_or("", |a| f[a].trim()).to_string();
        out.insert(
            f[id].to_string(),
            ItemMeta {
                title,
                artist,
                duration_s,
            },
        );
        Ok(())
    })?;
    Ok((out, skips.report))
}
