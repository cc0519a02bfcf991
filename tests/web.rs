//! Browser tests (wasm-bindgen-test in headless Chromium): burn on the page's real WebGPU device
//! (SwiftShader when there is no GPU) and on flex, checked against host-side references.
//!
//! Run: `scripts/test.sh` (stage "wasm"), or
//! `cargo test --target wasm32-unknown-unknown --test web` with
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner`.
#![cfg(target_arch = "wasm32")]

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use encore::device::smoke;
use encore::device::{self, BackendKind};
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

/// The listening history survives in IndexedDB: written, read back in order, replaced by id.
#[wasm_bindgen_test]
async fn history_round_trips_through_indexeddb() {
    use encore::data::history::{self, Started};
    use encore::web::storage;
    let db = storage::open().await.unwrap();
    storage::clear(&db).await.unwrap();
    let s = |id: &str, at: f64| Started {
        track_id: id.into(),
        title: id.to_uppercase(),
        artist: "A".into(),
        duration_s: 100.0,
        started_ms: at,
    };
    let a = history::finish_play(None, &s("a", 1.7e12), 20.0, false);
    let b = history::finish_play(Some(&a), &s("b", 1.7e12 + 30_000.0), 100.0, true);
    storage::put_all(&db, &[b.clone(), a.clone()])
        .await
        .unwrap();
    assert_eq!(
        storage::load(&db).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    // An import that fails validation never reaches the store.
    assert!(
        history::import(
            "bad.json",
            "{\"format\": \"encore-history/1\", \"plays\": [{}]}"
        )
        .is_err()
    );
    let mut a2 = a.clone();
    a2.completion = 0.5;
    storage::put_all(&db, &[a2.clone()]).await.unwrap();
    assert_eq!(storage::load(&db).await.unwrap(), vec![a2, b]);
    storage::clear(&db).await.unwrap();
    assert!(storage::load(&db).await.unwrap().is_empty());
}

/// `n` tracks `t0..` by three artists, for the recommender tests.
fn test_catalog(n: usize) -> encore::catalog::Catalog {
    use encore::catalog::{Catalog, Track};
    let tracks: Vec<Track> = (0..n)
        .map(|i| Track {
            id: format!("t{i}"),
            title: format!("T{i}"),
            artist: format!("A{}", i % 3),
            album: String::new(),
            genre: String::new(),
            duration_s: 60.0,
            audio: format!("audio/t{i}.ogg"),
            licence: "CC0".into(),
            attribution: String::new(),
            tags: vec![],
        })
        .collect();
    Catalog {
        name: "t".into(),
        description: String::new(),
        tracks,
    }
}

/// A bundle's model recommends the same tracks on WebGPU as on flex.
#[wasm_bindgen_test]
async fn recommender_agrees_on_webgpu_and_flex() {
    use burn::module::Module;
    use encore::bundle::{BundleConfig, BundleProvenance, Recommender};
    use encore::model::ModelConfig;
    let n = 30;
    let catalog = test_catalog(n);
    let model = ModelConfig::defaults("sasrec", n).unwrap();
    let weights = model
        .init(&Device::flex())
        .into_record()
        .into_bytes()
        .unwrap()
        .to_vec();
    let config = BundleConfig {
        model,
        // Model order differs from catalog order.
        items: (0..n).rev().map(|i| format!("t{i}")).collect(),
        popularity: (0..n as u32).collect(),
        provenance: BundleProvenance::default(),
        labels: Default::default(),
        e4srec: None,
    };
    let gpu = Recommender::new(
        config.clone(),
        catalog.clone(),
        weights.clone(),
        &webgpu().await,
    )
    .unwrap();
    let cpu = Recommender::new(config, catalog, weights, &Device::flex()).unwrap();
    let history = [3, 7, 7, 12];
    let a = gpu.recommend(&history, &[12], 10).await.unwrap();
    let b = cpu.recommend(&history, &[12], 10).await.unwrap();
    assert_eq!(a.len(), 10);
    assert!(a.iter().all(|r| r.track != 12));
    let ta: Vec<usize> = a.iter().map(|r| r.track).collect();
    let tb: Vec<usize> = b.iter().map(|r| r.track).collect();
    assert_eq!(ta, tb);
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x.score - y.score).abs() < 1e-4,
            "{} vs {}",
            x.score,
            y.score
        );
    }
    // An empty history falls back to popularity: item 29 (track t0) has the most plays.
    let pop = cpu.recommend(&[], &[], n).await.unwrap();
    assert_eq!(pop[0].track, 0);
    assert_eq!(pop[n - 1].track, n - 1);
}

/// A content-only bundle scores a listener's own track (content the model never saw) on WebGPU
/// as on flex, and exactly as the catalog track with the same content.
#[wasm_bindgen_test]
async fn new_tracks_score_on_webgpu_as_on_flex() {
    use burn::module::Module;
    use encore::bundle::{BundleConfig, BundleProvenance, NewTrack, Recommender};
    use encore::model::ModelConfig;
    use encore::model::fusion::{ContentTable, FusionConfig, ModalityDim, Strategy};
    let (n, dim) = (20, 24);
    let catalog = test_catalog(n);
    let mut model = ModelConfig::defaults("sasrec", n).unwrap();
    model.set_fusion(Some(FusionConfig::new(
        Strategy::ContentOnly,
        vec![ModalityDim {
            name: "audio".into(),
            dim,
        }],
    )));
    // Deterministic, distinct content per track; track 19 has none (absent vector).
    let values: Vec<f32> = (0..n * dim)
        .map(|k| ((k * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    let present: Vec<bool> = (0..n).map(|i| i != n - 1).collect();
    let table = ContentTable {
        name: "audio".into(),
        dim,
        values: values.clone(),
        present,
        labels: None,
    };
    let weights = model
        .init(&Device::flex())
        .set_content(&[table])
        .unwrap()
        .into_record()
        .into_bytes()
        .unwrap()
        .to_vec();
    let config = BundleConfig {
        model,
        items: (0..n).map(|i| format!("t{i}")).collect(),
        popularity: vec![1; n],
        provenance: BundleProvenance::default(),
        labels: Default::default(),
        e4srec: None,
    };
    let gpu = Recommender::new(
        config.clone(),
        catalog.clone(),
        weights.clone(),
        &webgpu().await,
    )
    .unwrap();
    let cpu = Recommender::new(config, catalog, weights, &Device::flex()).unwrap();
    assert!(gpu.accepts_new_tracks());
    let twin = 5;
    let new = vec![NewTrack {
        content: [(
            "audio".to_string(),
            values[twin * dim..(twin + 1) * dim].to_vec(),
        )]
        .into(),
    }];
    let history = [3, 7, n, 12];
    let a = gpu
        .recommend_new(&history, None, &[], n + 1, &new)
        .await
        .unwrap();
    let b = cpu
        .recommend_new(&history, None, &[], n + 1, &new)
        .await
        .unwrap();
    assert_eq!(a.len(), n + 1);
    // Per track (the new track and its twin tie, so their order may differ by rounding).
    let score = |t: usize| a.iter().find(|r| r.track == t).unwrap().score;
    for y in &b {
        let x = score(y.track);
        assert!(
            (x - y.score).abs() < 1e-4,
            "track {}: {x} vs {}",
            y.track,
            y.score
        );
    }
    assert!(
        (score(n) - score(twin)).abs() < 1e-4,
        "{} vs {}",
        score(n),
        score(twin)
    );
    assert!((gpu.affinity(twin, n, &new).sound.unwrap() - 1.0).abs() < 1e-5);
    assert!(gpu.affinity(n - 1, n, &new).sound.is_none());
}
