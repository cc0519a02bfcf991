//! Browser tests (wasm-bindgen-test in headless Chromium): burn on the page's real WebGPU device
//! (SwiftShader when there is no GPU) and on flex, checked against host-side references.
//!
//! Run: `scripts/test.sh` (stage "wasm"), or
//! `cargo test --target wasm32-unknown-unknown --test web` with
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner`.
#![cfg(target_arch = "wasm32")]

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use encore::device::{self, BackendKind};
use encore::smoke;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn webgpu() -> Device {
    let selected = device::webgpu_device()
        .await
        .expect("the browser offers no WebGPU adapter (is --enable-unsafe-webgpu set?)");
    assert_eq!(selected.backend, BackendKind::WebGpu);
    assert!(!selected.adapter.is_empty());
    assert!(
        !selected.adapter.contains("unnamed"),
        "{}",
        selected.adapter
    );
    selected.device
}

#[wasm_bindgen_test]
async fn webgpu_smoke_matches_f64_reference() {
    let report = smoke::run_async(&webgpu().await).await.unwrap();
    assert!(report.ok, "{}", report.summary());
}

#[wasm_bindgen_test]
async fn flex_smoke_matches_f64_reference() {
    let report = smoke::run_async(&Device::flex()).await.unwrap();
    assert!(report.ok, "{}", report.summary());
    assert!(report.max_abs_diff < 1e-6);
}

#[wasm_bindgen_test]
async fn browser_device_prefers_webgpu_and_honours_cpu_choice() {
    let auto = device::browser_device(false).await;
    assert_eq!(auto.backend, BackendKind::WebGpu, "{auto}");
    let cpu = device::browser_device(true).await;
    assert_eq!(cpu.backend, BackendKind::Cpu);
    assert!(cpu.fallback_reason.is_some());
}

/// A scoring-shaped graph (embedding lookup by matmul, GELU MLP, tied scores, softmax, top-k)
/// gives the same numbers and the same ranking on WebGPU as on flex.
#[wasm_bindgen_test]
async fn webgpu_equals_flex_on_a_scoring_graph() {
    const B: usize = 6;
    const D: usize = 32;
    const N: usize = 97;
    fn inputs(device: &Device) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let h: Vec<f32> = (0..B * D).map(|n| ((n as f32) * 0.37).sin()).collect();
        let w: Vec<f32> = (0..D * D)
            .map(|n| ((n as f32) * 0.11 + 0.5).cos() * 0.2)
            .collect();
        let items: Vec<f32> = (0..N * D)
            .map(|n| ((n as f32) * 0.053).sin() * 0.5)
            .collect();
        (
            Tensor::from_data(TensorData::new(h, [B, D]), device),
            Tensor::from_data(TensorData::new(w, [D, D]), device),
            Tensor::from_data(TensorData::new(items, [N, D]), device),
        )
    }
    async fn run(device: &Device) -> (Vec<f32>, Vec<i64>) {
        let (h, w, items) = inputs(device);
        let hidden = gelu(h.matmul(w)); // [B, D]
        let scores = softmax(hidden.matmul(items.transpose()), 1); // [B, N]
        let (_, top) = scores.clone().topk_with_indices(5, 1);
        let probs = scores
            .into_data_async()
            .await
            .unwrap()
            .try_into_vec::<f32>()
            .unwrap();
        let top = top.into_data_async().await.unwrap();
        let top = top.convert::<i64>().try_into_vec::<i64>().unwrap();
        (probs, top)
    }
    let (gpu_probs, gpu_top) = run(&webgpu().await).await;
    let (cpu_probs, cpu_top) = run(&Device::flex()).await;
    let max_diff = gpu_probs
        .iter()
        .zip(&cpu_probs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-5, "WebGPU and flex differ by {max_diff}");
    assert_eq!(gpu_top, cpu_top);
    // The ranking is not trivial: rows differ.
    assert_ne!(gpu_top[..5], gpu_top[5..10]);
}
