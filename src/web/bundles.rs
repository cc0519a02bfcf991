//! Model bundles served beside the app: `models/index.json` lists them; each bundle's files are
//! checked against its manifest before the model is built.

use gloo::net::http::Request;
use gloo::storage::{LocalStorage, Storage};

use crate::bundle::{BundleConfig, Manifest, Recommender, open};
use burn::tensor::Device;

const CHOSEN_KEY: &str = "encore.bundle";

#[derive(Debug, Clone, serde::Deserialize)]
pub struct BundleEntry {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct BundleIndex {
    bundles: Vec<BundleEntry>,
}

/// A bundle's manifest and config, and the URL prefix of its files.
#[derive(Debug, Clone)]
pub struct LoadedBundle {
    pub base: String,
    pub manifest: Manifest,
    pub config: BundleConfig,
}

/// The bundle the listener chose last (its folder name).
pub fn chosen() -> Option<String> {
    LocalStorage::get::<String>(CHOSEN_KEY).ok()
}

pub fn choose(path: &str) {
    let _ = LocalStorage::set(CHOSEN_KEY, path);
}

/// Fetches `models/index.json` from the app's own origin (none yet: an empty list).
pub async fn list() -> Result<Vec<BundleEntry>, String> {
    let response = Request::get("models/index.json")
        .send()
        .await
        .map_err(|e| format!("models/index.json: {e}"))?;
    if response.status() == 404 {
        return Ok(Vec::new());
    }
    if !response.ok() {
        return Err(format!("models/index.json: HTTP {}", response.status()));
    }
    let index: BundleIndex = response
        .json()
        .await
        .map_err(|e| format!("models/index.json: {e}"))?;
    Ok(index.bundles)
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let response = Request::get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response.binary().await.map_err(|e| format!("{url}: {e}"))
}

/// Downloads a bundle, verifies every file against the manifest and builds its model.
pub async fn load(
    entry: &BundleEntry,
    device: &Device,
) -> Result<(LoadedBundle, Recommender), String> {
    let base = format!("models/{}/", entry.path);
    let manifest = Manifest::parse(&fetch(&format!("{base}manifest.json")).await?)
        .map_err(|e| format!("{base}{e}"))?;
    let config = fetch(&format!("{base}config.json")).await?;
    let catalog = fetch(&format!("{base}catalog.json")).await?;
    let weights = fetch(&format!("{base}model.bpk")).await?;
    let rec =
        open(&manifest, &config, &catalog, weights, device).map_err(|e| format!("{base}{e}"))?;
    let config = rec.config.clone();
    Ok((
        LoadedBundle {
            base,
            manifest,
            config,
        },
        rec,
    ))
}
