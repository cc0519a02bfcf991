//! The compact binary form of logs and datasets: named little-endian columns behind a magic
//! number and a format version, followed by the SHA-256 of everything before it, checked on
//! every read (a flipped byte is an error, not a changed dataset). Files are written to a
//! temporary name and renamed, so a reader never sees half a file.

use super::read::DataError;
use crate::util::fsio::write_atomic;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"ENCOREDB";
/// Bumped whenever the column layout or the meaning of a column changes (2: the trailing
/// SHA-256).
pub const FORMAT_VERSION: u32 = 2;

/// Bytes of the trailing digest.
const DIGEST: usize = 32;

/// The code version recorded in manifests: crate version and binary format version.
pub fn code_version() -> String {
    format!("{}+db{}", env!("CARGO_PKG_VERSION"), FORMAT_VERSION)
}

/// A fixed-width number stored in a column: its type tag and little-endian encoding.
pub trait Scalar: Copy {
    const TYPE: u8;
    const WIDTH: usize;
    fn put_le(self, out: &mut Vec<u8>);
    /// Decodes `WIDTH` bytes.
    fn get_le(b: &[u8]) -> Self;
}

macro_rules! scalar {
    ($($t:ty => $tag:expr),*) => {$(
        impl Scalar for $t {
            const TYPE: u8 = $tag;
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("a chunk of WIDTH bytes"))
            }
        }
    )*};
}

scalar!(u32 => 1, i64 => 2, f32 => 3);

/// Type tag of a UTF-8 text column.
const TEXT: u8 = 4;

/// Builds a column file in memory-bounded chunks; [`finish`](Self::finish) appends the digest.
pub struct ColumnWriter<'a, W: Write> {
    w: &'a mut W,
    hash: Sha256,
}

impl<'a, W: Write> ColumnWriter<'a, W> {
    pub fn new(w: &'a mut W, kind: &str, columns: u32) -> std::io::Result<Self> {
        let mut c = Self {
            w,
            hash: Sha256::new(),
        };
        c.put(MAGIC)?;
        c.put(&FORMAT_VERSION.to_le_bytes())?;
        c.put(&(kind.len() as u16).to_le_bytes())?;
        c.put(kind.as_bytes())?;
        c.put(&columns.to_le_bytes())?;
        Ok(c)
    }

    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hash.update(b);
        self.w.write_all(b)
    }

    /// Writes the SHA-256 of everything written: a file without it does not read.
    pub fn finish(self) -> std::io::Result<()> {
        self.w.write_all(&self.hash.finalize())
    }

    fn head(&mut self, name: &str, ty: u8, count: u64) -> std::io::Result<()> {
        self.put(&(name.len() as u16).to_le_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[ty])?;
        self.put(&count.to_le_bytes())
    }

    /// A column of fixed-width numbers, little-endian.
    pub fn values<T: Scalar>(&mut self, name: &str, v: &[T]) -> std::io::Result<()> {
        self.head(name, T::TYPE, v.len() as u64)?;
        let mut b = Vec::with_capacity(8192 * T::WIDTH);
        for c in v.chunks(8192) {
            b.clear();
            c.iter().for_each(|x| x.put_le(&mut b));
            self.put(&b)?;
        }
        Ok(())
    }

    pub fn u32s(&mut self, name: &str, v: &[u32]) -> std::io::Result<()> {
        self.values(name, v)
    }

    pub fn i64s(&mut self, name: &str, v: &[i64]) -> std::io::Result<()> {
        self.values(name, v)
    }

    pub fn f32s(&mut self, name: &str, v: &[f32]) -> std::io::Result<()> {
        self.values(name, v)
    }

    pub fn text(&mut self, name: &str, s: &str) -> std::io::Result<()> {
        self.head(name, TEXT, s.len() as u64)?;
        self.put(s.as_bytes())
    }
}

