//! The S3-Rec data format: `NAME.txt` with one chronological sequence per line (`user item
//! item ...`, integer ids from 1), `NAME_sample.txt` with that user's negatives for sampled
//! evaluation (`user neg neg ...`, one line per user in the same order), and
//! `NAME_item2attributes.json` (`{"item": [attribute, ...]}`).

use super::input::{ReadOptions, ReadReport, Skips, for_each_line, read_small};
use crate::data::error::DataError;
use crate::data::log::{EventLog, RawEvent};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Sequences as written, original integer ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct S3Rec {
    pub users: Vec<u32>,
    pub sequences: Vec<Vec<u32>>,
}

fn ids(s: &str) -> Result<Vec<u32>, String> {
    s.split_ascii_whitespace()
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| format!("'{t}' is not a non-negative integer id"))
        })
        .collect()
}

/// Reads a sequence file into `log` (times are positions: 0, 1, 2, ... per user) and returns
/// the sequences with their original ids as well.
pub fn read_s3rec(
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<(ReadReport, S3Rec), DataError> {
    let mut skips = Skips::new(path, opts);
    let mut out = S3Rec::default();
    let mut buf = itoa_buf();
    let (sha, bytes) = for_each_line(path, opts, |no, line| {
        skips.report.lines = no;
        let Ok(line) = std::str::from_utf8(line) else {
            return skips.skip(no, "not valid UTF-8");
        };
        if line.trim().is_empty() {
            return Ok(());
        }
        let v = match ids(line) {
            Ok(v) => v,
            Err(e) => return skips.skip(no, e),
        };
        if v.len() < 2 {
            return skips.skip(no, "a user with no items");
        }
        let user = v[0].to_string();
        for (pos, &item) in v[1..].iter().enumerate() {
            let key = fmt_u32(&mut buf, item);
            log.push(&RawEvent {
                user: &user,
                ts: pos as i64,
                artist_key: "",
                artist_name: "",
                track_key: key,
                track_name: key,
                ..Default::default()
            });
        }
        skips.report.events += v.len() as u64 - 1;
        out.users.push(v[0]);
        out.sequences.push(v[1..].to_vec());
        Ok(())
    })?;
    skips.report.sha256 = sha;
    skips.report.bytes = bytes;
    Ok((skips.report, out))
}

fn itoa_buf() -> String {
    String::with_capacity(12)
}

fn fmt_u32(buf: &mut String, v: u32) -> &str {
    use std::fmt::Write;
    buf.clear();
    let _ = write!(buf, "{v}");
    buf
}

/// Reads `NAME_sample.txt`: per line a user and its negative items.
pub fn read_samples(path: &Path) -> Result<Vec<(u32, Vec<u32>)>, DataError> {
    let mut out = Vec::new();
    for_each_line(path, &ReadOptions::default(), |no, line| {
        let line = std::str::from_utf8(line).map_err(|_| DataError::Malformed {
            path: path.to_path_buf(),
            line: no,
            reason: "not valid UTF-8".into(),
        })?;
        if line.trim().is_empty() {
            return Ok(());
        }
        let v = ids(line).map_err(|reason| DataError::Malformed {
            path: path.to_path_buf(),
            line: no,
            reason,
        })?;
        out.push((v[0], v[1..].to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// Writes the sample-file format (temporary file, then rename).
pub fn write_samples(path: &Path, rows: &[(u32, Vec<u32>)]) -> Result<(), DataError> {
    crate::util::fsio::write_atomic(path, |w| {
        for (u, negs) in rows {
            write!(w, "{u}")?;
            for n in negs {
                write!(w, " {n}")?;
            }
            writeln!(w)?;
        }
        Ok(())
    })
    .map_err(DataError::from)
}

/// Reads `NAME_item2attributes.json`.
pub fn read_item_attributes(path: &Path) -> Result<BTreeMap<u32, Vec<u32>>, DataError> {
    let src = read_small(path)?;
    let raw: BTreeMap<String, Vec<u32>> =
        serde_json::from_slice(&src).map_err(|e| DataError::Malformed {
            path: path.to_path_buf(),
            line: e.line() as u64,
            reason: format!("not an item-to-attributes map: {e}"),
        })?;
    raw.into_iter()
        .map(|(k, v)| match k.parse() {
            Ok(k) => Ok((k, v)),
            Err(_) => Err(DataError::invalid(
                path,
                format!("item key '{k}' is not an integer"),
            )),
        })
        .collect()
}
