//! The list of model bundles served beside the app (`models/index.json`).

use gloo::net::http::Request;

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

/// Fetches `models/index.json` from the app's own origin.
pub async fn list() -> Result<Vec<BundleEntry>, String> {
    let response = Request::get("models/index.json")
        .send()
        .await
        .map_err(|e| format!("models/index.json: {e}"))?;
    if !response.ok() {
        return Err(format!("models/index.json: HTTP {}", response.status()));
    }
    let index: BundleIndex = response
        .json()
        .await
        .map_err(|e| format!("models/index.json: {e}"))?;
    Ok(index.bundles)
}