/// A parsed column file; columns are looked up by name and type-checked.
pub struct Columns {
    path: PathBuf,
    pub kind: String,
    cols: Vec<(String, u8, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
}

impl Columns {
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(path, bytes)
    }

    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, DataError> {
        let bad =
            |r: &str| DataError::invalid(path, format!("not a valid Encore binary file: {r}"));
        let mut at = 0usize;
        let take = |at: &mut usize, n: usize| -> Result<std::ops::Range<usize>, DataError> {
            let end = at
                .checked_add(n)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| bad("truncated"))?;
            let r = *at..end;
            *at = end;
            Ok(r)
        };
        if bytes.get(..8) != Some(MAGIC) {
            return Err(bad("wrong magic number"));
        }
        at += 8;
        let v = u32::from_le_bytes(bytes[take(&mut at, 4)?].try_into().unwrap());
        if v != FORMAT_VERSION {
            return Err(DataError::invalid(
                path,
                format!("binary format version {v}, this build reads {FORMAT_VERSION}"),
            ));
        }
        let body = bytes.len().saturating_sub(DIGEST).max(at);
        if bytes.len() < at + DIGEST || Sha256::digest(&bytes[..body])[..] != bytes[body..] {
            return Err(bad(
                "its SHA-256 does not match (damaged or cut short); write it again",
            ));
        }
        let kl = u16::from_le_bytes(bytes[take(&mut at, 2)?].try_into().unwrap()) as usize;
        let kind = String::from_utf8(bytes[take(&mut at, kl)?].to_vec())
            .map_err(|_| bad("kind is not UTF-8"))?;
        let n = u32::from_le_bytes(bytes[take(&mut at, 4)?].try_into().unwrap());
        let mut cols = Vec::new();
        for _ in 0..n {
            let nl = u16::from_le_bytes(bytes[take(&mut at, 2)?].try_into().unwrap()) as usize;
            let name = String::from_utf8(bytes[take(&mut at, nl)?].to_vec())
                .map_err(|_| bad("column name is not UTF-8"))?;
            let ty = bytes[take(&mut at, 1)?][0];
            let count = u64::from_le_bytes(bytes[take(&mut at, 8)?].try_into().unwrap()) as usize;
            let width = match ty {
                u32::TYPE => u32::WIDTH,
                i64::TYPE => i64::WIDTH,
                f32::TYPE => f32::WIDTH,
                TEXT => 1,
                _ => return Err(bad("unknown column type")),
            };
            let r = take(
                &mut at,
                count
                    .checked_mul(width)
                    .ok_or_else(|| bad("column too long"))?,
            )?;
            cols.push((name, ty, r));
        }
        if at != body {
            return Err(bad("trailing bytes"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            kind,
            cols,
            bytes,
        })
    }

    fn col(&self, name: &str, ty: u8) -> Result<&[u8], DataError> {
        self.cols
            .iter()
            .find(|(n, t, _)| n == name && *t == ty)
            .map(|(_, _, r)| &self.bytes[r.clone()])
            .ok_or_else(|| DataError::invalid(&self.path, format!("missing column '{name}'")))
    }

    pub fn has(&self, name: &str) -> bool {
        self.cols.iter().any(|(n, _, _)| n == name)
    }

    /// A column of fixed-width numbers of type `T`.
    pub fn values<T: Scalar>(&self, name: &str) -> Result<Vec<T>, DataError> {
        Ok(self
            .col(name, T::TYPE)?
            .chunks_exact(T::WIDTH)
            .map(T::get_le)
            .collect())
    }

    pub fn u32s(&self, name: &str) -> Result<Vec<u32>, DataError> {
        self.values(name)
    }

    pub fn i64s(&self, name: &str) -> Result<Vec<i64>, DataError> {
        self.values(name)
    }

    pub fn f32s(&self, name: &str) -> Result<Vec<f32>, DataError> {
        self.values(name)
    }

