//! Training and evaluating E4SRec (`encore train --model e4srec --llm GGUF --item-encoder RUN`).
//!
//! The item encoder is a finished Encore run (SASRec, BERT4Rec or GRU4Rec, id-only or fused):
//! E4SRec uses its data, protocol, split and candidates exactly, and its best model's item table
//! (for one of its seeds) as the frozen item representation, so both are scored on the same
//! cases and `encore compare` pairs them user by user. The LLM is a GGUF file (its sha256 is
//! recorded).
//!
//! Each epoch draws one target per user from the user's training plays (a uniformly chosen
//! position; its history is everything before it), trains the LoRA adapters, projection and
//! head with full-softmax cross-entropy and AdamW, and scores the validation cases; the best
//! epoch by the validation metric is kept, with early stopping. After every epoch the trained
//! tensors and the state are written (temporary file, then rename), and a killed run resumes from
//! the last finished epoch; the optimiser's moments restart there (they are not saved).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::ExperimentError;
use super::run::{Loaded, Outcome, RunSpec, floors, load, results_of, scorer_test_ranks};
use super::runner::{Execution, read_json, report_seed, seed_dir, write_json};
use crate::eval::e4srec::E4SRecScorer;
use crate::eval::{Ranks, evaluate};
use crate::experiment::results::{LlmInfo, ModelInfo, Results, SeedTraining, write_results};
use crate::llm::gguf::Gguf;
use crate::llm::llama::Llama;
use crate::model::e4srec::{
    E4SRec, E4SRecConfig, PromptText, Signal, Signals, trained_from_bytes, trained_to_bytes,
};
use crate::train::content::ContentSource;
use crate::train::{EpochLog, TrainConfig, load_model, training_completions, training_sequences};
use crate::util::rng::Rng;

/// The file in an E4SRec run's folder that records how it was asked for.
pub const SPEC_FILE: &str = "e4srec.json";

/// How an E4SRec run was asked for (`RUN/e4srec.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct E4SRecSpec {
    /// The LLM (GGUF) and its sha256.
    pub llm: PathBuf,
    pub llm_sha256: String,
    /// The item encoder's run folder and the seed whose best model gives the item table.
    pub encoder: PathBuf,
    pub encoder_seed: u64,
    pub config: E4SRecConfig,
    pub train: TrainConfig,
    pub seeds: Vec<u64>,
    /// Where the tags signal comes from (a content modality: `mgphot=STORE`), when it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_from: Option<ContentSource>,
}

/// What `RUN/seed-K/state.json` records after each epoch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    epoch: usize,
    best_epoch: usize,
    best_valid: f64,
    finished: bool,
    curve: Vec<EpochLog>,
}

/// The loaded pieces every seed shares.
pub struct E4SRecSetup {
    pub encoder: RunSpec,
    pub loaded: Loaded,
    /// `[n_items, item_dim]`, the encoder's output table.
    pub items: Tensor<2>,
    /// The LLM's file, parsed once; each seed dequantizes its weights onto its device.
    pub gguf: Gguf,
    pub prompt: (Vec<u32>, Vec<u32>),
    pub llm_name: String,
    /// What the prompt's signals read (text pieces, tag table).
    pub signals: Signals,
    /// Each item's tag words (empty where it has none) when tags are text: what the bundle
    /// records.
    pub tag_words: Vec<String>,
}

impl E4SRecSetup {
    /// `spec`'s E4SRec over this LLM, item table and signals, with the trained `parts` restored
    /// (a checkpoint's, [`load_trained`]).
    pub fn model(
        &self,
        spec: &E4SRecSpec,
        parts: &BTreeMap<String, Tensor<2>>,
        device: &Device,
    ) -> Result<E4SRec, ExperimentError> {
        Ok(spec
            .config
            .init(
                load_llm(self, &spec.llm, device)?,
                self.items.clone(),
                (&self.prompt.0, &self.prompt.1),
                self.signals.clone(),
                device,
            )?
            .load_trained(parts)?)
    }

