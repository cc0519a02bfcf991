//! Training on flex: every backbone learns a deterministic pattern, checkpoints round-trip, a
//! killed run resumes to the same result, and `encore train | eval | compare` work end to end.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::encore;
use common::training::{dataset, job, one_at_a_time, quick};

use burn::tensor::Device;
use encore::eval::protocol::{Protocol, prepare};
use encore::model::{MODEL_NAMES, ModelConfig};
use encore::train::{TrainConfig, TrainJob, load_model, rank_cases, train};

/// Users walk a fixed cycle over `n_items` tracks, each from its own starting point.
fn cyclic_sequences(users: usize, len: usize, n_items: usize) -> Vec<Vec<u32>> {
    (0..users)
        .map(|u| (0..len).map(|i| ((u * 7 + i) % n_items) as u32).collect())
        .collect()
}

fn small(name: &str, n_items: usize) -> ModelConfig {
    let mut m = ModelConfig::defaults(name, n_items).unwrap();
    m.set("d_model", 32.0).unwrap();
    m.set("max_len", 12.0).unwrap();
    if name != "gru4rec" {
        m.set("d_ff", 64.0).unwrap();
    } else {
        m.set("d_hidden", 32.0).unwrap();
    }
    m.set("dropout", 0.1).unwrap();
    m
}

#[test]
fn every_backbone_learns_a_cycle() {
    let _turn = one_at_a_time();
    let d = dataset(&cyclic_sequences(40, 24, 15));
    let p: Protocol = "loo-full".parse().unwrap();
    let prep = prepare(&d, &p, 0, None).unwrap();
    let dev = Device::flex();
    for name in MODEL_NAMES {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small(name, d.n_tracks());
        let epochs = if name == "bert4rec" { 80 } else { 20 };
        let t = train(&job(&d, &prep, &cfg, quick(epochs), 1, dir.path())).unwrap();
        let r = rank_cases(&t.model, &cfg, &d, &prep.split.test, None, false, &dev);
        let hr1 = r.mean("HR@1").unwrap();
        assert!(
            hr1 > 0.95,
            "{name}: HR@1 {hr1} after {} epochs",
            t.curve.len()
        );
        assert!(
            t.curve.first().unwrap().loss > t.curve.last().unwrap().loss,
            "{name}: loss falls"
        );
    }
}

#[test]
fn losses_train_and_checkpoints_round_trip() {
    let _turn = one_at_a_time();
    let d = dataset(&cyclic_sequences(30, 20, 40));
    let p: Protocol = "loo-sampled-5".parse().unwrap();
    let prep = prepare(&d, &p, 0, None).unwrap();
    let dev = Device::flex();
    for loss in ["sampled-softmax:6", "bce:2"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small("sasrec", d.n_tracks());
        let t = TrainConfig {
            loss: loss.parse().unwrap(),
            ..quick(25)
        };
        let t = train(&job(&d, &prep, &cfg, t, 3, dir.path())).unwrap();
        let cands = prep.test_candidates.as_deref();
        let r = rank_cases(&t.model, &cfg, &d, &prep.split.test, cands, false, &dev);
        assert!(
            r.mean("HR@1").unwrap() > 0.9,
            "{loss}: {:?}",
            r.mean("HR@1")
        );
        // Save, load, score again: identical scores.
        let path = dir.path().join("m.bpk");
        burn::module::Module::save_file(t.model.clone(), &path).unwrap();
        let back = load_model(&cfg, &path, &dev).unwrap();
        let h: [&[u32]; 2] = [&[1, 2, 3], &[5]];
        let a: Vec<f32> = t
            .model
            .score_all(t.model.history_state(&h, 12, &dev))
            .into_data()
            .try_to_vec()
            .unwrap();
        let b: Vec<f32> = back
            .score_all(back.history_state(&h, 12, &dev))
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(a, b, "{loss}");
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_result() {
    let _turn = one_at_a_time();
    let d = dataset(&cyclic_sequences(24, 18, 10));
    let p: Protocol = "loo-full".parse().unwrap();
    let prep = prepare(&d, &p, 0, None).unwrap();
    let dev = Device::flex();
    let cfg = small("sasrec", d.n_tracks());
    let job_at = |dir: &std::path::Path, stop_after| TrainJob {
        stop_after,
        ..job(&d, &prep, &cfg, quick(6), 9, dir)
    };
    let whole = tempfile::tempdir().unwrap();
    let a = train(&job_at(whole.path(), None)).unwrap();
    let parts = tempfile::tempdir().unwrap();
    let first = train(&job_at(parts.path(), Some(2))).unwrap();
    assert!(!first.finished);
    assert_eq!(first.curve.len(), 2);
    // A kill between the checkpoint's two renames leaves only ckpt.old: still resumable.
    std::fs::rename(parts.path().join("ckpt"), parts.path().join("ckpt.old")).unwrap();
    let b = train(&job_at(parts.path(), None)).unwrap();
    assert!(b.finished);
    let losses = |t: &encore::train::Trained| t.curve.iter().map(|e| e.loss).collect::<Vec<_>>();
    assert_eq!(losses(&a), losses(&b));
    assert_eq!(a.best_epoch, b.best_epoch);
    let ra = rank_cases(&a.model, &cfg, &d, &prep.split.test, None, false, &dev);
    let rb = rank_cases(&b.model, &cfg, &d, &prep.split.test, None, false, &dev);
    assert_eq!(ra, rb);
    // A checkpoint of another configuration is refused, not silently reused.
    let other = TrainJob {
        seed: 10,
        ..job_at(parts.path(), None)
    };
    let err = train(&other).err().expect("refused").to_string();
    assert!(err.contains("different run"), "{err}");
}

#[test]
fn train_eval_and_compare_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("Cycle.txt");
    let seqs = cyclic_sequences(30, 16, 150);
    let text: String = seqs
        .iter()
        .enumerate()
        .map(|(u, s)| {
            let items: Vec<String> = s.iter().map(|t| (t + 1).to_string()).collect();
            format!("{} {}\n", u + 1, items.join(" "))
        })
        .collect();
    std::fs::write(&data, text).unwrap();
    let run = |model: &str, out: &str, jobs: &str| {
        let out = dir.path().join(out);
        let args = [
            "train",
            "--data",
            data.to_str().unwrap(),
            "--format",
            "s3rec",
            "--model",
            model,
            "--protocol",
            "loo-sampled-20",
            "--seeds",
            "2",
            "--epochs",
            "4",
            "--batch-size",
            "16",
            "--set",
            "d_model=16",
            "--set",
            "max_len=8",
            "--device",
            "cpu",
            "--jobs",
            jobs,
            "-o",
            out.to_str().unwrap(),
        ];
        let (code, stdout, stderr) = encore(&args);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stdout.contains("| NDCG@10 |"), "{stdout}");
        out
    };
    let a = run("gru4rec", "a", "1");
    // Seeds in two child processes at once.
    let b = run("sasrec", "b", "2");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["dataset"]["users"], 30);
    assert_eq!(r["dataset"]["items"], 150);
    assert_eq!(r["protocol"]["name"], "loo-sampled-20");
    assert_eq!(r["model"]["config"]["name"], "gru4rec");
    assert_eq!(r["seeds"].as_array().unwrap().len(), 2);
    let hr = &r["metrics"]["HR@10"];
    assert_eq!(hr["per_seed"].as_array().unwrap().len(), 2);
    let (lo, mean, hi) = (
        hr["ci95"][0].as_f64().unwrap(),
        hr["mean"].as_f64().unwrap(),
        hr["ci95"][1].as_f64().unwrap(),
    );
    assert!(lo <= mean && mean <= hi);
    assert!(r["metrics_full_unheard"]["NDCG@10"]["mean"].is_number());
    assert!(
        std::fs::read_to_string(a.join("curves.svg"))
            .unwrap()
            .contains("<polyline")
    );
    // Re-evaluation from the saved models gives the same metrics.
    let (code, stdout, stderr) = encore(&["eval", a.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("scores per second"), "{stdout}");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("results.json")).unwrap()).unwrap();
    assert_eq!(again["metrics"], r["metrics"]);
    // Training again into the same folder resumes (nothing to do) and agrees.
    run("gru4rec", "a", "1");
    let (code, stdout, stderr) = encore(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--metric",
        "NDCG@10",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("| NDCG@10 | 30 |"), "{stdout}");
    // A folder holding another run is refused.
    let (code, _, stderr) = encore(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "s3rec",
        "--model",
        "bert4rec",
        "--protocol",
        "loo-sampled-20",
        "--epochs",
        "1",
        "-o",
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("other settings"), "{stderr}");
}

