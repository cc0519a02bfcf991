//! What every reader shares: options and reports, skipped lines with file and line, streaming a
//! file line by line (in parallel ranges for large files), small whole files, and JSON arrays
//! split into their elements.

use crate::data::error::DataError;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// How many malformed lines a report lists (all are counted).
pub const MAX_LISTED_ISSUES: usize = 10;

/// The longest reason a report keeps for a skipped line, in characters.
const MAX_REASON: usize = 300;

/// One skipped input line.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Issue {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What a reader saw in one file.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ReadReport {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub lines: u64,
    pub events: u64,
    /// Records that are well-formed but not plays of a track (podcasts, blank track names).
    pub ignored: u64,
    pub skipped: u64,
    pub issues: Vec<Issue>,
}

impl ReadReport {
    /// Counts `skipped` more lines skipped and lists their `issues` while the list has room.
    pub(crate) fn add_skips(&mut self, skipped: u64, issues: impl IntoIterator<Item = Issue>) {
        self.skipped += skipped;
        let room = MAX_LISTED_ISSUES.saturating_sub(self.issues.len());
        self.issues.extend(issues.into_iter().take(room));
    }
}

/// The play times a reader accepts (Unix seconds, inclusive): plays outside are skipped as
/// malformed, naming the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    pub max: i64,
}

impl TimeRange {
    /// 1970-01-01 up to a day after now: any real listening log.
    pub fn recent() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self {
            min: 0,
            max: now + 86_400,
        }
    }

    /// Every time of years 0000 to 9999 (what `--any-time` accepts: historical or synthetic
    /// logs).
    pub const ANY: Self = Self {
        min: -62_167_219_200,
        max: 253_402_300_799,
    };

    /// Why `ts` (Unix seconds, read from `field`) is refused, when it is.
    pub fn refuse(&self, field: &str, ts: i64) -> Option<String> {
        if (self.min..=self.max).contains(&ts) {
            return None;
        }
        let shown = crate::data::time::format_datetime;
        let mut why = format!(
            "'{field}' {ts} is not between {} and {}",
            shown(self.min),
            shown(self.max)
        );
        if (self.min..=self.max).contains(&(ts / 1000)) {
            why.push_str(&format!(
                " (as milliseconds it is {}; the field holds seconds)",
                shown(ts / 1000)
            ));
        } else {
            why.push_str(" (--any-time accepts years 0000 to 9999)");
        }
        Some(why)
    }
}

impl Default for TimeRange {
    fn default() -> Self {
        Self::recent()
    }
}

/// Options shared by all readers.
#[derive(Clone, Default)]
pub struct ReadOptions {
    /// Fail on the first malformed line instead of skipping it.
    pub strict: bool,
    /// The play times accepted (default: 1970 to a day after now).
    pub times: TimeRange,
    /// User name for single-user exports that do not name their user (Spotify account data).
    pub user: Option<String>,
    /// Called with the number of bytes read so far in the current file.
    pub progress: Option<std::sync::Arc<dyn Fn(u64) + Send + Sync>>,
}

impl fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOptions")
            .field("strict", &self.strict)
            .field("user", &self.user)
            .field("times", &self.times)
            .finish()
    }
}

/// Collects skipped lines for one file; in strict mode the first one is an error.
pub(crate) struct Skips<'a> {
    pub path: &'a Path,
    pub strict: bool,
    pub times: TimeRange,
    pub report: ReadReport,
}

impl<'a> Skips<'a> {
    pub fn new(path: &'a Path, opts: &ReadOptions) -> Self {
        Self {
            path,
            strict: opts.strict,
            times: opts.times,
            report: ReadReport {
                file: path.display().to_string(),
                ..Default::default()
            },
        }
    }

