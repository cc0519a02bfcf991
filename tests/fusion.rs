//! Content fusion and completion end to end: the content-only encoder recommends tracks that
//! training never saw, a model that reads completion ratios learns what a skip means, fused
//! models train and resume, `encore train --content ... --fusion ...` reads feature stores and
//! S3-Rec attribute files (clear errors for bad input), and `encore ablate` resumes.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::encore;
use common::training::{dataset, dataset_heard, job, one_at_a_time, quick};

use burn::tensor::Device;
use encore::data::Dataset;
use encore::eval::protocol::{Protocol, prepare};
use encore::features::store::{FeatureStore, Provenance, TrackRef};
use encore::model::ModelConfig;
use encore::model::fusion::{ContentTable, FusionConfig, Strategy};
use encore::train::{TrainJob, rank_cases, train};
use encore::util::rng::Rng;

const GROUPS: usize = 6;
const PER_GROUP: usize = 10;
/// The last two tracks of every group are only ever a test target.
const COLD: usize = 2;

/// Every user listens within one group of tracks (track `t` is in group `t % GROUPS`), in a
/// random order; a user's last play is, for half the users, a track of the group that appears
/// nowhere else in the log.
fn grouped_log(users: usize, len: usize) -> (Dataset, Vec<bool>) {
    let mut rng = Rng::new(7);
    let mut seqs: Vec<Vec<u32>> = Vec::new();
    for u in 0..users {
        let g = u % GROUPS;
        let warm = PER_GROUP - COLD;
        let mut seq: Vec<usize> = (0..len)
            .map(|_| g + GROUPS * rng.below(warm as u64) as usize)
            .collect();
        if u % 2 == 0 {
            let c = warm + (u / GROUPS) % COLD;
            *seq.last_mut().unwrap() = g + GROUPS * c;
        }
        seqs.push(seq.into_iter().map(|t| t as u32).collect());
    }
    let d = dataset(&seqs);
    let cold = d
        .tracks
        .iter()
        .map(|k| k[1..].parse::<usize>().unwrap() / GROUPS >= PER_GROUP - COLD)
        .collect();
    (d, cold)
}

/// Content: the track's group, one-hot, plus a little noise of its own.
fn group_content(d: &Dataset) -> ContentTable {
    let dim = GROUPS + 3;
    let mut values = vec![0.0f32; d.n_tracks() * dim];
    for (i, k) in d.tracks.iter().enumerate() {
        let t: usize = k[1..].parse().unwrap();
        let row = &mut values[i * dim..(i + 1) * dim];
        row[t % GROUPS] = 1.0;
        for (j, v) in row[GROUPS..].iter_mut().enumerate() {
            *v = 0.1 * ((t * 3 + j) as f32).sin();
        }
    }
    ContentTable {
        name: "genre".into(),
        dim,
        values,
        present: vec![true; d.n_tracks()],
        labels: None,
    }
}

fn small(strategy: Option<Strategy>, n_items: usize, content: &[ContentTable]) -> ModelConfig {
    let mut m = ModelConfig::defaults("sasrec", n_items).unwrap();
    m.set("d_model", 32.0).unwrap();
    m.set("d_ff", 64.0).unwrap();
    m.set("max_len", 12.0).unwrap();
    m.set("dropout", 0.1).unwrap();
    m.set_fusion(
        strategy.map(|s| {
            FusionConfig::new(s, content.iter().map(ContentTable::modality_dim).collect())
        }),
    );
    m
}

#[test]
fn the_content_only_encoder_recommends_tracks_never_seen_in_training() {
    let _turn = one_at_a_time();
    let (d, cold) = grouped_log(120, 16);
    let p: Protocol = "loo-full".parse().unwrap();
    let prep = prepare(&d, &p, 0, None).unwrap();
    let cold_cases: Vec<_> = prep
        .split
        .test
        .iter()
        .filter(|c| cold[c.target as usize])
        .cloned()
        .collect();
    assert_eq!(cold_cases.len(), 60);
    // Cold tracks are in no training or validation history.
    for c in &prep.split.test {
        for &t in &d.track[c.history.0 as usize..c.history.1 as usize] {
            assert!(!cold[t as usize]);
        }
    }
    let dev = Device::flex();
    let content = [group_content(&d)];
    let mut hr = Vec::new();
    for s in [None, Some(Strategy::ContentOnly)] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small(s, d.n_tracks(), &content);
        let job = TrainJob {
            content: if s.is_some() { &content } else { &[] },
            ..job(&d, &prep, &cfg, quick(15), 1, dir.path())
        };
        let t = train(&job).unwrap();
        let r = rank_cases(&t.model, &cfg, &d, &cold_cases, None, false, &dev);
        hr.push(r.mean("HR@10").unwrap());
    }
    eprintln!(
        "HR@10 on unseen tracks: id-only {:.3}, content-only {:.3}",
        hr[0], hr[1]
    );
    // Ten tracks per group: content puts the unseen one among them; ids cannot.
    assert!(hr[1] > 0.8, "content-only HR@10 on unseen tracks {}", hr[1]);
    assert!(hr[0] < 0.2, "id-only HR@10 on unseen tracks {}", hr[0]);
}