    /// The signals with the tag table on `device`.
    pub fn signals_on(&self, device: &Device) -> Signals {
        Signals {
            text: self.signals.text.clone(),
            tags: self
                .signals
                .tags
                .as_ref()
                .map(|t| Tensor::from_data(t.clone().into_data(), device)),
        }
    }
}

/// A track's tag words from its vector `v` of a labelled modality: the `count` strongest
/// dimensions above 0, strongest first, as MGPHot's readable tags (`Tempo High`, `Minor`) for
/// the `mgphot` modality and as the labels themselves otherwise.
pub fn tag_words(modality: &str, labels: &[String], v: &[f32], count: usize) -> String {
    let mut idx: Vec<usize> = (0..v.len()).filter(|&i| v[i] > 0.0).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    let genes = (modality == "mgphot" && v.len() == crate::features::tags::MGPHOT_DIM)
        .then(crate::tagging::schema::genes);
    idx.iter()
        .take(count)
        .filter_map(|&i| match &genes {
            Some(g) => crate::tagging::schema::tag(&g[i], v[i]),
            None => labels.get(i).cloned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tag table (`[n_items, dim]`, zero rows where absent) and, when tags are text, each
/// item's words, from `spec.tags_from`.
fn load_tags(
    spec: &E4SRecSpec,
    d: &crate::data::Dataset,
    device: &Device,
) -> Result<(Option<Tensor<2>>, Vec<String>), ExperimentError> {
    let cfg = &spec.config;
    let src = match (cfg.tags, &spec.tags_from) {
        (Signal::Off, None) => return Ok((None, Vec::new())),
        (Signal::Off, Some(_)) => {
            return Err(ExperimentError::setting(
                "prompt_tags_from",
                "--prompt-tags-from is given but --prompt-tags is off",
            ));
        }
        (_, None) => {
            return Err(ExperimentError::setting(
                "prompt_tags",
                format!(
                    "--prompt-tags {} needs --prompt-tags-from MODALITY=STORE (e.g. mgphot=features/)",
                    cfg.tags
                ),
            ));
        }
        (_, Some(src)) => src,
    };
    let table = crate::train::content::load_content(src, d)?;
    let n = table.n_items();
    let words = if cfg.tags == Signal::Text {
        let labels = table
            .labels
            .as_ref()
            .ok_or_else(|| ExperimentError::NoLabels {
                path: src.path.clone(),
                modality: src.name.clone(),
            })?;
        (0..n)
            .map(|t| {
                if table.present[t] {
                    tag_words(
                        &src.name,
                        labels,
                        &table.values[t * table.dim..(t + 1) * table.dim],
                        cfg.tag_count,
                    )
                } else {
                    String::new()
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let t = (cfg.tags == Signal::Embed).then(|| {
        Tensor::from_data(
            TensorData::new(table.values.clone(), [n, table.dim]),
            device,
        )
    });
    Ok((t, words))
}

fn load_llm(p: &E4SRecSetup, path: &Path, device: &Device) -> Result<Llama, ExperimentError> {
    let (m, _) = Llama::from_gguf(&p.gguf, device).map_err(|e| e.in_file(path))?;
    Ok(m)
}

/// Refuses training settings E4SRec cannot train with (as the sequence models' training loop
/// does): no epochs, empty batches, validation never due, an unknown validation metric.
pub fn check_train(t: &TrainConfig) -> Result<(), ExperimentError> {
    if t.batch_size == 0 || t.epochs == 0 || t.eval_every == 0 {
        return Err(ExperimentError::setting(
            "train",
            "epochs, batch size and eval-every must be positive",
        ));
    }
    if Ranks::default().values(&t.valid_metric).is_none() {
        return Err(ExperimentError::setting(
            "valid_metric",
            format!(
                "unknown validation metric '{}' (e.g. NDCG@10, HR@10, MRR)",
                t.valid_metric
            ),
        ));
    }
    Ok(())
}

/// Loads the encoder run's data and item table and the LLM's prompt tokens; checks the spec.
pub fn prepare(spec: &mut E4SRecSpec, device: &Device) -> Result<E4SRecSetup, ExperimentError> {
    let encoder: RunSpec = read_json(&spec.encoder.join("run.json"))
        .map_err(|source| ExperimentError::ItemEncoder { source })?;
    let best = seed_dir(&spec.encoder, spec.encoder_seed).join("best.bpk");
    if !best.exists() {
        return Err(ExperimentError::Seed {
            reason: format!(
                "no trained model for seed {} (finish that run, or pick another --encoder-seed)",
                spec.encoder_seed
            ),
            path: best,
            seed: spec.encoder_seed,
        });
    }
    let loaded = load(&encoder)?;
    let enc = load_model(&encoder.model, &best, device)?;
    let items = enc.item_table_from(enc.rows().as_ref());
    let llm = crate::llm::read_llm(&spec.llm, &spec.llm_sha256)?;
    spec.llm_sha256 = llm.sha256;
    let (g, tok, template, llm_name) = (llm.gguf, llm.tok, llm.template, llm.name);
    let prompt = spec.config.prompt_ids(&tok, template)?;
    if spec.config.completion != Signal::Off && loaded.data.completion.iter().all(|c| c.is_nan()) {
        return Err(ExperimentError::setting(
            "prompt_completion",
            format!(
                "--prompt-completion {}: the item encoder's data has no completion ratios (a log with durations, or the web app's sessions, has them)",
                spec.config.completion
            ),
        ));
    }
    let (tags, tag_words) = load_tags(spec, &loaded.data, device)?;
    let text = PromptText::build(
        &spec.config,
        &tok,
        (spec.config.tags == Signal::Text).then_some(&tag_words[..]),
    );
    Ok(E4SRecSetup {
        encoder,
        loaded,
        items,
        gguf: g,
        prompt,
        llm_name,
        signals: Signals { text, tags },
        tag_words,
    })
}

fn save_trained(path: &Path, t: &BTreeMap<String, Tensor<2>>) -> Result<(), ExperimentError> {
    let bytes = trained_to_bytes(t, false).map_err(|e| ExperimentError::at(path, e))?;
    Ok(crate::util::fsio::write_bytes(path, &bytes)?)
}

pub fn load_trained(
    path: &Path,
    device: &Device,
) -> Result<BTreeMap<String, Tensor<2>>, ExperimentError> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::io(path, e))?;
    trained_from_bytes(&bytes, device).map_err(|e| ExperimentError::at(path, e))
}

fn mean_metric(r: &Ranks, metric: &str) -> f64 {
    r.mean(metric).unwrap_or(0.0)
}

/// One user's training plays and their completion ratios.
type Plays<'a> = (&'a [u32], &'a [f32]);

/// One training example: a history, its completion ratios, and the target after it.
type Example<'a> = (&'a [u32], &'a [f32], u32);

/// Trains (or resumes) one seed; its best trained tensors go to `RUN/seed-K/best.safetensors`.
pub fn train_seed(
    spec: &E4SRecSpec,
    p: &E4SRecSetup,
    run: &Path,
    seed: u64,
    device: &Device,
    progress: bool,
) -> Result<SeedTraining, ExperimentError> {
    let t = &spec.train;
    check_train(t)?;
    let dir = seed_dir(run, seed);
    std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::io(&dir, e))?;
    // A finished seed is only summarised: no decoder is built for it.
    if let Some(state) = finished_state(&dir) {
        return Ok(summary(seed, state));
    }
    let seqs = user_sequences(p)?;
    let ad = device.clone().autodiff();
    device.seed(seed);
    let (mut model, mut state) = start(spec, p, &dir, seed, &ad)?;
    let optim = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_grad_clipping(t.grad_clip.map(GradientClippingConfig::Norm))
        .init();
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let steps_per_epoch = seqs.len().div_ceil(t.batch_size);
    let bar = crate::util::progress::progress_bar(progress, steps_per_epoch as u64);
    let mut s = SeedRun {
        spec,
        p,
        seed,
        device,
        ad,
        dir,
        seqs,
        steps_per_epoch,
        optim,
        ce,
        bar,
    };
    while !state.finished && state.epoch < t.epochs {
        model = s.epoch(model, &mut state)?;
    }
    state.finished = true;
    write_json(&s.dir.join("state.json"), &state)?;
    if let Some(b) = s.bar {
        b.finish_and_clear();
    }
    Ok(summary(seed, state))
}

/// Each user's training plays and completion ratios, for the users with two plays or more.
fn user_sequences(p: &E4SRecSetup) -> Result<Vec<Plays<'_>>, ExperimentError> {
    let d = &p.loaded.data;
    let seqs: Vec<Plays> = training_sequences(d, &p.loaded.prepared.fit_end)
        .into_iter()
        .zip(training_completions(d, &p.loaded.prepared.fit_end))
        .filter(|(s, _)| s.len() >= 2)
        .collect();
    if seqs.is_empty() {
        return Err(ExperimentError::Invalid(
            "no user has two training plays".into(),
        ));
    }
    Ok(seqs)
}

/// The seed's model on the autodiff device `ad` and its state: fresh, or resumed after the
/// last finished epoch (`dir/last.safetensors`).
fn start(
    spec: &E4SRecSpec,
    p: &E4SRecSetup,
    dir: &Path,
    seed: u64,
    ad: &Device,
) -> Result<(E4SRec, State), ExperimentError> {
    let llm = load_llm(p, &spec.llm, ad)?;
    let items = Tensor::from_data(p.items.clone().into_data(), ad);
    let fresh = spec
        .config
        .init(llm, items, (&p.prompt.0, &p.prompt.1), p.signals_on(ad), ad)?;
    let last_path = dir.join("last.safetensors");
    Ok(match read_json::<State>(&dir.join("state.json")) {
        Ok(s) if last_path.exists() => {
            let m = fresh.load_trained(&load_trained(&last_path, ad)?)?;
            eprintln!("seed {seed}: resuming after epoch {}", s.epoch);
            (m, s)
        }
        _ => (fresh, State::default()),
    })
}

/// One seed's training under way: what every epoch reads, the optimiser, and where the seed's
/// files go.
struct SeedRun<'a> {
    spec: &'a E4SRecSpec,
    p: &'a E4SRecSetup,
    seed: u64,
    device: &'a Device,
    /// `device` with autodiff: where the model trains.
    ad: Device,
    dir: PathBuf,
    seqs: Vec<Plays<'a>>,
    steps_per_epoch: usize,
    optim: ModuleOptimizer,
    ce: CrossEntropyLoss,
    bar: Option<indicatif::ProgressBar>,
}

/// An epoch's pass over its examples: the summed loss, the examples, the last learning rate.
struct Pass {
    loss_sum: f64,
    n: usize,
    lr: f64,
}

impl<'a> SeedRun<'a> {
    /// Trains, validates and checkpoints the epoch after `state.epoch`.
    fn epoch(&mut self, model: E4SRec, state: &mut State) -> Result<E4SRec, ExperimentError> {
        let t = &self.spec.train;
        let epoch = state.epoch + 1;
        self.device
            .seed(self.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
        let examples = self.examples(epoch);
        if let Some(b) = &self.bar {
            b.reset();
            b.set_prefix(format!("epoch {epoch}/{}", t.epochs));
        }
        let t0 = Instant::now();
        let (model, pass) = self.fit(model, &examples, epoch);
        let seconds = t0.elapsed().as_secs_f64();
        let valid = if epoch.is_multiple_of(t.eval_every) || epoch == t.epochs {
            Some(self.validate(&model))
        } else {
            None
        };
        let log = EpochLog {
            epoch,
            loss: pass.loss_sum / pass.n.max(1) as f64,
            lr: pass.lr,
            valid,
            seconds,
            seq_per_s: pass.n as f64 / seconds.max(1e-9),
            targets_per_s: pass.n as f64 / seconds.max(1e-9),
        };
        self.print(&log);
        state.curve.push(log);
        state.epoch = epoch;
        self.checkpoint(&model, state, valid)?;
        Ok(model)
    }

    /// One target per user: a uniformly drawn position after the first play, in a shuffled
    /// order.
    fn examples(&self, epoch: usize) -> Vec<Example<'a>> {
        let mut rng = Rng::stream(self.seed, 0xe45e_0000 + epoch as u64);
        let mut examples: Vec<Example<'a>> = self
            .seqs
            .iter()
            .map(|&(s, c)| {
                let pos = 1 + rng.below(s.len() as u64 - 1) as usize;
                (&s[..pos], &c[..pos], s[pos])
            })
            .collect();
        rng.shuffle(&mut examples);
        examples
    }

    /// One optimiser step per batch of `examples`, with full-softmax cross-entropy.
    fn fit(&mut self, mut model: E4SRec, examples: &[Example], epoch: usize) -> (E4SRec, Pass) {
        let t = &self.spec.train;
        let reads_completion = self.spec.config.completion != Signal::Off;
        let total = self.steps_per_epoch * t.epochs;
        let mut pass = Pass {
            loss_sum: 0.0,
            n: 0,
            lr: t.lr,
        };
        for (i, chunk) in examples.chunks(t.batch_size).enumerate() {
            let hs: Vec<&[u32]> = chunk.iter().map(|e| e.0).collect();
            let cs: Vec<&[f32]> = chunk.iter().map(|e| e.1).collect();
            let ys: Vec<i64> = chunk.iter().map(|e| i64::from(e.2)).collect();
            let y = Tensor::<1, Int>::from_data(TensorData::new(ys, [chunk.len()]), &self.ad);
            let logits = model.forward_with(&hs, reads_completion.then_some(&cs[..]));
            let loss = self.ce.forward(logits, y);
            let v = loss.clone().into_scalar::<f32>() as f64;
            pass.loss_sum += v * chunk.len() as f64;
            pass.n += chunk.len();
            pass.lr = t.lr_at((epoch - 1) * self.steps_per_epoch + i, total);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = self.optim.step(pass.lr, model, grads);
            if let Some(b) = &self.bar {
                b.inc(1);
                b.set_message(format!("loss {:.4}", pass.loss_sum / pass.n as f64));
            }
        }
        (model, pass)
    }

    /// The validation metric of `model`.
    fn validate(&self, model: &E4SRec) -> f64 {
        let t = &self.spec.train;
        let m = model.clone().valid();
        let scorer = E4SRecScorer {
            model: &m,
            batch: t.batch_size,
        };
        let prepared = &self.p.loaded.prepared;
        let r = evaluate(
            &scorer,
            &self.p.loaded.data,
            &prepared.split.valid,
            prepared.valid_candidates.as_deref(),
            false,
        );
        mean_metric(&r, &t.valid_metric)
    }

    /// An epoch of E4SRec is long: its line is printed with or without a progress bar (a
    /// `--jobs` child has none).
    fn print(&self, log: &EpochLog) {
        let line = || {
            eprintln!(
                "seed {} epoch {}: loss {:.4}, valid {} {}, {:.0} s",
                self.seed,
                log.epoch,
                log.loss,
                self.spec.train.valid_metric,
                log.valid.map_or("-".into(), |v| format!("{v:.4}")),
                log.seconds
            )
        };
        match &self.bar {
            Some(b) => b.suspend(line),
            None => line(),
        }
    }

    /// Keeps the best epoch's tensors by `valid`, stops early after `patience` epochs without a
    /// better one, and writes the last epoch's tensors and the state.
    fn checkpoint(
        &self,
        model: &E4SRec,
        state: &mut State,
        valid: Option<f64>,
    ) -> Result<(), ExperimentError> {
        let trained = model.trained();
        if let Some(v) = valid
            && (state.best_epoch == 0 || v > state.best_valid)
        {
            state.best_valid = v;
            state.best_epoch = state.epoch;
            save_trained(&self.dir.join("best.safetensors"), &trained)?;
        }
        if state.epoch - state.best_epoch >= self.spec.train.patience {
            state.finished = true;
        }
        save_trained(&self.dir.join("last.safetensors"), &trained)?;
        Ok(write_json(&self.dir.join("state.json"), state)?)
    }
}

/// A seed's saved state when its training has finished.
fn finished_state(dir: &Path) -> Option<State> {
    read_json::<State>(&dir.join("state.json"))
        .ok()
        .filter(|s| s.finished)
}

/// What a seed's training state reports: best epoch, curve and throughput (an E4SRec example
/// is one target, so its epochs log the same rate for windows and targets).
fn summary(seed: u64, state: State) -> SeedTraining {
    SeedTraining::from_curve(seed, state.best_epoch, state.best_valid, state.curve)
}

/// `encore train-seed RUN SEED` for an E4SRec run: trains (or resumes) one seed as recorded in
/// `RUN/e4srec.json`; the parent process scores it afterwards.
pub fn train_recorded_seed(run: &Path, seed: u64, device: &Device) -> Result<(), ExperimentError> {
    let mut spec: E4SRecSpec = read_json(&run.join(SPEC_FILE))?;
    let p = prepare(&mut spec, device)?;
    let t = train_seed(&spec, &p, run, seed, device, false)?;
    report_seed(&t, &spec.train.valid_metric);
    Ok(())
}

/// Trains every seed of `spec` in `run` (resuming), scores the test cases under the encoder's
/// protocol and full ranking, and writes `results.json`, `results.md` and `curves.svg`.
///
/// With `how.jobs > 1` the unfinished seeds first train in that many child processes at once
/// (`encore train-seed`): on a GPU one process leaves it mostly idle between small kernels.
pub fn run(mut spec: E4SRecSpec, run: &Path, how: &Execution) -> Result<Results, ExperimentError> {
    let (device, device_label) = (&how.device, how.device_label.as_str());
    check_train(&spec.train)?;
    std::fs::create_dir_all(run).map_err(|e| ExperimentError::io(run, e))?;
    let spec_path = run.join(SPEC_FILE);
    if let Ok(old) = read_json::<E4SRecSpec>(&spec_path) {
        spec.llm_sha256 = old.llm_sha256.clone();
        if old != spec {
            return Err(ExperimentError::OtherSettings {
                run: run.to_path_buf(),
            });
        }
    }
    let p = prepare(&mut spec, device)?;
    write_json(&spec_path, &spec)?;
    announce(&spec, &p);
    if how.jobs > 1 {
        let unfinished: Vec<u64> = spec
            .seeds
            .iter()
            .copied()
            .filter(|&s| finished_state(&seed_dir(run, s)).is_none())
            .collect();
        if unfinished.len() > 1 {
            super::runner::train_in_children(&unfinished, run, how.jobs, &how.device_arg)?;
        }
    }
    let outcome = train_and_score(&spec, &p, run, how)?;
    let l = &p.loaded;
    let results = results_of(l, model_info(&spec, &p), outcome, device_label, floors(l));
    write_results(run, &results)?;
    Ok(results)
}

/// The run's one line: the LLM, its prompt and LoRA, the item encoder, the data and protocol.
fn announce(spec: &E4SRecSpec, p: &E4SRecSetup) {
    let l = &p.loaded;
    eprintln!(
        "E4SRec on {} (last {} items{}, LoRA rank {} on {}) over the items of {} ({} seed {}): {} users, {} tracks; {} ({} test, {} validation cases)",
        p.llm_name,
        spec.config.history,
        match spec.config.signals_label() {
            l if l.is_empty() => String::new(),
            l => format!(" with {l}"),
        },
        spec.config.lora_rank,
        spec.config.lora_targets.join("/"),
        p.encoder.model.label(),
        spec.encoder.display(),
        spec.encoder_seed,
        l.info.users,
        l.info.items,
        l.protocol.name,
        l.prepared.split.test.len(),
        l.prepared.split.valid.len()
    );
}

/// Trains (or resumes) each seed in turn and scores its best model on the test cases, writing
/// `RUN/seed-K/ranks.json`.
fn train_and_score(
    spec: &E4SRecSpec,
    p: &E4SRecSetup,
    run: &Path,
    how: &Execution,
) -> Result<Outcome, ExperimentError> {
    let device = &how.device;
    let mut training = Vec::new();
    let mut ranks = Vec::new();
    let mut throughput = Vec::new();
    for &seed in &spec.seeds {
        training.push(train_seed(spec, p, run, seed, device, how.progress)?);
        let dir = seed_dir(run, seed);
        let model = p.model(
            spec,
            &load_trained(&dir.join("best.safetensors"), device)?,
            device,
        )?;
        let scorer = E4SRecScorer {
            model: &model,
            batch: spec.train.batch_size,
        };
        let (sr, per_s) = scorer_test_ranks(&p.loaded, &scorer);
        throughput.push(per_s);
        write_json(&dir.join("ranks.json"), &sr)?;
        ranks.push(sr);
    }
    Ok(Outcome {
        seeds: spec.seeds.clone(),
        training,
        ranks,
        user_items_per_s: crate::eval::stats::mean(&throughput),
    })
}

/// The E4SRec model: the LLM over the item encoder's model (whose config it records).
fn model_info(spec: &E4SRecSpec, p: &E4SRecSetup) -> ModelInfo {
    ModelInfo {
        name: match spec.config.signals_label() {
            l if l.is_empty() => {
                format!("e4srec({} over {})", p.llm_name, p.encoder.model.label())
            }
            l => format!(
                "e4srec({} over {}; {l})",
                p.llm_name,
                p.encoder.model.label()
            ),
        },
        config: p.encoder.model.clone(),
        content: Vec::new(),
        train: spec.train.clone(),
        llm: Some(LlmInfo {
            name: p.llm_name.clone(),
            path: spec.llm.display().to_string(),
            sha256: spec.llm_sha256.clone(),
            encoder: spec.encoder.display().to_string(),
            encoder_seed: spec.encoder_seed,
            e4srec: Some(spec.config.clone()),
            zero_shot: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_train, tag_words};
    use crate::train::TrainConfig;

    #[test]
    fn training_settings_that_cannot_train_are_refused() {
        let ok = TrainConfig::default();
        check_train(&ok).unwrap();
        let zero = [
            TrainConfig {
                eval_every: 0,
                ..ok.clone()
            },
            TrainConfig {
                epochs: 0,
                ..ok.clone()
            },
            TrainConfig {
                batch_size: 0,
                ..ok.clone()
            },
        ];
        for t in zero {
            let e = check_train(&t).unwrap_err();
            assert!(e.to_string().contains("must be positive"), "{e}");
        }
        let e = check_train(&TrainConfig {
            valid_metric: "NDCG@ten".into(),
            ..ok
        })
        .unwrap_err();
        assert!(e.to_string().contains("unknown validation metric"), "{e}");
    }

    #[test]
    fn tag_words_are_the_strongest_labels() {
        let labels: Vec<String> = ["rock", "jazz", "calm", "loud"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            tag_words("audio_tags", &labels, &[0.2, 0.0, 0.9, 0.5], 3),
            "calm, loud, rock"
        );
        assert_eq!(
            tag_words("audio_tags", &labels, &[0.0, 0.3, 0.0, 0.0], 3),
            "jazz"
        );
        assert_eq!(tag_words("audio_tags", &labels, &[0.0; 4], 3), "");
        // MGPHot genes read as their readable tags: Drum Set (19) high, tonality (7) minor.
        let mut genes = vec![0.0f32; 58];
        genes[19] = 1.0;
        genes[7] = 0.2;
        genes[40] = 0.1;
        assert_eq!(tag_words("mgphot", &[], &genes, 2), "Drum Set High, Minor");
    }
}
