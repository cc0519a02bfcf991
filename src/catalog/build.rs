//! `encore catalog build`: a catalog from folders of audio files described by a TOML spec.
//!
//! The spec names each source folder (relative to an asset root), its licence and credit; the
//! files' own tags give title, artist and genre, and probing gives the duration. Audio files are
//! linked (or copied) into the output folder so the catalog and its audio are served together.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Catalog, CatalogError, Track, genre_tags};
use crate::audio;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Shorter files (jingles, silences) are left out.
    #[serde(default)]
    pub min_duration_s: f64,
    #[serde(rename = "source")]
    pub sources: Vec<CatalogSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSource {
    /// Prefix of the track ids from this source.
    pub id: String,
    /// Folder (or single file) relative to the asset root.
    pub path: String,
    /// Where the files come from (package name and version).
    pub origin: String,
    /// Licence of the files unless a file's own tag says otherwise.
    pub licence: String,
    /// Album shown when a file has none.
    #[serde(default)]
    pub album: String,
    /// Artist used when a file has no artist tag.
    #[serde(default)]
    pub artist: String,
    /// Genre used when a file has no genre tag.
    #[serde(default)]
    pub genre: String,
    /// Extra tags for every track of the source.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A file that could not be read; the build goes on without it.
#[derive(Debug)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

pub fn read_spec(path: &Path) -> Result<Spec, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|e| CatalogError::io(path, e))?;
    toml::from_str(&text).map_err(|source| CatalogError::Spec {
        path: path.to_path_buf(),
        source,
    })
}

fn title_from_stem(stem: &str) -> String {
    let words: Vec<String> = stem
        .split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    words.join(" ")
}

pub(crate) fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if to.exists() {
        if std::fs::metadata(to)?.len() == std::fs::metadata(from)?.len() {
            return Ok(());
        }
        std::fs::remove_file(to)?;
    }
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

/// Scans every source, places the audio under `out/audio/ID-PREFIX/` and returns the catalog
/// (tracks sorted by id) and the files that were skipped. `progress` sees each file.
pub fn build(
    spec: &Spec,
    assets: &Path,
    out: &Path,
    mut progress: impl FnMut(&Path),
) -> Result<(Catalog, Vec<Skipped>), CatalogError> {
    let mut tracks = Vec::new();
    let mut skipped = Vec::new();
    for src in &spec.sources {
        let root = assets.join(&src.path);
        let mut files: Vec<PathBuf> = if root.is_file() {
            vec![root.clone()]
        } else {
            std::fs::read_dir(&root)
                .map_err(|e| CatalogError::Source {
                    id: src.id.clone(),
                    reason: format!("{}: {e}", root.display()),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| audio::is_audio(p))
                .collect()
        };
        if files.is_empty() {
            return Err(CatalogError::Source {
                id: src.id.clone(),
                reason: format!("no audio files in {}", root.display()),
            });
        }
        files.sort();
        for file in files {
            progress(&file);
            let info = match audio::probe(&file) {
                Ok(i) => i,
                Err(e) => {
                    skipped.push(Skipped {
                        path: file.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if info.duration_s < spec.min_duration_s {
                continue;
            }
            let stem = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let rel = format!("audio/{}/{}", src.id, name);
            link_or_copy(&file, &out.join(&rel))
                .map_err(|e| CatalogError::io(&out.join(&rel), e))?;
            let pick = |own: &str, fallback: &str| {
                if own.is_empty() {
                    fallback.to_string()
                } else {
                    own.to_string()
                }
            };
            let genre = pick(&info.genre, &src.genre);
            let artist = pick(&info.artist, &src.artist);
            let mut tags = genre_tags(&genre);
            for t in &src.tags {
                let t = t.to_lowercase();
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            let title = if info.title.is_empty() {
                title_from_stem(&stem)
            } else {
                info.title.clone()
            };
            let album = pick(&info.album, &src.album);
            // A licence tag is often a copyright line ("Name (C)2007"): that goes to the credit.
            let lower = info.licence.to_lowercase();
            let is_licence = [
                "licen",
                "gpl",
                "creative commons",
                "cc-by",
                "cc by",
                "public domain",
            ]
            .iter()
            .any(|k| lower.contains(k));
            let copyright = if !info.licence.is_empty() && !is_licence {
                format!(", {}", info.licence.replace("(C)", "©").replace("(c)", "©"))
            } else {
                String::new()
            };
            tracks.push(Track {
                id: format!("{}/{}", src.id, stem),
                attribution: format!(
                    "\"{title}\" by {}{}{copyright}, from {}",
                    if artist.is_empty() {
                        "unknown artist"
                    } else {
                        &artist
                    },
                    if album.is_empty() {
                        String::new()
                    } else {
                        format!(" ({album})")
                    },
                    src.origin
                ),
                title,
                artist,
                album,
                genre,
                duration_s: (info.duration_s * 10.0).round() / 10.0,
                audio: rel,
                licence: if is_licence {
                    info.licence.clone()
                } else {
                    src.licence.clone()
                },
                tags,
            });
        }
    }
    tracks.sort_by(|a, b| a.id.cmp(&b.id));
    let catalog = Catalog {
        name: spec.name.clone(),
        description: spec.description.clone(),
        tracks,
    };
    catalog.validate()?;
    Ok((catalog, skipped))
}
