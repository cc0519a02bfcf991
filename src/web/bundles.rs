//! Model bundles served beside the app: `models/index.json` lists them; each bundle's files are
//! checked against its manifest before the model is built.

use gloo::net::http::Request;
use gloo::storage::{LocalStorage, Storage};

use super::error::WebError;
use crate::bundle::{BundleConfig, Manifest, Recommender, open};
use burn::tensor::Device;

const CHOSEN_KEY: &str = "encore.bundle";

#[derive(Debug, Clone, serde::Deserialize)]
pub struct BundleListing {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct BundleIndex {
    bundles: Vec<BundleListing>,
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
pub async fn list() -> Result<Vec<BundleListing>, WebError> {
    const INDEX: &str = "models/index.json";
    let response = Request::get(INDEX)
        .send()
        .await
        .map_err(|e| WebError::fetch(INDEX, e))?;
    if response.status() == 404 {
        return Ok(Vec::new());
    }
    if !response.ok() {
        let why = format!("HTTP {}", response.status());
        return Err(WebError::fetch(INDEX, why));
    }
    let index: BundleIndex = response
        .json()
        .await
        .map_err(|e| WebError::fetch(INDEX, e))?;
    Ok(index.bundles)
}

async fn fetch(url: &str) -> Result<Vec<u8>, WebError> {
    fetch_with_progress(url, &|_, _| {}).await
}

/// Downloads `url` chunk by chunk, calling `progress(received, total)` after each (total from
/// Content-Length when the server sends it).
async fn fetch_with_progress(
    url: &str,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Vec<u8>, WebError> {
    use wasm_bindgen::JsCast;
    let response = Request::get(url)
        .send()
        .await
        .map_err(|e| WebError::fetch(url, e))?;
    if !response.ok() {
        let why = format!("HTTP {}", response.status());
        return Err(WebError::fetch(url, why));
    }
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    let Some(body) = response.body() else {
        return response.binary().await.map_err(|e| WebError::fetch(url, e));
    };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::with_capacity(total.unwrap_or(0) as usize);
    loop {
        let chunk = wasm_bindgen_futures::JsFuture::from(reader.read())
            .await
            .map_err(|e| WebError::fetch(url, format!("{e:?}")))?;
        let field = |name: &str| js_sys::Reflect::get(&chunk, &name.into()).ok();
        if field("done").and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let Some(value) = field("value") else { break };
        let bytes = js_sys::Uint8Array::new(&value);
        let start = out.len();
        out.resize(start + bytes.length() as usize, 0);
        bytes.copy_to(&mut out[start..]);
        progress(out.len() as u64, total);
    }
    Ok(out)
}

/// Downloads a bundle, verifies every file against the manifest and builds its model; an
/// E4SRec bundle's LLM is downloaded with `progress(received, total)` and attached.
pub async fn load(
    entry: &BundleListing,
    device: &Device,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<(LoadedBundle, Recommender), WebError> {
    let base = format!("models/{}/", entry.path);
    let manifest = Manifest::parse(&fetch(&format!("{base}manifest.json")).await?)
        .map_err(|e| WebError::within(&base, e))?;
    let config = fetch(&format!("{base}config.json")).await?;
    let catalog = fetch(&format!("{base}catalog.json")).await?;
    let weights = fetch(&format!("{base}model.bpk")).await?;
    let mut rec = open(&manifest, &config, &catalog, weights, device)
        .map_err(|e| WebError::within(&base, e))?;
    if let Some(part) = rec.config.e4srec.clone() {
        let trained = fetch(&format!("{base}{}", part.trained)).await?;
        let gguf = fetch_with_progress(&format!("{base}{}", part.llm), progress).await?;
        rec.attach_e4srec(&manifest, &trained, gguf)
            .map_err(|e| WebError::within(&base, e))?;
    }
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