/// A cyclic s3rec file and its attributes: track `t`'s attributes are `t % 5` and 10.
fn write_cycle(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("Cycle.txt");
    let text: String = (0..30)
        .map(|u| {
            let items: Vec<String> = (0..16)
                .map(|i| ((u * 7 + i) % 60 + 1).to_string())
                .collect();
            format!("{} {}\n", u + 1, items.join(" "))
        })
        .collect();
    std::fs::write(&data, text).unwrap();
    let attrs = dir.join("Cycle_item2attributes.json");
    let map: serde_json::Map<String, serde_json::Value> = (1..=60)
        .map(|t| (t.to_string(), serde_json::json!([t % 5 + 1, 10, 10])))
        .collect();
    std::fs::write(&attrs, serde_json::to_string(&map).unwrap()).unwrap();
    (data, attrs)
}

fn train_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "train",
        "--data",
        data,
        "--format",
        "s3rec",
        "--model",
        "sasrec",
        "--protocol",
        "loo-sampled-20",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--set",
        "d_model=16",
        "--set",
        "max_len=8",
        "--device",
        "cpu",
        "-o",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn train_with_content_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (data, attrs) = write_cycle(dir.path());
    let data = data.to_str().unwrap();
    // A feature store holding an "audio" modality for most tracks (keys are s3rec item ids).
    let store_dir = dir.path().join("features");
    let mut store = FeatureStore::new(
        (1..=60)
            .map(|t| TrackRef {
                id: t.to_string(),
                artist: String::new(),
                title: String::new(),
            })
            .collect(),
    )
    .unwrap();
    store
        .ensure_modality("audio", 4, Provenance::default(), None)
        .unwrap();
    for t in 0..50 {
        let v = [t as f32, 1.0, (t % 3) as f32, -1.0];
        store.set("audio", t, &v).unwrap();
    }
    store.save(&store_dir).unwrap();

    let out = dir.path().join("fused");
    let content_tags = format!("tags={}", attrs.display());
    let content_audio = format!("audio={}", store_dir.display());
    let out_s = out.to_str().unwrap().to_string();
    let args = train_args(
        data,
        &out_s,
        &[
            "--content",
            &content_tags,
            "--content",
            &content_audio,
            "--fusion",
            "gate",
        ],
    );
    let (code, stdout, stderr) = encore(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("# sasrec+gate on Cycle"), "{stdout}");
    assert!(
        stderr.contains("content 'audio': 4 dims, 50 of 60 tracks"),
        "{stderr}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["model"]["name"], "sasrec+gate");
    assert_eq!(r["model"]["config"]["fusion"]["strategy"], "gate");
    let mods = &r["model"]["config"]["fusion"]["modalities"];
    assert_eq!(mods[0]["name"], "tags");
    assert_eq!(mods[0]["dim"], 6, "attributes 1..=5 and 10");
    assert_eq!(mods[1]["dim"], 4);
    assert_eq!(r["model"]["content"][1]["present"], 50);
    // Re-evaluation from the saved models (which carry their content) gives the same metrics.
    let (code, stdout, stderr) = encore(&["eval", &out_s, "--device", "cpu"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(again["metrics"], r["metrics"]);
    // The same command again finds the run finished; other content is refused.
    let (code, _, stderr) = encore(&args);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = encore(&train_args(
        data,
        &out_s,
        &["--content", &content_tags, "--fusion", "gate"],
    ));
    assert_eq!(code, 1);
    assert!(stderr.contains("other settings"), "{stderr}");

    // Completion input and engagement weighting (this log has no durations: all unknown).
    let comp = dir.path().join("completion");
    let comp_s = comp.to_str().unwrap().to_string();
    let (code, stdout, stderr) = encore(&train_args(
        data,
        &comp_s,
        &["--completion", "buckets:5", "--engagement-weight", "0.3"],
    ));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(comp.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["model"]["name"], "sasrec+completion");
    assert_eq!(r["model"]["config"]["completion"]["n"], 5);
    assert!((r["model"]["train"]["engagement_floor"].as_f64().unwrap() - 0.3).abs() < 1e-6);

    // Cold start: only cases whose target never occurs in training, with the floors beside.
    let cold = dir.path().join("cold");
    let cold_s = cold.to_str().unwrap().to_string();
    let mut args = train_args(
        data,
        &cold_s,
        &[
            "--content",
            &content_tags,
            "--fusion",
            "content-only",
            "--cold",
            "0.5",
        ],
    );
    let p = args.iter().position(|a| *a == "loo-sampled-20").unwrap();
    args[p] = "loo-full";
    let (code, stdout, stderr) = encore(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("cold tracks"), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cold.join("results.json")).unwrap()).unwrap();
    let cases = r["protocol"]["test_cases"].as_u64().unwrap();
    assert!(cases > 0 && cases < 30, "{cases} cold cases of 30 users");
    // A track no one trained on has no plays: popularity ranks it last.
    assert_eq!(r["baselines"]["most-popular"]["HR@20"], 0.0);
    assert!(stdout.contains("| most-popular |"), "{stdout}");

    // Bad input: clear errors naming the problem.
    let other = dir.path().join("other");
    let other_s = other.to_str().unwrap().to_string();
    let bad = |extra: &[&str], want: &str| {
        let (code, _, stderr) = encore(&train_args(data, &other_s, extra));
        assert_ne!(code, 0, "{extra:?}");
        assert!(stderr.contains(want), "{extra:?}: {stderr}");
    };
    bad(&["--fusion", "film"], "needs content");
    bad(&["--engagement-weight", "2"], "a weight in [0, 1]");
    bad(&["--completion", "buckets:1"], "number of buckets");
    bad(&["--cold", "0.2"], "cold start needs protocol loo-full");
    bad(&["--content", "tags"], "MODALITY=PATH");
    bad(
        &["--content", &content_tags, "--fusion", "mean"],
        "unknown fusion 'mean'",
    );
    let lyrics = format!("lyrics={}", store_dir.display());
    bad(
        &["--content", &lyrics],
        "no modality 'lyrics' (it has: audio)",
    );
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"1\": [1, 2],\n \"2\": [3,]}").unwrap();
    let broken_arg = format!("tags={}", broken.display());
    bad(&["--content", &broken_arg], "broken.json: line 2");
    let elsewhere = dir.path().join("elsewhere.json");
    std::fs::write(&elsewhere, "{\"900\": [1]}").unwrap();
    let elsewhere_arg = format!("tags={}", elsewhere.display());
    bad(
        &["--content", &elsewhere_arg],
        "covers none of the dataset's 60 tracks",
    );
}

