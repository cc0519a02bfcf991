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

use super::ExperimentError;
use super::run::{Loaded, Outcome, RunSpec, load, results_of};
use super::runner::{read_json, write_json};
use crate::data::preprocess::Dataset;
use crate::data::split::Case;
use crate::eval::Ranks;
use crate::eval::metrics::rank;
use crate::experiment::results::{
    LlmInfo, MetricSummary, ModelInfo, Results, SeedRanks, SeedTraining, write_results,
};
use crate::llm::generate::ChatTemplate;
use crate::llm::likelihood::{Likelihood, ZeroShotConfig, continuation_log_likelihood};
use crate::llm::llama::Llama;
use crate::llm::tokenizer::BpeTokenizer;
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

/// The language model a zero-shot run reads with: its weights, tokenizer, chat template and
/// name.
struct Reader {
    llm: Llama,
    tok: BpeTokenizer,
    template: ChatTemplate,
    name: String,
}

/// Ranks the sampled test cases (resuming from `RUN/seed-0/partial.json`) and writes
/// `results.json`, `results.md` and `seed-0/ranks.json`.
pub fn run(
    mut spec: ZeroShotSpec,
    run: &Path,
    device: &Device,
    device_label: &str,
    progress: bool,
) -> Result<Results, ExperimentError> {
    let cfg = spec.config.clone();
    check_config(&cfg)?;
    std::fs::create_dir_all(run).map_err(|e| ExperimentError::io(run, e))?;
    let encoder: RunSpec = read_json(&spec.encoder.join("run.json"))
        .map_err(|source| ExperimentError::ItemEncoder { source })?;
    let l = load(&encoder)?;
    let cands = sampled_candidates(&spec, &encoder, &l)?;
    let reader = open_llm(&mut spec, run, device)?;
    let cases = &l.prepared.split.test;
    let order = sample_cases(cases.len(), cfg.max_users, spec.sample_seed);
    eprintln!(
        "zero-shot {} on {}: {} of {} test cases ({}), {} candidates each, last {} plays as text",
        reader.name,
        l.info.name,
        order.len(),
        cases.len(),
        l.protocol.name,
        cands.first().map_or(0, Vec::len),
        cfg.history
    );
    let ranker = Ranker {
        cfg: &cfg,
        d: &l.data,
        cases,
        cands,
        reader: &reader,
        device,
    };
    let dir = run.join("seed-0");
    let partial = ranker.rank_all(&order, &dir, progress)?;
    let ranks = SeedRanks {
        protocol: partial.ranks.clone(),
        ..Default::default()
    };
    write_json(&dir.join("ranks.json"), &ranks)?;
    let model = model_info(&spec, &encoder, &reader.name);
    let outcome = scoring_outcome(&partial, cands.first().map_or(0, Vec::len));
    let results = over_users_results(&l, model, outcome, &partial.ranks, device_label);
    write_results(run, &results)?;
    Ok(results)
}

/// Refuses a prompt with no history or no place for it.
fn check_config(cfg: &ZeroShotConfig) -> Result<(), ExperimentError> {
    if cfg.history == 0 {
        return Err(ExperimentError::setting(
            "history",
            "--history must be at least 1",
        ));
    }
    if !cfg.instruction.contains("{items}") {
        return Err(ExperimentError::setting(
            "instruction",
            "the instruction has no {items}",
        ));
    }
    Ok(())
}

/// The encoder run's candidate lists of the test cases: only a sampled protocol over named
/// tracks has them for a language model to read.
fn sampled_candidates<'a>(
    spec: &ZeroShotSpec,
    encoder: &RunSpec,
    l: &'a Loaded,
) -> Result<&'a [Vec<u32>], ExperimentError> {
    let Some(cands) = l.prepared.test_candidates.as_deref() else {
        return Err(ExperimentError::run(
            &spec.encoder,
            format!(
                "protocol {} ranks the whole catalogue; zero-shot ranking asks the LLM about every candidate, so it needs a sampled protocol (loo-sampled99, temporal-sampled200, ...)",
                l.protocol.name
            ),
        ));
    };
    if !named(&l.data) {
        return Err(ExperimentError::Unnamed {
            data: encoder.data.clone(),
        });
    }
    Ok(cands)
}

/// Refuses a folder that holds a run with other settings, reads the LLM (recording its sha256
/// in `spec`, which is written as `RUN/zeroshot.json`) and loads it onto `device`.
fn open_llm(
    spec: &mut ZeroShotSpec,
    run: &Path,
    device: &Device,
) -> Result<Reader, ExperimentError> {
    let spec_path = run.join("zeroshot.json");
    if let Ok(old) = read_json::<ZeroShotSpec>(&spec_path) {
        spec.llm_sha256 = old.llm_sha256.clone();
        if old != *spec {
            return Err(ExperimentError::OtherSettings {
                run: run.to_path_buf(),
            });
        }
    }
    let file = crate::llm::read_llm(&spec.llm, &spec.llm_sha256)?;
    spec.llm_sha256 = file.sha256.clone();
    write_json(&spec_path, &*spec)?;
    let (llm, _) = Llama::from_gguf(&file.gguf, device).map_err(|e| e.in_file(&spec.llm))?;
    Ok(Reader {
        llm,
        tok: file.tok,
        template: file.template,
        name: file.name,
    })
}