    pub fn skip(&mut self, line: u64, reason: impl Into<String>) -> Result<(), DataError> {
        // Reasons quote the input: keep them one short, printable line.
        let reason = crate::util::text::shown(&reason.into(), MAX_REASON);
        if self.strict {
            return Err(DataError::Malformed {
                path: self.path.to_path_buf(),
                line,
                reason,
            });
        }
        self.report.skipped += 1;
        if self.report.issues.len() < MAX_LISTED_ISSUES {
            self.report.issues.push(Issue {
                file: self.report.file.clone(),
                line,
                reason,
            });
        }
        Ok(())
    }

    /// `ts` (Unix seconds, read from `field`) when it is in the accepted range; otherwise the
    /// line is skipped with the reason and `None` comes back.
    pub fn time(&mut self, line: u64, field: &str, ts: i64) -> Result<Option<i64>, DataError> {
        match self.times.refuse(field, ts) {
            None => Ok(Some(ts)),
            Some(why) => self.skip(line, why).map(|()| None),
        }
    }

    /// [`time`](Self::time) of a number that may not be whole or finite (JSON numbers, RecBole
    /// floats): NaN and infinities are refused too.
    pub fn time_f64(&mut self, line: u64, field: &str, ts: f64) -> Result<Option<i64>, DataError> {
        if !ts.is_finite() {
            return self
                .skip(line, format!("'{field}' {ts} is not a time"))
                .map(|()| None);
        }
        // Saturating: out-of-range values stay out of range.
        self.time(line, field, ts.floor() as i64)
    }
}

/// Calls `f(line_number, line)` for every line of `path` (1-based, CR of CRLF removed, the
/// final line without newline included) while hashing the bytes with SHA-256 on a second
/// thread. Returns the hex digest and byte count.
pub(crate) fn for_each_line(
    path: &Path,
    opts: &ReadOptions,
    f: impl FnMut(u64, &[u8]) -> Result<(), DataError>,
) -> Result<(String, u64), DataError> {
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let done = std::sync::atomic::AtomicU64::new(0);
    let progress = |n: u64| {
        let total = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        if let Some(p) = &opts.progress {
            p(total);
        }
    };
    let (digest, n, _) = lines_in_range(path, 0..len, true, &progress, f)?;
    Ok((digest.unwrap_or_default(), n))
}

/// The lines of bytes `range` of `path` (the range must start at a line start and end at a
/// line start or the end of the file). `progress` gets the size of each chunk read. With `hash`, the
/// bytes are hashed with SHA-256 on a second thread. Returns the digest, the byte count and
/// the number of lines.
pub(crate) fn lines_in_range(
    path: &Path,
    range: std::ops::Range<u64>,
    hash: bool,
    progress: &(dyn Fn(u64) + Sync),
    mut f0: impl FnMut(u64, &[u8]) -> Result<(), DataError>,
) -> Result<(Option<String>, u64, u64), DataError> {
    use std::io::Seek;
    // A byte-order mark before the first line is not part of it.
    let at_start = range.start == 0;
    let mut f = |n: u64, l: &[u8]| f0(n, if n == 1 && at_start { strip_bom(l) } else { l });
    const CHUNK: usize = 8 << 20;
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    file.seek(std::io::SeekFrom::Start(range.start))
        .map_err(|e| DataError::io(path, e))?;
    let mut file = file.take(range.end - range.start);
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<u8>>>(4);
    let hasher = hash.then(|| {
        std::thread::spawn(move || {
            let mut h = Sha256::new();
            for chunk in rx {
                h.update(&chunk[..]);
            }
            hex(&h.finalize())
        })
    });
    let mut carry: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    let mut done = 0u64;
    let mut result = Ok(());
    let mut spare: Option<std::sync::Arc<Vec<u8>>> = None;
    'chunks: loop {
        // Reuse the previous buffer when the hashing thread has let go of it.
        let mut chunk = spare
            .take()
            .and_then(|a| std::sync::Arc::try_unwrap(a).ok())
            .unwrap_or_default();
        chunk.clear();
        chunk.reserve(CHUNK);
        let n = match (&mut file).take(CHUNK as u64).read_to_end(&mut chunk) {
            Ok(n) => n,
            Err(e) => {
                result = Err(DataError::io(path, e));
                break;
            }
        };
        if n == 0 {
            break;
        }
        done += n as u64;
        progress(n as u64);
        let chunk = std::sync::Arc::new(chunk);
        if hasher.is_some() {
            let _ = tx.send(chunk.clone());
        }
        let mut rest: &[u8] = &chunk;
        if !carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(p) => {
                    carry.extend_from_slice(&rest[..p]);
                    rest = &rest[p + 1..];
                    line_no += 1;
                    let line = std::mem::take(&mut carry);
                    if let Err(e) = f(line_no, trim_cr(&line)) {
                        result = Err(e);
                        break;
                    }
                }
                None => {
                    carry.extend_from_slice(rest);
                    spare = Some(chunk);
                    continue;
                }
            }
        }
        while let Some(p) = memchr::memchr(b'\n', rest) {
            line_no += 1;
            if let Err(e) = f(line_no, trim_cr(&rest[..p])) {
                result = Err(e);
                break 'chunks;
            }
            rest = &rest[p + 1..];
        }
        carry.extend_from_slice(rest);
        spare = Some(chunk);
    }
    if result.is_ok() && !carry.is_empty() {
        line_no += 1;
        result = f(line_no, trim_cr(&carry));
    }
    drop(tx);
    let digest = hasher.map(|h| h.join().expect("hashing thread panicked"));
    result.map(|()| (digest, done, line_no))
}

