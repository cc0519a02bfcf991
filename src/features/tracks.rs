//! Where a new feature store's tracks come from (native): a catalog.json, a track list (TSV), or
//! a prepared dataset folder.

use std::path::{Path, PathBuf};

use super::error::FeatureError;
use super::store::{FeatureStore, TrackRef};
use crate::catalog::Catalog;

/// A source of a new store's tracks.
#[derive(Clone, Debug, PartialEq)]
pub enum TrackSource {
    /// A catalog.json: its tracks' ids, artists and titles.
    Catalog(PathBuf),
    /// A TSV: id[`<TAB>`artist`<TAB>`title] per line (see [`read_track_list`]).
    List(PathBuf),
    /// A prepared dataset folder (`dataset.bin`, from `encore data ingest`).
    Dataset(PathBuf),
}

/// Whether `dir` holds a store already.
pub fn store_exists(dir: &Path) -> bool {
    dir.join("manifest.json").exists()
}

/// The store in `dir` when there is one (`source` unused); otherwise a new store over the tracks
/// of `source`, or an empty one when there is no source. Nothing is written.
pub fn open_or_create(
    dir: &Path,
    source: Option<&TrackSource>,
) -> Result<FeatureStore, FeatureError> {
    if store_exists(dir) {
        return FeatureStore::load(dir);
    }
    let tracks = match source {
        Some(TrackSource::Catalog(p)) => catalog_tracks(&read_catalog(p)?),
        Some(TrackSource::List(p)) => read_track_list(p)?,
        Some(TrackSource::Dataset(d)) => dataset_tracks(d)?,
        None => Vec::new(),
    };
    FeatureStore::new(tracks)
}

/// Reads a catalog.json.
pub fn read_catalog(path: &Path) -> Result<Catalog, FeatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| FeatureError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| FeatureError::NotCatalog {
        path: path.to_path_buf(),
        source,
    })
}

/// A catalog's tracks as store tracks.
pub fn catalog_tracks(catalog: &Catalog) -> Vec<TrackRef> {
    catalog
        .tracks
        .iter()
        .map(|t| TrackRef {
            id: t.id.clone(),
            artist: t.artist.clone(),
            title: t.title.clone(),
        })
        .collect()
}

/// A track list: id[`<TAB>`artist`<TAB>`title] per line, blank lines skipped; a line with an
/// empty id keys its track by artist and title (`artist<TAB>title`, as the data layer does), and
/// a line with neither is an error naming it.
pub fn read_track_list(path: &Path) -> Result<Vec<TrackRef>, FeatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| FeatureError::io(path, e))?;
    let mut v = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let c: Vec<&str> = line.split('\t').map(str::trim).collect();
        let (artist, title) = (
            c.get(1).copied().unwrap_or(""),
            c.get(2).copied().unwrap_or(""),
        );
        // No id: the track is known by artist and title, as the data layer keys it.
        let id = if !c[0].is_empty() {
            c[0].to_string()
        } else if !artist.is_empty() && !title.is_empty() {
            let mut k = String::new();
            crate::data::log::name_key(&mut k, artist, title);
            k
        } else {
            return Err(FeatureError::row(
                path,
                i + 1,
                "neither a track id nor artist and title",
            ));
        };
        v.push(TrackRef {
            id,
            artist: artist.to_string(),
            title: title.to_string(),
        });
    }
    Ok(v)
}

/// The tracks of a prepared dataset folder.
pub fn dataset_tracks(dir: &Path) -> Result<Vec<TrackRef>, FeatureError> {
    let ds = crate::data::preprocess::Dataset::load(&dir.join("dataset.bin"))?;
    Ok((0..ds.n_tracks() as u32)
        .map(|t| TrackRef {
            id: ds.tracks.get(t).to_string(),
            artist: ds.artist_name.get(ds.track_artist[t as usize]).to_string(),
            title: ds.track_name.get(t).to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_lists_key_unnamed_tracks_by_artist_and_title() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tsv");
        std::fs::write(&p, "a\tAnn\tOne\n\n\tBob\tTwo\nc\n").unwrap();
        let t = read_track_list(&p).unwrap();
        let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a", "Bob\tTwo", "c"]);
        std::fs::write(&p, "a\n\tBob\n").unwrap();
        assert!(
            read_track_list(&p)
                .unwrap_err()
                .to_string()
                .ends_with("t.tsv:2: neither a track id nor artist and title")
        );
        let s = open_or_create(
            &dir.path().join("store"),
            Some(&TrackSource::List(p.clone())),
        );
        assert!(s.is_err());
        let s = open_or_create(&dir.path().join("store"), None).unwrap();
        assert!(s.tracks().is_empty());
    }
}
