//! The feature store: per-track vectors by modality with a presence mask and provenance.
//!
//! On disk (`DIR/`):
//! - `manifest.json`: format `encore-features/1`, the tracks (id, artist, title), and per
//!   modality its dimension, file, sha256, how many tracks have it, provenance and optional
//!   labels of its dimensions;
//! - `MODALITY.safetensors`: `values` `[tracks, dim]` f32 and `present` `[tracks]` u8.
//!
//! A track without a modality has `present = 0` and zeros that are never read as data:
//! [`FeatureStore::get`] returns `None` for it. Every file is written to a temporary name and
//! renamed; the manifest is written last, so a store on disk is always whole.

use super::error::FeatureError;
use crate::util::weights::{Dtype, WeightsFile, f32_bytes, write_tensors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const FORMAT: &str = "encore-features/1";

/// The most values one modality may hold (tracks x dimensions; 4 GiB of float32): a bound
/// that untrusted inputs (a label file naming millions of labels) cannot push past.
pub const MAX_VALUES: usize = 1 << 30;

/// A track the store knows: its id and, for matching by name, artist and title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artist: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
}

/// Where a modality's vectors came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Model or source, e.g. `musicnn MSD`, `all-MiniLM-L6-v2`, `import`.
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// sha256 of the weights (or imported file) the vectors came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub weights_sha256: String,
    /// Settings that change the vectors (pooling, sample rate, ...).
    #[serde(default)]
    pub parameters: serde_json::Value,
    /// The encore version that wrote them.
    #[serde(default)]
    pub encore: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Modality {
    pub dim: usize,
    /// `[tracks * dim]`.
    pub values: Vec<f32>,
    pub present: Vec<bool>,
    pub provenance: Provenance,
    /// Names of the dimensions (tag names), when they have names.
    pub labels: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ModalityEntry {
    dim: usize,
    file: String,
    sha256: String,
    present: usize,
    provenance: Provenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    tracks: Vec<TrackRef>,
    modalities: BTreeMap<String, ModalityEntry>,
}

#[derive(Clone, Debug, Default)]
pub struct FeatureStore {
    tracks: Vec<TrackRef>,
    by_id: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    modalities: BTreeMap<String, Modality>,
}

/// Normalised `artist\ttitle` for matching (case and surrounding space ignored).
pub fn name_key(artist: &str, title: &str) -> String {
    format!(
        "{}\t{}",
        artist.trim().to_lowercase(),
        title.trim().to_lowercase()
    )
}

fn valid_modality_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl FeatureStore {
    /// A store over `tracks` (ids must be unique).
    pub fn new(tracks: Vec<TrackRef>) -> Result<Self, FeatureError> {
        let mut s = FeatureStore::default();
        for t in tracks {
            s.add_track(t)?;
        }
        Ok(s)
    }

    pub fn tracks(&self) -> &[TrackRef] {
        &self.tracks
    }

    pub fn modalities(&self) -> &BTreeMap<String, Modality> {
        &self.modalities
    }

    pub fn modality(&self, name: &str) -> Option<&Modality> {
        self.modalities.get(name)
    }

    /// Adds a track (absent from every modality); an existing id is an error.
    pub fn add_track(&mut self, t: TrackRef) -> Result<usize, FeatureError> {
        if t.id.is_empty() {
            return Err(FeatureError::EmptyTrackId);
        }
        if self.by_id.contains_key(&t.id) {
            return Err(FeatureError::DuplicateTrack { id: t.id });
        }
        let i = self.tracks.len();
        self.by_id.insert(t.id.clone(), i);
        if !t.artist.is_empty() || !t.title.is_empty() {
            self.by_name
                .entry(name_key(&t.artist, &t.title))
                .or_insert(i);
        }
        self.tracks.push(t);
        for m in self.modalities.values_mut() {
            m.values.extend(std::iter::repeat_n(0.0, m.dim));
            m.present.push(false);
        }
        Ok(i)
    }

    /// The track with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The track with this id, else with this `artist\ttitle` (case-insensitive).
    pub fn resolve(&self, key: &str) -> Option<usize> {
        self.position(key).or_else(|| {
            let (a, t) = key.split_once('\t')?;
            self.by_name.get(&name_key(a, t)).copied()
        })
    }

    pub fn find_by_name(&self, artist: &str, title: &str) -> Option<usize> {
        self.by_name.get(&name_key(artist, title)).copied()
    }

    /// The error for keys this store does not know: how many, and the first five with their
    /// lines (line 0: the format has no lines, e.g. a JSON object).
    pub fn unknown_keys(
        &self,
        path: &std::path::Path,
        unknown: Vec<(usize, String)>,
    ) -> FeatureError {
        FeatureError::UnknownKeys {
            path: path.to_path_buf(),
            keys: unknown,
            tracks: self.tracks.len(),
            nothing_stored: false,
        }
    }

    /// Creates (or checks the dimension of) a modality.
    pub fn ensure_modality(
        &mut self,
        name: &str,
        dim: usize,
        provenance: Provenance,
        labels: Option<Vec<String>>,
    ) -> Result<&mut Modality, FeatureError> {
        if !valid_modality_name(name) {
            return Err(FeatureError::ModalityName { name: name.into() });
        }
        if dim == 0 {
            return Err(FeatureError::Modality {
                modality: name.into(),
                reason: "dimension 0".into(),
            });
        }
        if let Some(l) = &labels
            && l.len() != dim
        {
            return Err(FeatureError::Modality {
                modality: name.into(),
                reason: format!("{} labels for dimension {dim}", l.len()),
            });
        }
        let n = self.tracks.len();
        if n.checked_mul(dim).is_none_or(|v| v > MAX_VALUES) {
            return Err(FeatureError::Modality {
                modality: name.into(),
                reason: format!(
                    "{n} tracks x {dim} dimensions is more than {MAX_VALUES} values (4 GiB); \
                     use fewer dimensions (features tags: --max-labels, --min-count)"
                ),
            });
        }
        let m = self
            .modalities
            .entry(name.to_string())
            .or_insert_with(|| Modality {
                dim,
                values: vec![0.0; n * dim],
                present: vec![false; n],
                provenance: provenance.clone(),
                labels: labels.clone(),
            });
        if m.dim != dim {
            return Err(FeatureError::Redefined {
                modality: name.into(),
                holds: m.dim,
                dim,
            });
        }
        m.provenance = provenance;
        if labels.is_some() {
            m.labels = labels;
        }
        Ok(m)
    }

    /// Sets a track's vector in a modality that exists.
    pub fn set(&mut self, modality: &str, track: usize, v: &[f32]) -> Result<(), FeatureError> {
        let m = self
            .modalities
            .get_mut(modality)
            .ok_or_else(|| FeatureError::NoModality {
                modality: modality.into(),
            })?;
        if v.len() != m.dim {
            return Err(FeatureError::Dimension {
                modality: modality.into(),
                holds: m.dim,
                got: v.len(),
            });
        }
        if let Some(bad) = v.iter().position(|x| !x.is_finite()) {
            return Err(FeatureError::NotFinite {
                modality: modality.into(),
                index: bad,
                value: v[bad],
            });
        }
        m.values[track * m.dim..(track + 1) * m.dim].copy_from_slice(v);
        m.present[track] = true;
        Ok(())
    }

    /// Marks a track absent in a modality (its zeros are not data).
    pub fn clear(&mut self, modality: &str, track: usize) {
        if let Some(m) = self.modalities.get_mut(modality) {
            m.values[track * m.dim..(track + 1) * m.dim].fill(0.0);
            m.present[track] = false;
        }
    }

    /// A track's vector, `None` when the track lacks the modality.
    pub fn get(&self, modality: &str, track: usize) -> Option<&[f32]> {
        let m = self.modalities.get(modality)?;
        m.present
            .get(track)
            .copied()
            .filter(|&p| p)
            .map(|_| &m.values[track * m.dim..(track + 1) * m.dim])
    }

    /// Serialises the store: the manifest and one safetensors file per modality.
    pub fn to_files(&self) -> Result<Vec<(String, Vec<u8>)>, FeatureError> {
        let n = self.tracks.len();
        let mut files = Vec::new();
        let mut entries = BTreeMap::new();
        for (name, m) in &self.modalities {
            let present: Vec<u8> = m.present.iter().map(|&p| u8::from(p)).collect();
            let bytes = write_tensors(
                &[
                    ("values", Dtype::F32, vec![n, m.dim], f32_bytes(&m.values)),
                    ("present", Dtype::U8, vec![n], present),
                ],
                Some(&[]),
            )?;
            let file = format!("{name}.safetensors");
            entries.insert(
                name.clone(),
                ModalityEntry {
                    dim: m.dim,
                    file: file.clone(),
                    sha256: crate::util::sha256_hex(&bytes),
                    present: m.present.iter().filter(|&&p| p).count(),
                    provenance: m.provenance.clone(),
                    labels: m.labels.clone(),
                },
            );
            files.push((file, bytes));
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            tracks: self.tracks.clone(),
            modalities: entries,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| FeatureError::json("manifest.json", e))?;
        files.push(("manifest.json".into(), json));
        Ok(files)
    }

    /// Reads a store from its manifest and a way to fetch its files (checked against the
    /// manifest's sha256).
    pub fn from_files(
        manifest: &[u8],
        mut fetch: impl FnMut(&str) -> Result<Vec<u8>, FeatureError>,
    ) -> Result<Self, FeatureError> {
        const MANIFEST: &str = "manifest.json";
        let mf: Manifest =
            serde_json::from_slice(manifest).map_err(|e| FeatureError::json(MANIFEST, e))?;
        if mf.format != FORMAT {
            return Err(FeatureError::field(
                MANIFEST,
                "format",
                format!("format '{}', expected {FORMAT}", mf.format),
            ));
        }
        let mut s =
            FeatureStore::new(mf.tracks).map_err(|e| e.in_file(std::path::Path::new(MANIFEST)))?;
        let n = s.tracks.len();
        for (name, e) in mf.modalities {
            let bytes = fetch(&e.file)?;
            let sha = crate::util::sha256_hex(&bytes);
            if sha != e.sha256 {
                return Err(FeatureError::Checksum {
                    file: e.file,
                    sha256: sha,
                    recorded: e.sha256,
                });
            }
            let safetensors = |source| FeatureError::Safetensors {
                file: e.file.clone(),
                source,
            };
            let st = WeightsFile::parse(&bytes).map_err(safetensors)?;
            let values = st.f32_shaped("values", &[n, e.dim]).map_err(safetensors)?;
            let present = st.u8_shaped("present", &[n]).map_err(safetensors)?;
            let m = Modality {
                dim: e.dim,
                values,
                present: present.iter().map(|&b| b != 0).collect(),
                provenance: e.provenance,
                labels: e.labels,
            };
            s.modalities.insert(name, m);
        }
        Ok(s)
    }

    /// Writes the store into `dir` (each file atomically, the manifest last).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, dir: &std::path::Path) -> Result<(), FeatureError> {
        use std::io::Write;
        for (name, bytes) in self.to_files()? {
            crate::util::fsio::write_atomic(&dir.join(&name), |w| w.write_all(&bytes))?;
        }
        Ok(())
    }

    /// Reads the store in `dir`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &std::path::Path) -> Result<Self, FeatureError> {
        let mpath = dir.join("manifest.json");
        let manifest = std::fs::read(&mpath).map_err(|e| FeatureError::io(&mpath, e))?;
        Self::from_files(&manifest, |f| {
            let p = dir.join(f);
            std::fs::read(&p).map_err(|e| FeatureError::io(&p, e))
        })
        .map_err(|e| e.in_file(dir))
    }

    /// Coverage per modality: (name, dim, tracks present, model).
    pub fn coverage(&self) -> Vec<(String, usize, usize, String)> {
        self.modalities
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    m.dim,
                    m.present.iter().filter(|&&p| p).count(),
                    m.provenance.model.clone(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, a: &str, title: &str) -> TrackRef {
        TrackRef {
            id: id.into(),
            artist: a.into(),
            title: title.into(),
        }
    }

    #[test]
    fn round_trip_keeps_values_masks_and_provenance() {
        let mut s = FeatureStore::new(vec![t("a", "X", "One"), t("b", "Y", "Two")]).unwrap();
        let prov = Provenance {
            model: "m".into(),
            parameters: serde_json::json!({"k": 1}),
            ..Default::default()
        };
        s.ensure_modality("lyrics", 3, prov.clone(), None).unwrap();
        s.set("lyrics", 1, &[1.0, 2.0, 3.0]).unwrap();
        s.add_track(t("c", "", "")).unwrap();
        let files = s.to_files().unwrap();
        let map: HashMap<_, _> = files.into_iter().collect();
        let back = FeatureStore::from_files(&map["manifest.json"], |f| Ok(map[f].clone())).unwrap();
        assert_eq!(back.get("lyrics", 0), None);
        assert_eq!(back.get("lyrics", 1), Some(&[1.0, 2.0, 3.0][..]));
        assert_eq!(back.get("lyrics", 2), None);
        assert_eq!(back.modality("lyrics").unwrap().provenance, prov);
        assert_eq!(back.resolve("x\tone"), Some(0));
        assert_eq!(back.tracks().len(), 3);
    }

    #[test]
    fn wrong_dimensions_and_tampering_are_refused() {
        let mut s = FeatureStore::new(vec![t("a", "", "")]).unwrap();
        s.ensure_modality("audio", 2, Provenance::default(), None)
            .unwrap();
        assert!(
            s.set("audio", 0, &[1.0])
                .unwrap_err()
                .to_string()
                .contains("2-d")
        );
        assert!(
            s.ensure_modality("audio", 3, Provenance::default(), None)
                .is_err()
        );
        assert!(s.set("audio", 0, &[f32::NAN, 0.0]).is_err());
        assert!(
            s.ensure_modality("Bad Name", 2, Provenance::default(), None)
                .is_err()
        );
        // Millions of labels: refused before anything is allocated.
        let huge = s
            .ensure_modality("tags", MAX_VALUES + 1, Provenance::default(), None)
            .unwrap_err();
        assert!(huge.to_string().contains("--max-labels"), "{huge}");
        s.set("audio", 0, &[1.0, 2.0]).unwrap();
        let map: HashMap<_, _> = s.to_files().unwrap().into_iter().collect();
        let e = FeatureStore::from_files(&map["manifest.json"], |f| {
            let mut b = map[f].clone();
            *b.last_mut().unwrap() ^= 1;
            Ok(b)
        })
        .unwrap_err();
        assert!(e.to_string().contains("sha256"), "{e}");
    }
}