/// SHA-256 of a whole file, hex, read sequentially on the calling thread.
pub(crate) fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Splits `path` into `parts` byte ranges that start at line starts.
pub(crate) fn line_aligned_ranges(
    path: &Path,
    parts: usize,
) -> Result<Vec<std::ops::Range<u64>>, DataError> {
    use std::io::Seek;
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut cuts = vec![0u64];
    let mut buf = vec![0u8; 1 << 16];
    for i in 1..parts as u64 {
        let mut at = (len * i / parts as u64).max(*cuts.last().unwrap());
        file.seek(std::io::SeekFrom::Start(at))
            .map_err(|e| DataError::io(path, e))?;
        loop {
            let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
            if n == 0 {
                at = len;
                break;
            }
            if let Some(p) = memchr::memchr(b'\n', &buf[..n]) {
                at += p as u64 + 1;
                break;
            }
            at += n as u64;
        }
        cuts.push(at);
    }
    cuts.push(len);
    cuts.dedup();
    if cuts.len() == 1 {
        cuts.push(len); // an empty file: one empty range
    }
    Ok(cuts.windows(2).map(|w| w[0]..w[1]).collect())
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The UTF-8 byte-order mark some editors and exporters put first.
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(BOM).unwrap_or(b)
}

/// A whole (small) text file read leniently: a byte-order mark is dropped and invalid UTF-8
/// becomes U+FFFD, with the lines where that happened, so a reader can skip just the records
/// on them.
pub(crate) struct LenientText {
    pub text: String,
    /// 1-based lines holding invalid UTF-8, ascending.
    pub bad_lines: Vec<u64>,
    /// SHA-256 and size of the file's bytes as read.
    pub sha256: String,
    pub bytes: u64,
}

impl LenientText {
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let raw = read_small(path)?;
        let body = strip_bom(&raw);
        let mut bad_lines = Vec::new();
        let mut at = 0usize;
        for chunk in body.utf8_chunks() {
            at += chunk.valid().len();
            if !chunk.invalid().is_empty() {
                let line = line_of(body, at);
                if bad_lines.last() != Some(&line) {
                    bad_lines.push(line);
                }
            }
            at += chunk.invalid().len();
        }
        Ok(Self {
            text: String::from_utf8_lossy(body).into_owned(),
            bad_lines,
            sha256: sha256_hex(&raw),
            bytes: raw.len() as u64,
        })
    }

    /// Whether the record starting at `line` with source `record` spans a line that held
    /// invalid UTF-8.
    pub fn damaged(&self, line: u64, record: &str) -> bool {
        let last = line + memchr::memchr_iter(b'\n', record.as_bytes()).count() as u64;
        let i = self.bad_lines.partition_point(|&l| l < line);
        self.bad_lines.get(i).is_some_and(|&l| l <= last)
    }
}

