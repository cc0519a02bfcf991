//! The demo pipeline on the real music assets: catalog from tagged audio files, sessions
//! simulated from content, SASRec trained on them, bundles exported (float32 and q8) and loaded
//! the way the web app loads them.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::{encore, encore_ok};
use encore::bundle::{Manifest, Recommender, open, verify};
use encore::catalog::Catalog;

fn assets() -> PathBuf {
    common::assets(&["wesnoth-music"])
}

fn load(dir: &Path, device: &Device) -> (Manifest, Recommender) {
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let manifest = Manifest::parse(&read("manifest.json")).unwrap();
    let rec = open(
        &manifest,
        &read("config.json"),
        &read("catalog.json"),
        read("model.bpk"),
        device,
    )
    .unwrap();
    (manifest, rec)
}

/// `encore catalog build` of the demo spec into `TMP/music`; returns the catalog file.
fn build_catalog(tmp: &Path) -> (PathBuf, String) {
    let music = tmp.join("music");
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo.toml");
    let out = encore_ok(&[
        "catalog",
        "build",
        "--spec",
        spec,
        "--assets",
        assets().to_str().unwrap(),
        "-o",
        music.to_str().unwrap(),
    ]);
    (music.join("catalog.json"), out)
}

/// `encore catalog simulate` of `listeners` listeners into `TMP/sessions.inter`.
fn simulate(tmp: &Path, catalog: &Path, listeners: usize) -> PathBuf {
    let inter = tmp.join("sessions.inter");
    encore_ok(&[
        "catalog",
        "simulate",
        catalog.to_str().unwrap(),
        "--listeners",
        &listeners.to_string(),
        "-o",
        inter.to_str().unwrap(),
    ]);
    inter
}

