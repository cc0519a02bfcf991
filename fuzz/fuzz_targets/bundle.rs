//! A bundle as the page receives it, split at NUL bytes into manifest, config, catalog and
//! weights: the manifest parsed and the files checked against it, and (the checksums aside)
//! the config and catalog parsed and the recommender built from them on the CPU.
#![no_main]
use encore::bundle::{BundleConfig, Manifest, Recommender, open};
use encore::catalog::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let (Some(m), Some(config), Some(catalog)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let weights = parts.next().unwrap_or_default().to_vec();
    let cpu = burn::tensor::Device::flex();
    if let Ok(manifest) = Manifest::parse(m) {
        let _ = open(&manifest, config, catalog, weights.clone(), &cpu);
    }
    let (Ok(config), Ok(catalog)) = (
        serde_json::from_slice::<BundleConfig>(config),
        serde_json::from_slice::<Catalog>(catalog),
    ) else {
        return;
    };
    if catalog.validate().is_ok() {
        let _ = Recommender::new(config, catalog, weights, &cpu);
    }
});
