//! Content for training: one modality's vectors, aligned to a dataset's tracks, from a feature
//! store folder (`encore features ...`) or an S3-Rec `item2attributes` JSON file.

use super::TrainError;
use crate::data::Dataset;
use crate::features::store::FeatureStore;
use crate::model::fusion::ContentTable;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// `--content NAME=PATH`: a modality and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentSource {
    /// The modality: its name in the feature store, or any name for an attributes file.
    pub name: String,
    pub path: PathBuf,
}

impl std::str::FromStr for ContentSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, path) = s
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .ok_or_else(|| format!("'{s}' is not MODALITY=PATH (e.g. tags=features/)"))?;
        Ok(Self {
            name: name.to_string(),
            path: PathBuf::from(path),
        })
    }
}

impl std::fmt::Display for ContentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.path.display())
    }
}

/// Loads `src` for the tracks of `d`. Tracks the source does not cover are absent; a source that
/// covers none of them is an error.
pub fn load_content(src: &ContentSource, d: &Dataset) -> Result<ContentTable, TrainError> {
    let p = &src.path;
    let t = if p.join("manifest.json").is_file() {
        from_store(src, d)?
    } else if p.is_file()
        && p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        from_attributes(src, d)?
    } else {
        return Err(TrainError::content(
            p,
            "neither a feature-store folder (with manifest.json) nor an item2attributes .json file",
        ));
    };
    if t.n_present() == 0 {
        let first: Vec<&str> = d.tracks.iter().take(3).collect();
        return Err(TrainError::content(
            p,
            format!(
                "content '{}' covers none of the dataset's {} tracks (its first track keys: {})",
                src.name,
                d.n_tracks(),
                first.join(", ")
            ),
        ));
    }
    Ok(t)
}

fn from_store(src: &ContentSource, d: &Dataset) -> Result<ContentTable, TrainError> {
    let store = FeatureStore::load(&src.path)?;
    let m = store.modality(&src.name).ok_or_else(|| {
        let have: Vec<&str> = store.modalities().keys().map(String::as_str).collect();
        let have = if have.is_empty() {
            "none".to_string()
        } else {
            have.join(", ")
        };
        TrainError::content(
            &src.path,
            format!("no modality '{}' (it has: {have})", src.name),
        )
    })?;
    let dim = m.dim;
    let mut values = vec![0.0f32; d.n_tracks() * dim];
    let mut present = vec![false; d.n_tracks()];
    for (t, key) in d.tracks.iter().enumerate() {
        if let Some(row) = store.resolve(key)
            && m.present[row]
        {
            values[t * dim..(t + 1) * dim].copy_from_slice(&m.values[row * dim..(row + 1) * dim]);
            present[t] = true;
        }
    }
    Ok(ContentTable {
        name: src.name.clone(),
        dim,
        values,
        present,
        labels: m.labels.clone(),
    })
}

/// S3-Rec's `{"item": [attribute, ...]}`: one column per attribute id that occurs, holding
/// `ln(1 + count)` (an attribute may be listed several times for a track).
fn from_attributes(src: &ContentSource, d: &Dataset) -> Result<ContentTable, TrainError> {
    let text = std::fs::read_to_string(&src.path)
        .map_err(|e| TrainError::content(&src.path, e.to_string()))?;
    let map: BTreeMap<String, Vec<u32>> =
        serde_json::from_str(&text).map_err(|source| TrainError::Attributes {
            path: src.path.clone(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    attributes_table(&src.name, &map, d)
}

/// [`from_attributes`] on an already parsed map.
pub fn attributes_table(
    name: &str,
    map: &BTreeMap<String, Vec<u32>>,
    d: &Dataset,
) -> Result<ContentTable, TrainError> {
    let vocab: BTreeSet<u32> = map.values().flatten().copied().collect();
    if vocab.is_empty() {
        return Err(TrainError::Content {
            path: name.into(),
            reason: "no attributes at all".into(),
        });
    }
    let column: BTreeMap<u32, usize> = vocab.iter().enumerate().map(|(i, &a)| (a, i)).collect();
    let dim = vocab.len();
    let mut values = vec![0.0f32; d.n_tracks() * dim];
    let mut present = vec![false; d.n_tracks()];
    for (t, key) in d.tracks.iter().enumerate() {
        let Some(attrs) = map.get(key) else { continue };
        if attrs.is_empty() {
            continue;
        }
        let row = &mut values[t * dim..(t + 1) * dim];
        for a in attrs {
            row[column[a]] += 1.0;
        }
        for v in row.iter_mut() {
            *v = v.ln_1p();
        }
        present[t] = true;
    }
    Ok(ContentTable {
        name: name.to_string(),
        dim,
        values,
        present,
        labels: None,
    })
}

/// sha256 of a table's values and presence (what a run records and its checkpoints check).
pub fn table_sha256(t: &ContentTable) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(t.name.as_bytes());
    h.update((t.dim as u64).to_le_bytes());
    for v in &t.values {
        h.update(v.to_le_bytes());
    }
    for &p in &t.present {
        h.update([u8::from(p)]);
    }
    format!("{:x}", h.finalize())
}

/// One line per table: name, width, coverage.
pub fn describe(tables: &[ContentTable], path: impl Fn(usize) -> String) -> String {
    tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "content '{}': {} dims, {} of {} tracks ({:.1} %) from {}",
                t.name,
                t.dim,
                t.n_present(),
                t.n_items(),
                100.0 * t.n_present() as f64 / t.n_items().max(1) as f64,
                path(i)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