pub(crate) use crate::util::digest::hex;
pub(crate) use crate::util::sha256_hex;

/// Reads a whole (small) file: JSON exports are arrays that must be parsed as a whole.
pub(crate) fn read_small(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Reads a whole (small) text file; invalid UTF-8 is an error naming its line.
pub(crate) fn read_small_text(path: &Path) -> Result<String, DataError> {
    let mut bytes = read_small(path)?;
    if bytes.starts_with(BOM) {
        bytes.drain(..BOM.len());
    }
    String::from_utf8(bytes).map_err(|e| DataError::Malformed {
        path: path.to_path_buf(),
        line: line_of(e.as_bytes(), e.utf8_error().valid_up_to()),
        reason: "not valid UTF-8".into(),
    })
}

/// 1-based line number of byte offset `at` in `src`.
pub(crate) fn line_of(src: &[u8], at: usize) -> u64 {
    memchr::memchr_iter(b'\n', &src[..at.min(src.len())]).count() as u64 + 1
}

/// Splits a JSON array into its elements' source text and 1-based starting lines (counted
/// incrementally, one pass over the text), so each element can be parsed and reported on its
/// own. Errors carry the 1-based line.
pub(crate) fn json_array_items(text: &str) -> Result<Vec<(u64, &str)>, (u64, String)> {
    json_array(text, true)
}

/// [`json_array_items`] of the array at the start of `text`, with or without (`whole`) text
/// allowed after it.
pub(crate) fn json_array(text: &str, whole: bool) -> Result<Vec<(u64, &str)>, (u64, String)> {
    let bytes = text.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if bytes.get(i) != Some(&b'[') {
        return Err((line_of(bytes, i), "expected a JSON array".into()));
    }
    i = skip_ws(i + 1);
    let mut out = Vec::new();
    if bytes.get(i) == Some(&b']') {
        return Ok(out);
    }
    let (mut line, mut counted) = (1u64, 0usize);
    loop {
        line += memchr::memchr_iter(b'\n', &bytes[counted..i]).count() as u64;
        counted = i;
        let mut de =
            serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde::de::IgnoredAny>();
        match de.next() {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err((line + e.line() as u64 - 1, e.to_string())),
            None => return Err((line, "unexpected end of the array".into())),
        }
        let end = i + de.byte_offset();
        out.push((line, &text[i..end]));
        i = skip_ws(end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(i + 1),
            Some(b']') => {
                if whole && skip_ws(i + 1) != bytes.len() {
                    return Err((line_of(bytes, i + 1), "text after the array".into()));
                }
                return Ok(out);
            }
            _ => {
                return Err((
                    line_of(bytes, i),
                    "expected ',' or ']' after an element".into(),
                ));
            }
        }
    }
}

/// The byte offset of the value of `key` in the JSON object starting at byte `at` of `text`
/// (its top-level members only); `None` when there is no such member or the object is not
/// well-formed up to it.
pub(crate) fn json_member(text: &str, at: usize, key: &str) -> Option<usize> {
    use serde::de::IgnoredAny;
    let bytes = text.as_bytes();
    let skip_ws = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(at + 1);
    while bytes.get(i) == Some(&b'"') {
        let mut de = serde_json::Deserializer::from_str(&text[i..]).into_iter::<String>();
        let name = de.next()?.ok()?;
        i = skip_ws(i + de.byte_offset());
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(i + 1);
        if name == key {
            return Some(i);
        }
        let mut de = serde_json::Deserializer::from_str(&text[i..]).into_iter::<IgnoredAny>();
        de.next()?.ok()?;
        i = skip_ws(i + de.byte_offset());
        match bytes.get(i) {
            Some(b',') => i = skip_ws(i + 1),
            _ => return None,
        }
    }
    None
}
