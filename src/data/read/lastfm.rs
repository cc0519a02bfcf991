//! LastFM-1K (Celma 2010): `userid \t timestamp \t artist-mbid \t artist \t track-mbid \t track`,
//! no header, no quoting, newest-first per user; and `userid-profile.tsv`.

use super::input::{
    ReadOptions, ReadReport, Skips, for_each_line, line_aligned_ranges, lines_in_range, sha256_file,
};
use crate::data::error::DataError;
use crate::data::log::{EventLog, RawEvent, name_key};
use crate::data::time::parse_datetime;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Files larger than this are parsed by several threads.
const PARALLEL_BYTES: u64 = 64 << 20;

/// Appends the plays of a LastFM-1K TSV to `log`. Missing MBIDs become name keys (the paper's
/// step 1): the artist keyed by its name, the track by artist and track name.
///
/// Large files are cut into line-aligned ranges parsed in parallel, each into its own log; the
/// parts are then appended in file order, which gives exactly the ids, order and report a
/// single pass would.
pub fn read_lastfm1k(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<ReadReport, DataError> {
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let parts = if len >= PARALLEL_BYTES { threads } else { 1 };
    read_lastfm1k_in_parts(path, log, opts, parts)
}

/// [`read_lastfm1k`] with the file cut into `parts` ranges parsed on as many threads.
pub fn read_lastfm1k_in_parts(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
    parts: usize,
) -> Result<ReadReport, DataError> {
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let ranges = line_aligned_ranges(path, parts.max(1))?;
    let done = AtomicU64::new(0);
    let progress = |n: u64| {
        let total = done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(p) = &opts.progress {
            p(total);
        }
    };
    let parts: Vec<Result<Part, DataError>> = std::thread::scope(|scope| {
        let hasher = (ranges.len() > 1).then(|| scope.spawn(|| sha256_file(path)));
        let handles: Vec<_> = ranges
            .iter()
            .map(|r| {
                let (r, progress) = (r.clone(), &progress);
                let single = ranges.len() == 1;
                scope.spawn(move || parse_range(path, r, single, opts, progress))
            })
            .collect();
        let mut parts: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("parser thread panicked"))
            .collect();
        if let Some(h) = hasher {
            let sha = h.join().expect("hashing thread panicked");
            match (sha, parts.first_mut()) {
                (Ok(sha), Some(Ok(first))) => first.sha256 = Some(sha),
                (Err(e), _) => parts.push(Err(e)),
                _ => {}
            }
        }
        parts
    });
    let mut report = ReadReport {
        file: path.display().to_string(),
        bytes: len,
        ..Default::default()
    };
    let mut lines_before = 0u64;
    let mut ok = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Ok(p) => ok.push(p),
            // In strict mode the first part that failed holds the earliest malformed line,
            // since parts are in file order; its line number is relative to its range.
            Err(DataError::Malformed { path, line, reason }) => {
                let before: u64 = ok.iter().map(|p: &Part| p.lines).sum();
                return Err(DataError::Malformed {
                    path,
                    line: line + before,
                    reason,
                });
            }
            Err(e) => return Err(e),
        }
    }
    for p in ok {
        if let Some(sha) = p.sha256 {
            report.sha256 = sha;
        }
        let shifted = p.report.issues.into_iter().map(|mut issue| {
            issue.line += lines_before;
            issue
        });
        report.add_skips(p.report.skipped, shifted);
        report.events += p.report.events;
        lines_before += p.lines;
        log.append(p.log);
    }
    report.lines = lines_before;
    Ok(report)
}

struct Part {
    log: EventLog,
    report: ReadReport,
    lines: u64,
    sha256: Option<String>,
}

fn parse_range(
    path: &Path,
    range: std::ops::Range<u64>,
    hash: bool,
    opts: &ReadOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Part, DataError> {
    let mut skips = Skips::new(path, opts);
    let mut log = EventLog::default();
    let mut key = String::new();
    let mut last_user: Option<(Vec<u8>, u32)> = None;
    let (sha, _, lines) = lines_in_range(path, range, hash, progress, |no, line| {
        parse_line(no, line, &mut log, &mut skips, &mut key, &mut last_user)
    })?;
    Ok(Part {
        log,
        report: skips.report,
        lines,
        sha256: sha,
    })
}

fn parse_line(
    no: u64,
    line: &[u8],
    log: &mut EventLog,
    skips: &mut Skips<'_>,
    key: &mut String,
    last_user: &mut Option<(Vec<u8>, u32)>,
) -> Result<(), DataError> {
    // Field boundaries with memchr, then one UTF-8 check for the whole line.
    let mut tabs = [0usize; 5];
    let mut n = 0;
    for p in memchr::memchr_iter(b'\t', line) {
        if n == 5 {
            n += 1;
            break;
        }
        tabs[n] = p;
        n += 1;
    }
    if n != 5 {
        let found = memchr::memchr_iter(b'\t', line).count() + 1;
        return skips.skip(
            no,
            format!("expected 6 tab-separated fields, found {found}"),
        );
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return skips.skip(no, "not valid UTF-8");
    };
    let (user, ts, artid) = (
        &line[..tabs[0]],
        &line[tabs[0] + 1..tabs[1]],
        &line[tabs[1] + 1..tabs[2]],
    );
    let (artname, traid, traname) = (
        &line[tabs[2] + 1..tabs[3]],
        &line[tabs[3] + 1..tabs[4]],
        &line[tabs[4] + 1..],
    );
    let Some(t) = parse_datetime(ts.as_bytes()) else {
        return skips.skip(no, format!("timestamp '{ts}' is not ISO-8601"));
    };
    let Some(t) = skips.time(no, "timestamp", t)? else {
        return Ok(());
    };
    if user.is_empty() {
        return skips.skip(no, "empty user id");
    }
    if traid.is_empty() && (artname.is_empty() || traname.is_empty()) {
        return skips.skip(no, "no track MBID and no artist and track name");
    }
    let track_key = if traid.is_empty() {
        name_key(key, artname, traname);
        key.as_str()
    } else {
        traid
    };
    let e = RawEvent {
        user,
        ts: t,
        artist_key: if artid.is_empty() { artname } else { artid },
        artist_name: artname,
        track_key,
        track_name: traname,
        duration_s: None,
        played_s: None,
    };
    let uid = match last_user {
        Some((u, id)) if u == user.as_bytes() => *id,
        _ => {
            let id = log.users.id(user);
            *last_user = Some((user.as_bytes().to_vec(), id));
            id
        }
    };
    log.push_with_user(uid, &e);
    skips.report.events += 1;
    Ok(())
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