/// The cases to score: all `n`, or a seeded sample of `max` (kept in the split's order).
fn sample_cases(n: usize, max: Option<usize>, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(max) = max.filter(|&m| m < n) {
        let mut rng = Rng::stream(seed, 0x2e50_5a01);
        rng.shuffle(&mut order);
        order.truncate(max);
        order.sort_unstable();
    }
    order
}

/// What ranking a test case reads: the prompt's settings, the encoder run's data, cases and
/// candidates, and the language model.
struct Ranker<'a> {
    cfg: &'a ZeroShotConfig,
    d: &'a Dataset,
    cases: &'a [Case],
    cands: &'a [Vec<u32>],
    reader: &'a Reader,
    device: &'a Device,
}

impl Ranker<'_> {
    /// Ranks the cases of `order` not yet in `dir/partial.json`, writing it at least every 30
    /// seconds and after the last case; returns every case's rank.
    fn rank_all(
        &self,
        order: &[usize],
        dir: &Path,
        progress: bool,
    ) -> Result<Partial, ExperimentError> {
        std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
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
            let c = &self.cases[i];
            partial
                .ranks
                .push(c.user, self.rank_case(c, &self.cands[i]));
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
        Ok(partial)
    }

    /// The rank of case `c`'s positive among its candidates `list` (the positive first), each
    /// scored by the likelihood of its text after the history's prompt.
    fn rank_case(&self, c: &Case, list: &[u32]) -> usize {
        let (d, cfg) = (self.d, self.cfg);
        let text = prompt(cfg, self.reader.template, d, c.history(d));
        let options: Vec<String> = list
            .iter()
            .map(|&t| format!(" {}", track_text(d, t)))
            .collect();
        let refs: Vec<&str> = options.iter().map(String::as_str).collect();
        let ll = continuation_log_likelihood(
            &self.reader.llm,
            &self.reader.tok,
            &text,
            &refs,
            self.device,
        );
        let score = |(s, n): (f64, usize)| match cfg.likelihood {
            Likelihood::Sum => s,
            Likelihood::Mean => s / n.max(1) as f64,
        };
        let scores: Vec<f64> = ll.into_iter().map(score).collect();
        // The list starts with the positive; ties count against it.
        rank(scores[0] as f32, scores[1..].iter().map(|&s| s as f32))
    }
}

/// The zero-shot model: the LLM named `llm_name` over the encoder run's data (whose model and
/// training settings it records).
fn model_info(spec: &ZeroShotSpec, encoder: &RunSpec, llm_name: &str) -> ModelInfo {
    ModelInfo {
        name: format!("zeroshot({llm_name})"),
        config: encoder.model.clone(),
        content: Vec::new(),
        train: encoder.train.clone(),
        llm: Some(LlmInfo {
            name: llm_name.to_string(),
            path: spec.llm.display().to_string(),
            sha256: spec.llm_sha256.clone(),
            encoder: spec.encoder.display().to_string(),
            encoder_seed: 0,
            e4srec: None,
            zero_shot: Some(spec.config.clone()),
        }),
    }
}

/// The ranked cases as one seed's outcome (nothing trained: its "training" is the scoring
/// time), with `candidates` scored per case.
fn scoring_outcome(partial: &Partial, candidates: usize) -> Outcome {
    let n = partial.ranks.len();
    let seconds = partial.seconds.max(1e-9);
    Outcome {
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
        user_items_per_s: (n * candidates) as f64 / seconds,
    }
}

/// The run's results. Nothing is trained, so the interval is over users, not seeds, and only
/// the sampled cases are ranked (no full-catalogue views).
fn over_users_results(
    l: &Loaded,
    model: ModelInfo,
    outcome: Outcome,
    ranks: &Ranks,
    device_label: &str,
) -> Results {
    let n = ranks.len();
    let mut results = results_of(l, model, outcome, device_label, Default::default());
    results.protocol.description = format!(
        "{}; {n} sampled test cases, 95 % CI over users (nothing is trained, so there are no seeds)",
        l.protocol.describe()
    );
    results.protocol.test_cases = n;
    results.protocol.valid_cases = 0;
    results.metrics = over_users(ranks);
    results.metrics_full = Default::default();
    results.metrics_full_unheard = Default::default();
    results
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
