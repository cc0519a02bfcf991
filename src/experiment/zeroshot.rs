//! Zero-shot LLM ranking (`encore train --model zeroshot --llm GGUF --item-encoder RUN`): no
//! trained part at all. Each test case's history is written out as text (one "Title by Artist"
//! per line, the most recent `history` plays), and each candidate is scored by the
//! log-likelihood the LLM gives its text as the answer ([`continuation_log_likelihood`]),
//! summed over its tokens or (`mean`) per token. Nothing is trained, so nothing untrained ever
//! scores: the ranking is the language model's own.
//!
//! The run borrows the data, protocol, split and candidate lists of a finished Encore run, so
//! `encore compare RUN ZEROSHOT` pairs the two user by user. Only sampled protocols are
//! accepted (a full-catalogue ranking would ask the LLM about every track for every user), and
//! the tracks need names (S3-Rec's HetRec files have none).
//!
//! Ranking one case costs one pass over the prompt plus one short pass per candidate, so a
//! subset of the test users can be drawn (`--max-users`, seeded); the case ranks are written
//! after every case (`seed-0/partial.json`), and a killed run resumes there.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::run::{Outcome, RunSpec, load, results_of};
use super::runner::{read_json, write_json};
use crate::data::preprocess::Dataset;
use crate::eval::Ranks;
use crate::eval::metrics::rank;
use crate::experiment::results::{
    LlmInfo, MetricSummary, ModelInfo, Results, SeedRanks, SeedTraining, write_results,
};
use crate::llm::likelihood::{Likelihood, ZeroShotConfig, continuation_log_likelihood};
use crate::llm::llama::Llama;
use crate::util::rng::Rng;

/// How a zero-shot run was asked for (`RUN/zeroshot.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZeroShotSpec {
    pub llm: PathBuf,
    pub llm_sha256: String,
    /// The run whose data, protocol, split and candidates are used.
    pub encoder: PathBuf,
    pub config: ZeroShotConfig,
    /// Seed of the user sample.
    pub sample_seed: u64,
}

/// Ranks written after every case, so a killed run resumes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Partial {
    ranks: Ranks,
    seconds: f64,
}

/// "Title by Artist", or the title alone when the track has no artist.
pub fn track_text(d: &Dataset, t: u32) -> String {
    let title = d.track_name.get(t);
    let artist = d.artist_name.get(d.track_artist[t as usize]);
    if artist.is_empty() {
        title.to_string()
    } else {
        format!("{title} by {artist}")
    }
}

/// Whether the dataset's tracks carry names (a reader without names uses the id as the name).
fn named(d: &Dataset) -> bool {
    (0..d.n_tracks() as u32).any(|t| d.track_name.get(t) != d.tracks.get(t))
}

/// The text prompt for one history (the chat template's user turn, then the response start).
pub fn prompt(
    cfg: &ZeroShotConfig,
    template: crate::llm::generate::ChatTemplate,
    d: &Dataset,
    history: &[u32],
) -> String {
    let recent = &history[history.len().saturating_sub(cfg.history)..];
    let items: Vec<String> = recent
        .iter()
        .map(|&t| format!("- {}", track_text(d, t)))
        .collect();
    template.render(&[(
        "user",
        &cfg.instruction.replace("{items}", &items.join("\n")),
    )]) + &cfg.response
}