/// S3-Rec's HetRec Last.fm files and its published negatives, where the workspace has them: the
/// protocol maps every user's line of negatives onto the split, positive first, never a track the
/// user played, and trains on all but each user's last two plays.
#[test]
fn hetrec_loo_sampled99_uses_the_published_negatives() {
    let dirs = [
        std::env::var_os("ENCORE_SHARED_DATA").map(std::path::PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")),
    ];
    let Some(dir) = dirs
        .into_iter()
        .flatten()
        .map(|d| d.join("lastfm-hetrec-s3rec"))
        .find(|d| d.exists())
    else {
        eprintln!("skipped: no shared/data/lastfm-hetrec-s3rec (set ENCORE_SHARED_DATA)");
        return;
    };
    let spec = encore::experiment::run::RunSpec {
        data: dir.join("LastFM.txt"),
        format: "s3rec".into(),
        preset: "none".into(),
        protocol: "loo-sampled99".into(),
        samples: Some(dir.join("LastFM_sample.txt")),
        model: ModelConfig::defaults("sasrec", 0).unwrap(),
        content: vec![],
        train: TrainConfig::default(),
        seeds: vec![0],
        split_seed: 0,
        cold: None,
    };
    let l = encore::experiment::run::load(&spec).unwrap();
    let d = &l.data;
    assert_eq!(
        (d.n_users(), d.n_tracks(), d.n_plays()),
        (1090, 3646, 52551)
    );
    let test = &l.prepared.split.test;
    let cands = l.prepared.test_candidates.as_ref().unwrap();
    assert_eq!(test.len(), 1090);
    let text = std::fs::read_to_string(dir.join("LastFM.txt")).unwrap();
    let last: std::collections::HashMap<&str, &str> = text
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap(), f.last().unwrap())
        })
        .collect();
    for (c, list) in test.iter().zip(cands) {
        let user = d.users.get(c.user);
        assert_eq!(
            d.tracks.get(c.target),
            last[user],
            "user {user}: the last play is the target"
        );
        assert_eq!(list.len(), 100);
        assert_eq!(list[0], c.target);
        let mut s = list.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 100, "user {user}: distinct candidates");
        let played = d.sequence(c.user);
        assert!(list[1..].iter().all(|t| !played.contains(t)), "user {user}");
        let r = d.user_range(c.user);
        assert_eq!(l.prepared.fit_end[c.user as usize] as usize, r.end - 2);
    }
}
