//! burn on a native wgpu device (Vulkan; Mesa's llvmpipe when there is no GPU).
//! Skipped, with the reason printed, only where wgpu finds no adapter at all.
#![cfg(not(target_arch = "wasm32"))]

use encore::device::smoke;
use encore::device::{self, BackendKind, DeviceChoice};

#[test]
fn wgpu_device_computes_the_reference() {
    let adapters = device::wgpu_adapters();
    if adapters.is_empty() {
        eprintln!("SKIPPED: wgpu finds no adapter here (install mesa-vulkan-drivers for llvmpipe)");
        return;
    }
    let selected =
        device::select(DeviceChoice::Wgpu).expect("an adapter exists, so wgpu must start");
    assert_eq!(selected.backend, BackendKind::Wgpu);
    // The adapter reported is one wgpu listed.
    assert!(
        adapters
            .iter()
            .any(|a| selected.adapter.starts_with(&a.name)),
        "{} not among {adapters:?}",
        selected.adapter
    );
    let report = smoke::run(&selected.device).unwrap();
    assert!(report.ok, "{}", report.summary());
}

/// Every sequential model gives the same scores on wgpu as on flex (same weights).
#[test]
fn models_score_alike_on_wgpu_and_flex() {
    if device::wgpu_adapters().is_empty() {
        eprintln!("SKIPPED: wgpu finds no adapter here (install mesa-vulkan-drivers for llvmpipe)");
        return;
    }
    use burn::module::Module;
    let gpu = device::select(DeviceChoice::Wgpu).unwrap().device;
    let cpu = burn::tensor::Device::flex();
    let hist: [&[u32]; 3] = [&[3, 1, 4, 1, 5], &[9, 2, 6], &[5]];
    for name in encore::model::MODEL_NAMES {
        let mut cfg = encore::model::ModelConfig::defaults(name, 40).unwrap();
        cfg.set("max_len", 8.0).unwrap();
        let m = cfg.init(&cpu).valid();
        let g = m.clone().to_device(&gpu);
        let a: Vec<f32> = m
            .score_all(m.history_state(&hist, 8, &cpu))
            .into_data()
            .try_to_vec()
            .unwrap();
        let b: Vec<f32> = g
            .score_all(g.history_state(&hist, 8, &gpu))
            .into_data()
            .try_to_vec()
            .unwrap();
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-3, "{name}: max |flex - wgpu| = {diff}");
    }
}
