//! A music catalog: the tracks an app can play and recommend, with their licences.
//!
//! `catalog.json` is written natively (`encore catalog build`) and read by the web app.

use serde::{Deserialize, Serialize};

pub use error::CatalogError;

#[cfg(not(target_arch = "wasm32"))]
pub mod build;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod simulate;

/// One playable track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Stable id (`SOURCE/FILE-STEM`), the item key in listening logs and model bundles.
    pub id: String,
    pub title: String,
    pub artist: String,
    #[serde(default)]
    pub album: String,
    #[serde(default)]
    pub genre: String,
    /// Seconds.
    pub duration_s: f64,
    /// URL of the audio, relative to the catalog file.
    pub audio: String,
    pub licence: String,
    /// Who to credit and where the file comes from.
    pub attribution: String,
    /// Descriptive tags (lower case), shown to listeners and used to explain recommendations.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub tracks: Vec<Track>,
}

impl Catalog {
    /// Index of a track id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.id == id)
    }

    /// Checks ids are unique and non-empty and durations positive; names the first bad track.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let mut seen = std::collections::HashSet::new();
        let bad = |track: String, reason: String| Err(CatalogError::Track { track, reason });
        for (i, t) in self.tracks.iter().enumerate() {
            if t.id.is_empty() {
                return bad(i.to_string(), "empty id".into());
            }
            if !seen.insert(t.id.as_str()) {
                return bad(i.to_string(), format!("duplicate id '{}'", t.id));
            }
            if !(t.duration_s.is_finite() && t.duration_s > 0.0) {
                let reason = format!("duration {} is not positive", t.duration_s);
                return bad(format!("'{}'", t.id), reason);
            }
        }
        Ok(())
    }
}

/// Lower-case words of a free-text genre field (`"Orchestral, Epic"` -> `orchestral`, `epic`).
pub fn genre_tags(genre: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in genre
        .split([',', ';', '/', '|'])
        .map(|g| g.trim().to_lowercase())
    {
        if !g.is_empty() && !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

/// Why `b` may follow `a`: the tags they share and whether the artist is the same.
pub fn shared_traits(a: &Track, b: &Track) -> Vec<String> {
    let mut out = Vec::new();
    if !a.artist.is_empty() && a.artist == b.artist {
        out.push(format!("same artist ({})", b.artist));
    }
    for t in &b.tags {
        if a.tags.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: &str, artist: &str, tags: &[&str]) -> Track {
        Track {
            id: id.into(),
            title: id.into(),
            artist: artist.into(),
            album: String::new(),
            genre: String::new(),
            duration_s: 60.0,
            audio: format!("audio/{id}.ogg"),
            licence: "GPL-2+".into(),
            attribution: String::new(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn genre_words_and_shared_traits() {
        assert_eq!(
            genre_tags("Orchestral, Epic / orchestral"),
            ["orchestral", "epic"]
        );
        let a = track("a", "X", &["epic", "calm"]);
        let b = track("b", "X", &["calm"]);
        assert_eq!(shared_traits(&a, &b), ["same artist (X)", "calm"]);
        let c = Catalog {
            name: "t".into(),
            description: String::new(),
            tracks: vec![a.clone(), a],
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("duplicate id 'a'")
        );
    }
}
