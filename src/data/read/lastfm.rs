//! LastFM-1K (Celma 2010): `userid \t timestamp \t artist-mbid \t artist \t track-mbid \t track`,
//! no header, no quoting, newest-first per user; and `userid-profile.tsv`.

use super::{DataError, ReadOptions, ReadReport, Skips, for_each_line};
use crate::data::log::{EventLog, RawEvent, name_key};
use crate::data::time::parse_datetime;
use std::path::Path;

/// Appends the plays of a LastFM-1K TSV to `log`. Missing MBIDs become name keys (the paper's
/// step 1): the artist keyed by its name, the track by artist and track name.
pub fn read_lastfm1k(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<ReadReport, DataError> {
    let mut skips = Skips::new(path, opts);
    let mut key = String::new();
    let mut last_user: Option<(Vec<u8>, u32)> = None;
    let mut events = 0u64;
    let mut lines = 0u64;
    let (sha, bytes) = for_each_line(path, opts, |no, line| {
        lines = no;
        let mut f = line.splitn(7, |&b| b == b'\t');
        let (Some(user), Some(ts), Some(artid), Some(artname), Some(traid), Some(traname)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            let n = line.split(|&b| b == b'\t').count();
            return skips.skip(no, format!("expected 6 tab-separated fields, found {n}"));
        };
        if f.next().is_some() {
            let n = line.split(|&b| b == b'\t').count();
            return skips.skip(no, format!("expected 6 tab-separated fields, found {n}"));
        }
        let Some(t) = parse_datetime(ts) else {
            return skips.skip(
                no,
                format!(
                    "timestamp '{}' is not ISO-8601",
                    String::from_utf8_lossy(ts)
                ),
            );
        };
        if user.is_empty() {
            return skips.skip(no, "empty user id");
        }
        let (Ok(artid), Ok(artname), Ok(traid), Ok(traname)) = (
            std::str::from_utf8(artid),
            std::str::from_utf8(artname),
            std::str::from_utf8(traid),
            std::str::from_utf8(traname),
        ) else {
            return skips.skip(no, "not valid UTF-8");
        };
        let Ok(user_str) = std::str::from_utf8(user) else {
            return skips.skip(no, "not valid UTF-8");
        };
        if traid.is_empty() && (artname.is_empty() || traname.is_empty()) {
            return skips.skip(no, "no track MBID and no artist and track name");
        }
        let track_key = if traid.is_empty() {
            name_key(&mut key, artname, traname);
            key.as_str()
        } else {
            traid
        };
        let e = RawEvent {
            user: user_str,
            ts: t,
            artist_key: if artid.is_empty() { artname } else { artid },
            artist_name: artname,
            track_key,
            track_name: traname,
            duration_s: None,
            played_s: None,
        };
        let uid = match &last_user {
            Some((u, id)) if u == user => *id,
            _ => {
                let id = log.users.id(user_str);
                last_user = Some((user.to_vec(), id));
                id
            }
        };
        log.push_with_user(uid, &e);
        events += 1;
        Ok(())
    })?;
    skips.report.sha256 = sha;
    skips.report.bytes = bytes;
    skips.report.lines = lines;
    skips.report.events = events;
    Ok(skips.report)
}

/// A row of `userid-profile.tsv`. Empty fields are `None`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserProfile {
    pub user: String,
    pub gender: Option<String>,
    pub age: Option<u32>,
    pub country: Option<String>,
    /// Sign-up date as written (`Aug 13, 2006`).
    pub registered: Option<String>,
}

/// Reads `userid-profile.tsv` (`#id gender age country registered`, header optional).
pub fn read_profiles(
    path: &Path,
    opts: &ReadOptions,
) -> Result<(Vec<UserProfile>, ReadReport), DataError> {
    let mut skips = Skips::new(path, opts);
    let mut out = Vec::new();
    let (sha, bytes) = for_each_line(path, opts, |no, line| {
        skips.report.lines = no;
        let Ok(line) = std::str::from_utf8(line) else {
            return skips.skip(no, "not valid UTF-8");
        };
        if line.starts_with('#') || line.trim().is_empty() {
            return Ok(());
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 5 {
            return skips.skip(
                no,
                format!("expected 5 tab-separated fields, found {}", f.len()),
            );
        }
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let age = match f[2].trim() {
            "" => None,
            a => match a.parse() {
                Ok(a) => Some(a),
                Err(_) => return skips.skip(no, format!("age '{a}' is not a whole number")),
            },
        };
        if f[0].is_empty() {
            return skips.skip(no, "empty user id");
        }
        out.push(UserProfile {
            user: f[0].to_string(),
            gender: opt(f[1]),
            age,
            country: opt(f[3]),
            registered: opt(f[4]),
        });
        skips.report.events += 1;
        Ok(())
    })?;
    skips.report.sha256 = sha;
    skips.report.bytes = bytes;
    Ok((out, skips.report))
}