    pub fn text(&self, name: &str) -> Result<String, DataError> {
        String::from_utf8(self.col(name, TEXT)?.to_vec())
            .map_err(|_| DataError::invalid(&self.path, format!("column '{name}' is not UTF-8")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

use super::completion::TrackCompletion;
use super::intern::Interner;
use super::log::{EventLog, TextColumn};
use super::preprocess::Dataset;

fn interner(c: &Columns, name: &str) -> Result<Interner, DataError> {
    Interner::from_raw_parts(
        c.text(&format!("{name}.text"))?,
        c.u32s(&format!("{name}.ends"))?,
    )
    .map_err(|e| DataError::invalid(c.path(), format!("{name}: {e}")))
}

fn text_column(c: &Columns, name: &str) -> Result<TextColumn, DataError> {
    TextColumn::from_raw_parts(
        c.text(&format!("{name}.text"))?,
        c.u32s(&format!("{name}.ends"))?,
    )
    .map_err(|e| DataError::invalid(c.path(), format!("{name}: {e}")))
}

fn put_strings<W: Write>(
    w: &mut ColumnWriter<'_, W>,
    name: &str,
    (text, ends): (&str, &[u32]),
) -> std::io::Result<()> {
    w.text(&format!("{name}.text"), text)?;
    w.u32s(&format!("{name}.ends"), ends)
}

fn check_len(c: &Columns, what: &str, got: usize, want: usize) -> Result<(), DataError> {
    if got != want {
        return Err(DataError::invalid(
            c.path(),
            format!("column '{what}' has {got} entries, expected {want}"),
        ));
    }
    Ok(())
}

fn check_ids(c: &Columns, what: &str, ids: &[u32], n: usize) -> Result<(), DataError> {
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= n) {
        return Err(DataError::invalid(
            c.path(),
            format!("column '{what}' holds id {bad}, but there are only {n}"),
        ));
    }
    Ok(())
}

impl EventLog {
    /// Writes the log in the binary format (atomically).
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        write_atomic(path, |w| {
            let mut c = ColumnWriter::new(w, "event-log", 16)?;
            put_strings(&mut c, "users", self.users.raw_parts())?;
            put_strings(&mut c, "artists", self.artists.raw_parts())?;
            put_strings(&mut c, "artist_name", self.artist_name.raw_parts())?;
            put_strings(&mut c, "tracks", self.tracks.raw_parts())?;
            put_strings(&mut c, "track_name", self.track_name.raw_parts())?;
            c.u32s("track_artist", &self.track_artist)?;
            c.f32s("track_duration", &self.track_duration)?;
            c.u32s("user", &self.user)?;
            c.i64s("ts", &self.ts)?;
            c.u32s("track", &self.track)?;
            c.f32s("played", &self.played)?;
            c.finish()
        })
        .map_err(DataError::from)
    }

    pub fn load(path: &Path) -> Result<Self, DataError> {
        let c = Columns::read(path)?;
        if c.kind != "event-log" {
            return Err(DataError::invalid(
                path,
                format!("holds a {}, not an event log", c.kind),
            ));
        }
        let log = Self {
            users: interner(&c, "users")?,
            artists: interner(&c, "artists")?,
            artist_name: text_column(&c, "artist_name")?,
            tracks: interner(&c, "tracks")?,
            track_name: text_column(&c, "track_name")?,
            track_artist: c.u32s("track_artist")?,
            track_duration: c.f32s("track_duration")?,
            user: c.u32s("user")?,
            ts: c.i64s("ts")?,
            track: c.u32s("track")?,
            played: c.f32s("played")?,
        };
        let (nt, ne) = (log.tracks.len(), log.ts.len());
        check_len(&c, "artist_name", log.artist_name.len(), log.artists.len())?;
        check_len(&c, "track_name", log.track_name.len(), nt)?;
        check_len(&c, "track_artist", log.track_artist.len(), nt)?;
        check_len(&c, "track_duration", log.track_duration.len(), nt)?;
        check_len(&c, "user", log.user.len(), ne)?;
        check_len(&c, "track", log.track.len(), ne)?;
        if !log.played.is_empty() {
            check_len(&c, "played", log.played.len(), ne)?;
        }
        check_ids(&c, "user", &log.user, log.users.len())?;
        check_ids(&c, "track", &log.track, nt)?;
        check_ids(&c, "track_artist", &log.track_artist, log.artists.len())?;
        Ok(log)
    }
}

impl Dataset {
    /// Writes the dataset in the binary format (atomically).
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        write_atomic(path, |w| {
            let mut c = ColumnWriter::new(w, "dataset", 22)?;
            put_strings(&mut c, "users", self.users.raw_parts())?;
            put_strings(&mut c, "tracks", self.tracks.raw_parts())?;
            put_strings(&mut c, "track_name", self.track_name.raw_parts())?;
            put_strings(&mut c, "artists", self.artists.raw_parts())?;
            put_strings(&mut c, "artist_name", self.artist_name.raw_parts())?;
            c.u32s("track_artist", &self.track_artist)?;
            c.f32s("track_duration", &self.track_duration)?;
            c.u32s(
                "completion.n",
                &self
                    .track_completion
                    .iter()
                    .map(|t| t.n)
                    .collect::<Vec<_>>(),
            )?;
            c.f32s(
                "completion.mean",
                &self
                    .track_completion
                    .iter()
                    .map(|t| t.mean)
                    .collect::<Vec<_>>(),
            )?;
            c.f32s(
                "completion.median",
                &self
                    .track_completion
                    .iter()
                    .map(|t| t.median)
                    .collect::<Vec<_>>(),
            )?;
            c.f32s(
                "completion.skip_rate",
                &self
                    .track_completion
                    .iter()
                    .map(|t| t.skip_rate)
                    .collect::<Vec<_>>(),
            )?;
            c.u32s("user", &self.user)?;
            c.i64s("ts", &self.ts)?;
            c.u32s("track", &self.track)?;
            c.f32s("completion", &self.completion)?;
            c.u32s("session_start", &self.session_start)?;
            c.u32s("user_start", &self.user_start)?;
            c.finish()
        })
        .map_err(DataError::from)
    }

    pub fn load(path: &Path) -> Result<Self, DataError> {
        let c = Columns::read(path)?;
        if c.kind != "dataset" {
            return Err(DataError::invalid(
                path,
                format!("holds a {}, not a dataset", c.kind),
            ));
        }
        let (n, mean, median, skip) = (
            c.u32s("completion.n")?,
            c.f32s("completion.mean")?,
            c.f32s("completion.median")?,
            c.f32s("completion.skip_rate")?,
        );
        let d = Self {
            users: interner(&c, "users")?,
            tracks: interner(&c, "tracks")?,
            track_name: text_column(&c, "track_name")?,
            artists: interner(&c, "artists")?,
            artist_name: text_column(&c, "artist_name")?,
            track_artist: c.u32s("track_artist")?,
            track_duration: c.f32s("track_duration")?,
            track_completion: (0..n.len().min(mean.len()).min(median.len()).min(skip.len()))
                .map(|i| TrackCompletion {
                    n: n[i],
                    mean: mean[i],
                    median: median[i],
                    skip_rate: skip[i],
                })
                .collect(),
            user: c.u32s("user")?,
            ts: c.i64s("ts")?,
            track: c.u32s("track")?,
            completion: c.f32s("completion")?,
            session_start: c.u32s("session_start")?,
            user_start: c.u32s("user_start")?,
        };
        let (nt, ne) = (d.tracks.len(), d.ts.len());
        for (what, len) in [
            ("track_name", d.track_name.len()),
            ("track_artist", d.track_artist.len()),
            ("track_duration", d.track_duration.len()),
            ("completion.*", d.track_completion.len()),
        ] {
            check_len(&c, what, len, nt)?;
        }
        check_len(&c, "artist_name", d.artist_name.len(), d.artists.len())?;
        for (what, len) in [
            ("user", d.user.len()),
            ("track", d.track.len()),
            ("completion", d.completion.len()),
        ] {
            check_len(&c, what, len, ne)?;
        }
        check_len(&c, "user_start", d.user_start.len(), d.users.len() + 1)?;
        check_ids(&c, "user", &d.user, d.users.len())?;
        check_ids(&c, "track", &d.track, nt)?;
        check_ids(&c, "track_artist", &d.track_artist, d.artists.len())?;
        for (what, s) in [
            ("session_start", &d.session_start),
            ("user_start", &d.user_start),
        ] {
            if s.first() != Some(&0)
                || s.last() != Some(&(ne as u32))
                || s.windows(2).any(|w| w[0] > w[1])
            {
                return Err(DataError::invalid(
                    path,
                    format!("column '{what}' is not a list of offsets over the plays"),
                ));
            }
        }
        Ok(d)
    }
}