#[test]
fn a_two_cell_ablation_resumes_and_its_table_matches_its_json() {
    let dir = tempfile::tempdir().unwrap();
    write_cycle(dir.path());
    let config = |fusions: &str| {
        format!(
            r#"name = "cycle"
data = "Cycle.txt"
format = "s3rec"
protocol = "loo-sampled-20"
seeds = 2
backbones = ["sasrec"]
fusions = [{fusions}]
[content]
tags = "Cycle_item2attributes.json"
[train]
epochs = 2
batch_size = 16
[model.sasrec]
d_model = 16
max_len = 8
"#
        )
    };
    let cfg = dir.path().join("ablation.toml");
    std::fs::write(&cfg, config(r#""concat""#)).unwrap();
    let out = dir.path().join("out");
    let args = [
        "ablate",
        "--config",
        cfg.to_str().unwrap(),
        "--device",
        "cpu",
        "-o",
        out.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = encore(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("ablation.json")).unwrap()).unwrap()
    };
    let a = read();
    let cells = a["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    assert_eq!(cells[0]["cell"]["key"], "sasrec-id");
    assert_eq!(cells[1]["cell"]["key"], "sasrec-concat-tags");
    assert!(cells[0].get("lift").is_none(), "the baseline has no lift");
    assert_eq!(cells[1]["lift"].as_array().unwrap().len(), 6);
    // Every number of the markdown table is the JSON's.
    let md = std::fs::read_to_string(out.join("ablation.md")).unwrap();
    assert_eq!(stdout.lines().next(), md.lines().next());
    for c in cells {
        let key = c["cell"]["key"].as_str().unwrap();
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {key} |")))
            .unwrap_or_else(|| panic!("no row for {key} in\n{md}"));
        let cols: Vec<&str> = row.split('|').map(str::trim).collect();
        for (i, m) in encore::experiment::ablate::METRICS.iter().enumerate() {
            let v = &c["metrics"][m];
            let half = (v["ci95"][1].as_f64().unwrap() - v["ci95"][0].as_f64().unwrap()) / 2.0;
            let want = format!("{:.4} ±{:.4}", v["mean"].as_f64().unwrap(), half);
            assert_eq!(cols[3 + i], want, "{key} {m}");
        }
        if let Some(l) = c["lift"].as_array() {
            let ndcg = l.iter().find(|x| x["metric"] == "NDCG@10").unwrap();
            let want = format!("{:+.4} [", ndcg["diff"].as_f64().unwrap());
            assert!(cols[10].starts_with(&want), "{} vs {want}", cols[10]);
        } else {
            assert_eq!(cols[10], "(baseline)");
        }
    }
    assert!(
        std::fs::read_to_string(out.join("ablation.svg"))
            .unwrap()
            .contains("sasrec-concat-tags")
    );
    // Again: both cells are finished and skipped, the table is the same.
    let (code, _, stderr) = encore(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("sasrec-id: finished, skipped"), "{stderr}");
    assert!(
        stderr.contains("sasrec-concat-tags: finished, skipped"),
        "{stderr}"
    );
    assert_eq!(read()["cells"], a["cells"]);
    // A third fusion: only its cell trains.
    std::fs::write(&cfg, config(r#""concat", "film""#)).unwrap();
    let (code, _, stderr) = encore(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("sasrec-concat-tags: finished, skipped"),
        "{stderr}"
    );
    assert!(!stderr.contains("sasrec-film-tags: finished"), "{stderr}");
    assert_eq!(read()["cells"].as_array().unwrap().len(), 3);
    // A configuration error names the file and line.
    std::fs::write(
        &cfg,
        config(r#""concat""#).replace("seeds = 2", "seeds = \"two\""),
    )
    .unwrap();
    let (code, _, stderr) = encore(&args);
    assert_eq!(code, 1);
    assert!(stderr.contains("ablation.toml: line 5"), "{stderr}");
}

/// After a track `a` in 0..10, a full listen leads to `a + 10` and a skip to `a + 20`; every
/// user's last play follows such a choice.
fn skip_log(users: usize, pairs: usize) -> Dataset {
    let mut rng = Rng::new(11);
    let seqs: Vec<Vec<(u32, Option<f32>)>> = (0..users)
        .map(|_| {
            let mut seq = Vec::with_capacity(2 * pairs);
            for _ in 0..pairs {
                let a = rng.below(10) as u32;
                let skipped = rng.below(2) == 1;
                let next = if skipped { a + 20 } else { a + 10 };
                seq.push((a, Some(if skipped { 5.0 } else { 200.0 })));
                seq.push((next, Some(200.0)));
            }
            seq
        })
        .collect();
    dataset_heard(&seqs, Some(200.0))
}

#[test]
fn a_model_that_reads_completion_learns_what_a_skip_means() {
    let _turn = one_at_a_time();
    use encore::model::completion::CompletionInput;
    let d = skip_log(150, 10);
    assert!(d.completion.iter().any(|&c| c < 0.1) && d.completion.iter().any(|&c| c > 0.9));
    let p: Protocol = "loo-full".parse().unwrap();
    let prep = prepare(&d, &p, 0, None).unwrap();
    let dev = Device::flex();
    let mut hr = Vec::new();
    for c in [
        None,
        Some(CompletionInput::Buckets { n: 4 }),
        Some(CompletionInput::Scalar),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = small(None, d.n_tracks(), &[]);
        cfg.set_completion(c);
        let t = train(&job(&d, &prep, &cfg, quick(30), 2, dir.path())).unwrap();
        let r = rank_cases(&t.model, &cfg, &d, &prep.split.test, None, false, &dev);
        hr.push(r.mean("HR@1").unwrap());
    }
    eprintln!(
        "HR@1: ids {:.3}, completion buckets {:.3}, scalar {:.3}",
        hr[0], hr[1], hr[2]
    );
    // Without completion the two successors are a coin toss.
    assert!(hr[0] < 0.7, "id-only HR@1 {}", hr[0]);
    assert!(hr[1] > 0.9, "buckets HR@1 {}", hr[1]);
    // The scalar input learns it too, more slowly (0.89 after these 30 epochs).
    assert!(hr[2] > 0.8, "scalar HR@1 {}", hr[2]);
}
