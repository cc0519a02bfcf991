//! Readers for the listening logs people have. Every reader streams its input, skips and
//! counts malformed lines (reporting the first ten with file, line and reason), or fails on the
//! first one in strict mode, and appends to one [`EventLog`].

mod durations;
mod input;
mod lastfm;
mod listenbrainz;
mod recbole;
mod s3rec;
mod spotify;

pub use crate::data::log::Durations;
pub use durations::read_durations;
pub use lastfm::{UserProfile, read_lastfm1k, read_lastfm1k_in_parts, read_profiles};
pub use listenbrainz::read_listenbrainz;
pub use recbole::read_recbole;
pub use s3rec::{S3Rec, read_item_attributes, read_s3rec, read_samples, write_samples};
pub use spotify::read_spotify;

pub use crate::data::error::DataError;
pub use input::{Issue, MAX_LISTED_ISSUES, ReadOptions, ReadReport, TimeRange};

use super::log::EventLog;
use std::fmt;
use std::path::Path;

/// The supported input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// LastFM-1K `userid-timestamp-artid-artname-traid-traname.tsv`.
    Lastfm1k,
    /// Spotify streaming history, extended or account-data form (detected per record).
    Spotify,
    /// ListenBrainz listen export, a JSON array or JSON lines.
    Listenbrainz,
    /// RecBole atomic `.inter` file.
    Recbole,
    /// S3-Rec sequence file (`user item item ...`).
    S3rec,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "lastfm1k" | "lastfm-1k" | "lastfm" => Self::Lastfm1k,
            "spotify" => Self::Spotify,
            "listenbrainz" => Self::Listenbrainz,
            "recbole" | "inter" => Self::Recbole,
            "s3rec" | "s3-rec" => Self::S3rec,
            _ => {
                return Err(format!(
                    "unknown format '{s}' (lastfm1k, spotify, listenbrainz, recbole, s3rec)"
                ));
            }
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lastfm1k => "lastfm1k",
            Self::Spotify => "spotify",
            Self::Listenbrainz => "listenbrainz",
            Self::Recbole => "recbole",
            Self::S3rec => "s3rec",
        })
    }
}

/// Reads one file of `format` into `log`.
pub fn read_file(
    format: Format,
    path: &Path,
    log: &mut EventLog,
    opts: &ReadOptions,
) -> Result<ReadReport, DataError> {
    match format {
        Format::Lastfm1k => read_lastfm1k(path, log, opts),
        Format::Spotify => read_spotify(path, log, opts),
        Format::Listenbrainz => read_listenbrainz(path, log, opts),
        Format::Recbole => read_recbole(path, log, opts),
        Format::S3rec => read_s3rec(path, log, opts).map(|(r, _)| r),
    }
}