/// One seed of SASRec on the simulated sessions (loo-full, CPU) into `run`, with `extra` flags.
fn train(inter: &Path, run: &Path, epochs: usize, extra: &[&str]) {
    let epochs = epochs.to_string();
    let mut args = vec![
        "train",
        "--data",
        inter.to_str().unwrap(),
        "--format",
        "recbole",
        "--preset",
        "none",
        "--model",
        "sasrec",
        "--protocol",
        "loo-full",
        "--seeds",
        "1",
        "--epochs",
        &epochs,
        "--device",
        "cpu",
        "-o",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    encore_ok(&args);
}

/// `encore export` of a run on simulated sessions, quantized as `q`, into `dir`.
fn export(run: &Path, catalog: &Path, q: &str, dir: &Path) {
    encore_ok(&[
        "export",
        run.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--quantize",
        q,
        "--simulated",
        "-o",
        dir.to_str().unwrap(),
    ]);
}

#[test]
fn demo_catalog_model_and_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let (cat_path, out) = build_catalog(tmp.path());
    let music = cat_path.parent().unwrap().to_path_buf();
    assert!(out.contains("41 tracks"), "{out}");
    let catalog: Catalog = serde_json::from_slice(&std::fs::read(&cat_path).unwrap()).unwrap();
    let vibe = &catalog.tracks[catalog
        .position("macleod/Kevin_MacLeod_-_Vibe_Ace")
        .unwrap()];
    assert_eq!(
        (vibe.title.as_str(), vibe.artist.as_str()),
        ("Vibe Ace", "Kevin MacLeod")
    );
    assert!((vibe.duration_s - 61.5).abs() < 0.5, "{}", vibe.duration_s);
    assert!(
        vibe.licence.contains("creativecommons.org/licenses/by/3.0"),
        "{}",
        vibe.licence
    );
    assert!(
        catalog
            .tracks
            .iter()
            .all(|t| music.join(&t.audio).is_file())
    );
    assert!(
        catalog
            .tracks
            .iter()
            .any(|t| t.id.starts_with("asc/") && t.audio.ends_with(".mp3"))
    );
    assert!(catalog.tracks.iter().all(|t| t.duration_s >= 20.0));

    let inter = simulate(tmp.path(), &cat_path, 200);
    // The log's `.item` file names the tracks and gives the durations its completion ratios
    // are read through: every play has its ratio, some of them skips.
    let (data, _) = encore::experiment::run::load_data(&inter, "recbole", "none").unwrap();
    let first = catalog
        .tracks
        .iter()
        .find(|t| t.id == data.tracks.get(0))
        .unwrap();
    assert_eq!(data.track_name.get(0), first.title);
    let known: Vec<f32> = data
        .completion
        .iter()
        .copied()
        .filter(|c| !c.is_nan())
        .collect();
    assert_eq!(known.len(), data.completion.len());
    let skips = known.iter().filter(|&&c| c < 0.5).count();
    assert!(skips > 0 && skips < known.len(), "{skips} skips");
    let run = tmp.path().join("run");
    train(&inter, &run, 30, &[]);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    let ndcg = results["metrics"]["NDCG@10"]["mean"].as_f64().unwrap();
    // 41 tracks: a random ranking gives NDCG@10 of about 0.11; content-shaped sessions are learnt.
    assert!(ndcg > 0.2, "NDCG@10 {ndcg}");

    let mut bundles = Vec::new();
    for q in ["none", "q8"] {
        let dir = tmp.path().join(format!("demo-{q}"));
        export(&run, &cat_path, q, &dir);
        common::seeds::bundle(&dir, "model.bpk");
        bundles.push(dir);
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["bundles"].as_array().unwrap().len(), 2);
    let device = Device::flex();
    let (m32, fp32) = load(&bundles[0], &device);
    let (m8, q8) = load(&bundles[1], &device);
    let size = |m: &Manifest| m.file("model.bpk").unwrap().bytes as f64;
    assert!(
        size(&m8) < 0.35 * size(&m32),
        "q8 {} vs fp32 {}",
        size(&m8),
        size(&m32)
    );
    assert!(fp32.config.provenance.simulated);
    assert!(m32.quantization_effect.is_none());
    let effect = m8
        .quantization_effect
        .as_ref()
        .expect("q8 reports its effect");
    let [a, b] = effect.metrics["NDCG@10"];
    assert!(
        a > 0.2 && (a - b).abs() < 0.02,
        "NDCG@10 float32 {a}, q8 {b}"
    );
    assert_eq!(
        effect.bytes,
        [
            m32.file("model.bpk").unwrap().bytes,
            m8.file("model.bpk").unwrap().bytes
        ]
    );
    // Audio URLs reach the shared music folder from each bundle.
    for t in &fp32.catalog.tracks {
        assert!(bundles[0].join(&t.audio).is_file(), "{}", t.audio);
    }
    let history: Vec<usize> = (0..6).collect();
    let a = pollster::block_on(fp32.recommend(&history, &history, 10)).unwrap();
    let b = pollster::block_on(q8.recommend(&history, &history, 10)).unwrap();
    assert_eq!(a.len(), 10);
    assert!(a.iter().all(|r| !history.contains(&r.track)));
    let top_a: Vec<usize> = a.iter().map(|r| r.track).collect();
    let shared = b.iter().filter(|r| top_a.contains(&r.track)).count();
    assert!(shared >= 8, "q8 keeps {shared} of the float32 top 10");
    // Recommendations follow the history, in both formats.
    for rec in [&fp32, &q8] {
        let other: Vec<usize> = (30..36).collect();
        let c = pollster::block_on(rec.recommend(&other, &history, 10)).unwrap();
        let d = pollster::block_on(rec.recommend(&history, &history, 10)).unwrap();
        assert_ne!(
            c.iter().map(|r| r.track).collect::<Vec<_>>(),
            d.iter().map(|r| r.track).collect::<Vec<_>>()
        );
    }

    // A corrupted file is caught by its checksum.
    let mut bytes = std::fs::read(bundles[0].join("model.bpk")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let err = verify(m32.file("model.bpk").unwrap(), &bytes).unwrap_err();
    assert!(
        err.to_string().contains("does not match the manifest"),
        "{err}"
    );

    // A model that reads completion ratios (the simulated sessions carry them): the app passes
    // each play's ratio, and a history heard to the end ranks differently from the same history
    // skipped after a few seconds. The id-only model ignores the ratios.
    let run_c = tmp.path().join("run-completion");
    train(&inter, &run_c, 15, &["--completion", "buckets:4"]);
    let dir_c = tmp.path().join("demo-completion");
    export(&run_c, &cat_path, "q8", &dir_c);
    let (_, with_c) = load(&dir_c, &device);
    assert!(with_c.reads_completion() && !fp32.reads_completion());
    let heard = vec![1.0f32; history.len()];
    let skipped = vec![0.05f32; history.len()];
    let top = |rec: &Recommender, c: &[f32]| -> Vec<(usize, f32)> {
        pollster::block_on(rec.recommend_with(&history, Some(c), &history, 10))
            .unwrap()
            .into_iter()
            .map(|r| (r.track, r.score))
            .collect()
    };
    assert_ne!(top(&with_c, &heard), top(&with_c, &skipped));
    assert_eq!(top(&fp32, &heard), top(&fp32, &skipped));
    let err = pollster::block_on(with_c.recommend_with(&history, Some(&heard[1..]), &[], 10))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("5 completion ratios for 6 history plays"),
        "{err}"
    );
}

