//! RecBole atomic `.inter` files: tab-separated with a typed header (`user_id:token
//! item_id:token rating:float timestamp:float`). The user comes from `user_id` (or
//! `session_id`), the track from `item_id` (or `track_id`), the time from `timestamp` when
//! present, else from the line order.

use super::{DataError, ReadOptions, ReadReport, Skips, for_each_line};
use crate::data::log::{EventLog, RawEvent};
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
    let mut skips = Skips::new(path, opts);
    let mut header: Option<Vec<(String, Kind)>> = None;
    let (mut ui, mut ii, mut ti) = (0usize, 0usize, None::<usize>);
    let mut events = 0u64;
    let (sha, bytes) = for_each_line(path, opts, |no, line| {
        skips.report.lines = no;
        let Ok(line) = std::str::from_utf8(line) else {
            return skips.skip(no, "not valid UTF-8");
        };
        let Some(h) = &header else {
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
            let find = |names: &[&str]| cols.iter().position(|(n, _)| names.contains(&n.as_str()));
            let missing = |what: &str| DataError::Malformed {
                path: path.to_path_buf(),
                line: no,
                reason: format!("header has no {what} column"),
            };
            ui = find(&["user_id", "session_id"]).ok_or_else(|| missing("user_id"))?;
            ii = find(&["item_id", "track_id"]).ok_or_else(|| missing("item_id"))?;
            ti = find(&["timestamp"]);
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
                Ok(v) => v.floor() as i64,
                Err(_) => return skips.skip(no, format!("timestamp '{}' is not a number", f[t])),
            },
            None => no as i64,
        };
        log.push(&RawEvent {
            user,
            ts,
            artist_key: "",
            artist_name: "",
            track_key: item,
            track_name: item,
            ..Default::default()
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
    Ok(skips.report)
}
