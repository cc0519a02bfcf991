//! burn on a native wgpu device (Vulkan; Mesa's llvmpipe when there is no GPU).
//! Skipped, with the reason printed, only where wgpu finds no adapter at all.
#![cfg(not(target_arch = "wasm32"))]

use encore::device::{self, BackendKind, DeviceChoice};
use encore::smoke;

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