/// Ranks the sampled test cases (resuming from `RUN/seed-0/partial.json`) and writes
/// `results.json`, `results.md` and `seed-0/ranks.json`.
pub fn run(
    mut spec: ZeroShotSpec,
    run: &Path,
    device: &Device,
    device_label: &str,
    progress: bool,
) -> Result<Results, String> {
    let cfg = spec.config.clone();
    if cfg.history == 0 {
        return Err("--history must be at least 1".into());
    }
    if !cfg.instruction.contains("{items}") {
        return Err("the instruction has no {items}".into());
    }
    std::fs::create_dir_all(run).map_err(|e| format!("{}: {e}", run.display()))?;
    let spec_path = run.join("zeroshot.json");
    let encoder: RunSpec = read_json(&spec.encoder.join("run.json"))
        .map_err(|e| format!("--item-encoder: {e} (a folder written by encore train)"))?;
    let l = load(&encoder)?;
    let d = &l.data;
    let Some(cands) = l.prepared.test_candidates.as_deref() else {
        return Err(format!(
            "{}: protocol {} ranks the whole catalogue; zero-shot ranking asks the LLM about every candidate, so it needs a sampled protocol (loo-sampled99, temporal-sampled200, ...)",
            spec.encoder.display(),
            l.protocol.name
        ));
    };
    if !named(d) {
        return Err(format!(
            "{}: the tracks have no names (every name is its id), so there is nothing for a language model to read; use a log with titles (lastfm1k, spotify, listenbrainz, recbole with a .item file)",
            encoder.data.display()
        ));
    }
    if let Ok(old) = read_json::<ZeroShotSpec>(&spec_path) {
        spec.llm_sha256 = old.llm_sha256.clone();
        if old != spec {
            return Err(format!(
                "{} holds a run with other settings; write to a new folder (-o) or remove it",
                run.display()
            ));
        }
    }
    let file = crate::llm::read_llm(&spec.llm, &spec.llm_sha256)?;
    spec.llm_sha256 = file.sha256.clone();
    write_json(&spec_path, &spec)?;
    let (llm, _) =
        Llama::from_gguf(&file.gguf, device).map_err(|e| format!("{}: {e}", spec.llm.display()))?;
    let (tok, template) = (file.tok, file.template);

    // The cases to score: all, or a seeded sample (kept in the split's order).
    let cases = &l.prepared.split.test;
    let mut order: Vec<usize> = (0..cases.len()).collect();
    if let Some(n) = cfg.max_users.filter(|&n| n < cases.len()) {
        let mut rng = Rng::stream(spec.sample_seed, 0x2e50_5a01);
        rng.shuffle(&mut order);
        order.truncate(n);
        order.sort_unstable();
    }
    eprintln!(
        "zero-shot {} on {}: {} of {} test cases ({}), {} candidates each, last {} plays as text",
        file.name,
        l.info.name,
        order.len(),
        cases.len(),
        l.protocol.name,
        cands.first().map_or(0, Vec::len),
        cfg.history
    );
    let dir = run.join("seed-0");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let partial_path = dir.join("partial.json");
    let mut partial: Partial = read_json(&partial_path).unwrap_or_default();
    if !partial.ranks.is_empty() {
        eprintln!("resuming after {} cases", partial.ranks.len());
    }
    let bar = crate::util::progress::progress_bar(progress, order.len() as u64);
    if let Some(b) = &bar {
        b.set_prefix("zero-shot");
        b.set_position(partial.ranks.len() as u64);
    }
    let mut since_save = Instant::now();
    for &i in &order[partial.ranks.len()..] {
        let t0 = Instant::now();
        let c = &cases[i];
        let list = &cands[i];
        let text = prompt(&cfg, template, d, c.history(d));
        let options: Vec<String> = list
            .iter()
            .map(|&t| format!(" {}", track_text(d, t)))
            .collect();
        let refs: Vec<&str> = options.iter().map(String::as_str).collect();
        let ll = continuation_log_likelihood(&llm, &tok, &text, &refs, device);
        let score = |(s, n): (f64, usize)| match cfg.likelihood {
            Likelihood::Sum => s,
            Likelihood::Mean => s / n.max(1) as f64,
        };
        let scores: Vec<f64> = ll.into_iter().map(score).collect();
        // The list starts with the positive; ties count against it.
        partial.ranks.push(
            c.user,
            rank(scores[0] as f32, scores[1..].iter().map(|&s| s as f32)),
        );
        partial.seconds += t0.elapsed().as_secs_f64();
        if since_save.elapsed().as_secs() >= 30 || partial.ranks.len() == order.len() {
            write_json(&partial_path, &partial)?;
            since_save = Instant::now();
        }
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(format!(
                "HR@10 {:.3}",
                partial.ranks.mean("HR@10").unwrap_or(0.0)
            ));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let ranks = SeedRanks {
        protocol: partial.ranks.clone(),
        ..Default::default()
    };
    write_json(&dir.join("ranks.json"), &ranks)?;
    let n = partial.ranks.len();
    let model = ModelInfo {
        name: format!("zeroshot({})", file.name),
        config: encoder.model.clone(),
        content: Vec::new(),
        train: encoder.train.clone(),
        llm: Some(LlmInfo {
            name: file.name.clone(),
            path: spec.llm.display().to_string(),
            sha256: spec.llm_sha256.clone(),
            encoder: spec.encoder.display().to_string(),
            encoder_seed: 0,
            e4srec: None,
            zero_shot: Some(cfg.clone()),
        }),
    };
    let seconds = partial.seconds.max(1e-9);
    let outcome = Outcome {
        seeds: vec![0],
        training: vec![SeedTraining {
            seed: 0,
            best_epoch: 0,
            best_valid: 0.0,
            epochs: 0,
            seconds: partial.seconds,
            seq_per_s: n as f64 / seconds,
            targets_per_s: n as f64 / seconds,
            curve: Vec::new(),
        }],
        ranks: Vec::new(),
        user_items_per_s: (n * cands.first().map_or(0, Vec::len)) as f64 / seconds,
    };
    // Nothing is trained, so the interval is over users, not seeds, and only the sampled
    // cases are ranked (no full-catalogue views).
    let mut results = results_of(&l, model, outcome, device_label, Default::default());
    results.protocol.description = format!(
        "{}; {n} sampled test cases, 95 % CI over users (nothing is trained, so there are no seeds)",
        l.protocol.describe()
    );
    results.protocol.test_cases = n;
    results.protocol.valid_cases = 0;
    results.metrics = over_users(&partial.ranks);
    results.metrics_full = Default::default();
    results.metrics_full_unheard = Default::default();
    write_results(run, &results).map_err(|e| format!("{}: {e}", run.display()))?;
    Ok(results)
}

/// Every metric's mean over the cases, with a normal-approximation 95 % interval over users.
fn over_users(r: &Ranks) -> std::collections::BTreeMap<String, MetricSummary> {
    Ranks::metric_names()
        .into_iter()
        .map(|name| {
            let v = r.values(&name).expect("known metric");
            let n = v.len() as f64;
            let m = v.iter().sum::<f64>() / n.max(1.0);
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            let half = 1.96 * (var / n.max(1.0)).sqrt();
            let s = MetricSummary {
                mean: m,
                ci95: [m - half, m + half],
                per_seed: vec![m],
            };
            (name, s)
        })
        .collect()
}