#[test]
fn catalog_build_reports_a_missing_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        "name = \"x\"\n[[source]]\nid = \"a\"\npath = \"nowhere\"\norigin = \"o\"\nlicence = \"CC0\"\n",
    )
    .unwrap();
    let (code, _, err) = encore(&[
        "catalog",
        "build",
        "--spec",
        spec.to_str().unwrap(),
        "--assets",
        tmp.path().to_str().unwrap(),
        "-o",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("source 'a'") && err.contains("nowhere"),
        "{err}"
    );
}

/// A content-only bundle (musicnn's embedding and tags, as the app computes them for a
/// listener's file) scores a track it was never trained on: a "new" track with a catalog
/// track's content scores and behaves in a history exactly like that track.
#[test]
fn content_only_bundle_scores_new_tracks() {
    let tmp = tempfile::tempdir().unwrap();
    let (cat_path, _) = build_catalog(tmp.path());
    let music = cat_path.parent().unwrap().to_path_buf();
    let catalog: Catalog = serde_json::from_slice(&std::fs::read(&cat_path).unwrap()).unwrap();
    // musicnn on four short tracks (linked into one folder; --catalog matches them by path),
    // the others stay without content and get the model's absent vectors.
    let mut short: Vec<&encore::catalog::Track> = catalog.tracks.iter().collect();
    short.sort_by(|a, b| a.duration_s.total_cmp(&b.duration_s));
    let picked: Vec<String> = short.iter().take(4).map(|t| t.id.clone()).collect();
    let dir = tmp.path().join("picked");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, id) in picked.iter().enumerate() {
        let t = &catalog.tracks[catalog.position(id).unwrap()];
        let ext = Path::new(&t.audio).extension().unwrap().to_str().unwrap();
        std::os::unix::fs::symlink(
            std::fs::canonicalize(music.join(&t.audio)).unwrap(),
            dir.join(format!("{i}.{ext}")),
        )
        .unwrap();
    }
    let store = tmp.path().join("store");
    let out = encore_ok(&[
        "features",
        "audio",
        "--store",
        store.to_str().unwrap(),
        "--catalog",
        cat_path.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.contains("4 embedded") && out.contains("0 unmatched"),
        "{out}"
    );
    let inter = simulate(tmp.path(), &cat_path, 100);
    let run = tmp.path().join("run");
    let audio = format!("audio={}", store.display());
    let tags = format!("audio_tags={}", store.display());
    train(
        &inter,
        &run,
        3,
        &[
            "--content",
            &audio,
            "--content",
            &tags,
            "--fusion",
            "content-only",
            "--completion",
            "buckets:4",
        ],
    );
    let bundle = tmp.path().join("demo-content");
    export(&run, &cat_path, "q8", &bundle);
    let (_, rec) = load(&bundle, &Device::flex());
    assert!(rec.accepts_new_tracks());
    assert_eq!(rec.modalities(), ["audio", "audio_tags"]);
    assert_eq!(rec.config.labels["audio_tags"].len(), 50);
    let with: Vec<usize> = picked
        .iter()
        .map(|id| rec.catalog.position(id).unwrap())
        .collect();
    let without = (0..rec.catalog.tracks.len())
        .find(|t| !with.contains(t))
        .unwrap();
    assert!(rec.content_of(without, "audio").is_none());
    let copy_of = with[0];
    let mut content = std::collections::BTreeMap::new();
    for m in ["audio", "audio_tags"] {
        let v = rec.content_of(copy_of, m).unwrap();
        assert_eq!(v.len(), if m == "audio" { 200 } else { 50 });
        content.insert(m.to_string(), v.to_vec());
    }
    let new = vec![encore::bundle::NewTrack { content }];
    let n = rec.catalog.tracks.len();
    let scores = |history: &[usize]| -> Vec<(usize, f32)> {
        pollster::block_on(rec.recommend_new(history, None, &[], n + 1, &new))
            .unwrap()
            .into_iter()
            .map(|r| (r.track, r.score))
            .collect()
    };
    let history = [with[1], with[2], without, with[3]];
    let all = scores(&history);
    assert_eq!(all.len(), n + 1);
    let score = |t: usize| all.iter().find(|r| r.0 == t).unwrap().1;
    assert!(
        (score(n) - score(copy_of)).abs() < 1e-4,
        "new {} vs its catalog twin {}",
        score(n),
        score(copy_of)
    );
    // In a history, the new track counts as its twin.
    let mut h_new = history.to_vec();
    let mut h_cat = history.to_vec();
    h_new.push(n);
    h_cat.push(copy_of);
    let (a, b) = (scores(&h_new), scores(&h_cat));
    for ((ta, sa), (tb, sb)) in a.iter().zip(&b) {
        assert!((sa - sb).abs() < 1e-4, "{ta}: {sa} vs {tb}: {sb}");
    }
    // Without new tracks the catalog alone is ranked; a track index past both is refused.
    let plain = pollster::block_on(rec.recommend_with(&history, None, &[], n)).unwrap();
    assert_eq!(plain.len(), n);
    assert!(plain.iter().all(|r| r.track < n));
    let err = pollster::block_on(rec.recommend_new(&[n + 1], None, &[], 5, &new)).unwrap_err();
    assert!(err.to_string().contains("beyond the catalog"), "{err}");
    // "Why": the twin sounds the same, and shares the musicnn tags it has most above the
    // catalog's mean.
    let aff = rec.affinity(copy_of, n, &new);
    assert!((aff.sound.unwrap() - 1.0).abs() < 1e-5, "{aff:?}");
    assert_eq!(aff.shared.len(), 1, "{aff:?}");
    assert_eq!(aff.shared[0].0, "audio_tags");
    assert_eq!(aff.shared[0].1.len(), 3, "{aff:?}");
    let v = rec.content_of(copy_of, "audio_tags").unwrap();
    let labels = &rec.config.labels["audio_tags"];
    let mean: Vec<f32> = (0..v.len())
        .map(|i| {
            let xs: Vec<f32> = with
                .iter()
                .map(|&t| rec.content_of(t, "audio_tags").unwrap()[i])
                .collect();
            xs.iter().sum::<f32>() / xs.len() as f32
        })
        .collect();
    let mut lift: Vec<(f32, &String)> =
        (0..v.len()).map(|i| (v[i] - mean[i], &labels[i])).collect();
    lift.sort_by(|a, b| b.0.total_cmp(&a.0));
    let expect: Vec<String> = lift.iter().take(3).map(|(_, l)| (*l).clone()).collect();
    assert_eq!(aff.shared[0].1, expect);
    assert!(rec.affinity(without, n, &new).sound.is_none());
    // A content vector of the wrong width is refused with the widths named.
    let mut bad = new.clone();
    bad[0].content.insert("audio".into(), vec![0.0; 10]);
    let err = pollster::block_on(rec.recommend_new(&history, None, &[], 5, &bad)).unwrap_err();
    assert!(
        err.to_string()
            .contains("10 values where the model reads 200"),
        "{err}"
    );
}
