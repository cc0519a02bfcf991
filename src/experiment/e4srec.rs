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
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

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
pub struct Prepared {
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

impl Prepared {
    /// `spec`'s E4SRec over this LLM, item table and signals, with the trained `parts` restored
    /// (a checkpoint's, [`load_trained`]).
    pub fn model(
        &self,
        spec: &E4SRecSpec,
        parts: &BTreeMap<String, Tensor<2>>,
        device: &Device,
    ) -> Result<E4SRec, String> {
        spec.config
            .init(
                load_llm(self, &spec.llm, device)?,
                self.items.clone(),
                (&self.prompt.0, &self.prompt.1),
                self.signals.clone(),
                device,
            )?
            .load_trained(parts)
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
) -> Result<(Option<Tensor<2>>, Vec<String>), String> {
    let cfg = &spec.config;
    let src = match (cfg.tags, &spec.tags_from) {
        (Signal::Off, None) => return Ok((None, Vec::new())),
        (Signal::Off, Some(_)) => {
            return Err("--prompt-tags-from is given but --prompt-tags is off".into());
        }
        (_, None) => {
            return Err(format!(
                "--prompt-tags {} needs --prompt-tags-from MODALITY=STORE (e.g. mgphot=features/)",
                cfg.tags
            ));
        }
        (_, Some(src)) => src,
    };
    let table = crate::train::content::load_content(src, d)?;
    let n = table.n_items();
    let words = if cfg.tags == Signal::Text {
        let labels = table.labels.as_ref().ok_or_else(|| {
            format!(
                "{}: modality '{}' has no labels for its dimensions, so its tags cannot be written as text (use --prompt-tags embed)",
                src.path.display(),
                src.name
            )
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

fn load_llm(p: &Prepared, path: &Path, device: &Device) -> Result<Llama, String> {
    let (m, _) =
        Llama::from_gguf(&p.gguf, device).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(m)
}

/// Loads the encoder run's data and item table and the LLM's prompt tokens; checks the spec.
pub fn prepare(spec: &mut E4SRecSpec, device: &Device) -> Result<Prepared, String> {
    let encoder: RunSpec = read_json(&spec.encoder.join("run.json"))
        .map_err(|e| format!("--item-encoder: {e} (a folder written by encore train)"))?;
    let best = seed_dir(&spec.encoder, spec.encoder_seed).join("best.bpk");
    if !best.exists() {
        return Err(format!(
            "{}: no trained model for seed {} (finish that run, or pick another --encoder-seed)",
            best.display(),
            spec.encoder_seed
        ));
    }
    let loaded = load(&encoder)?;
    let enc = load_model(&encoder.model, &best, device).map_err(|e| e.to_string())?;
    let items = enc.item_table_from(enc.rows().as_ref());
    let llm = crate::llm::read_llm(&spec.llm, &spec.llm_sha256)?;
    spec.llm_sha256 = llm.sha256;
    let (g, tok, template, llm_name) = (llm.gguf, llm.tok, llm.template, llm.name);
    let prompt = spec.config.prompt_ids(&tok, template)?;
    if spec.config.completion != Signal::Off && loaded.data.completion.iter().all(|c| c.is_nan()) {
        return Err(format!(
            "--prompt-completion {}: the item encoder's data has no completion ratios (a log with durations, or the web app's sessions, has them)",
            spec.config.completion
        ));
    }
    let (tags, tag_words) = load_tags(spec, &loaded.data, device)?;
    let text = PromptText::build(
        &spec.config,
        &tok,
        (spec.config.tags == Signal::Text).then_some(&tag_words[..]),
    );
    Ok(Prepared {
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

fn save_trained(path: &Path, t: &BTreeMap<String, Tensor<2>>) -> Result<(), String> {
    let bytes = trained_to_bytes(t, false).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::util::fsio::write_bytes(path, &bytes).map_err(|e| e.to_string())
}

pub fn load_trained(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor<2>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    trained_from_bytes(&bytes, device).map_err(|e| format!("{}: {e}", path.display()))
}

fn mean_metric(r: &Ranks, metric: &str) -> f64 {
    r.mean(metric).unwrap_or(0.0)
}

/// Trains (or resumes) one seed; its best trained tensors go to `RUN/seed-K/best.safetensors`.
pub fn train_seed(
    spec: &E4SRecSpec,
    p: &Prepared,
    run: &Path,
    seed: u64,
    device: &Device,
    progress: bool,
) -> Result<SeedTraining, String> {
    let t = &spec.train;
    let dir = seed_dir(run, seed);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // A finished seed is only summarised: no decoder is built for it.
    if let Some(state) = finished_state(&dir) {
        return Ok(summary(seed, state));
    }
    let d = &p.loaded.data;
    let seqs: Vec<(&[u32], &[f32])> = training_sequences(d, &p.loaded.prepared.fit_end)
        .into_iter()
        .zip(training_completions(d, &p.loaded.prepared.fit_end))
        .filter(|(s, _)| s.len() >= 2)
        .collect();
    let reads_completion = spec.config.completion != Signal::Off;
    if seqs.is_empty() {
        return Err("no user has two training plays".into());
    }
    let ad = device.clone().autodiff();
    device.seed(seed);
    let llm = load_llm(p, &spec.llm, &ad)?;
    let items = Tensor::from_data(p.items.clone().into_data(), &ad);
    let fresh = spec.config.init(
        llm,
        items,
        (&p.prompt.0, &p.prompt.1),
        p.signals_on(&ad),
        &ad,
    )?;
    let state_path = dir.join("state.json");
    let last_path = dir.join("last.safetensors");
    let best_path = dir.join("best.safetensors");
    let (mut model, mut state) = match read_json::<State>(&state_path) {
        Ok(s) if last_path.exists() => {
            let m = fresh.load_trained(&load_trained(&last_path, &ad)?)?;
            eprintln!("seed {seed}: resuming after epoch {}", s.epoch);
            (m, s)
        }
        _ => (fresh, State::default()),
    };
    let mut optim = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_grad_clipping(t.grad_clip.map(GradientClippingConfig::Norm))
        .init();
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let steps_per_epoch = seqs.len().div_ceil(t.batch_size);
    let total = steps_per_epoch * t.epochs;
    let bar = crate::util::progress::progress_bar(progress, steps_per_epoch as u64);
    while !state.finished && state.epoch < t.epochs {
        let epoch = state.epoch + 1;
        device.seed(seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
        let mut rng = Rng::stream(seed, 0xe45e_0000 + epoch as u64);
        // One target per user: a uniformly drawn position after the first play.
        let mut examples: Vec<(&[u32], &[f32], u32)> = seqs
            .iter()
            .map(|(s, c)| {
                let pos = 1 + rng.below(s.len() as u64 - 1) as usize;
                (&s[..pos], &c[..pos], s[pos])
            })
            .collect();
        rng.shuffle(&mut examples);
        if let Some(b) = &bar {
            b.reset();
            b.set_prefix(format!("epoch {epoch}/{}", t.epochs));
        }
        let t0 = Instant::now();
        let (mut loss_sum, mut n) = (0.0f64, 0usize);
        let mut lr = t.lr;
        for (i, chunk) in examples.chunks(t.batch_size).enumerate() {
            let hs: Vec<&[u32]> = chunk.iter().map(|e| e.0).collect();
            let cs: Vec<&[f32]> = chunk.iter().map(|e| e.1).collect();
            let ys: Vec<i64> = chunk.iter().map(|e| i64::from(e.2)).collect();
            let y = Tensor::<1, Int>::from_data(TensorData::new(ys, [chunk.len()]), &ad);
            let logits = model.forward_with(&hs, reads_completion.then_some(&cs[..]));
            let loss = ce.forward(logits, y);
            let v = loss.clone().into_scalar::<f32>() as f64;
            loss_sum += v * chunk.len() as f64;
            n += chunk.len();
            lr = t.lr_at((epoch - 1) * steps_per_epoch + i, total);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            if let Some(b) = &bar {
                b.inc(1);
                b.set_message(format!("loss {:.4}", loss_sum / n as f64));
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        let valid = if epoch % t.eval_every == 0 || epoch == t.epochs {
            let m = model.clone().valid();
            let scorer = E4SRecScorer {
                model: &m,
                batch: t.batch_size,
            };
            let r = evaluate(
                &scorer,
                d,
                &p.loaded.prepared.split.valid,
                p.loaded.prepared.valid_candidates.as_deref(),
                false,
            );
            Some(mean_metric(&r, &t.valid_metric))
        } else {
            None
        };
        let log = EpochLog {
            epoch,
            loss: loss_sum / n.max(1) as f64,
            lr,
            valid,
            seconds,
            seq_per_s: n as f64 / seconds.max(1e-9),
            targets_per_s: n as f64 / seconds.max(1e-9),
        };
        // An epoch of E4SRec is long: its line is printed with or without a progress bar (a
        // `--jobs` child has none).
        let line = || {
            eprintln!(
                "seed {seed} epoch {epoch}: loss {:.4}, valid {} {}, {:.0} s",
                log.loss,
                t.valid_metric,
                valid.map_or("-".into(), |v| format!("{v:.4}")),
                seconds
            )
        };
        match &bar {
            Some(b) => b.suspend(line),
            None => line(),
        }
        state.curve.push(log);
        state.epoch = epoch;
        let trained = model.trained();
        if let Some(v) = valid
            && (state.best_epoch == 0 || v > state.best_valid)
        {
            state.best_valid = v;
            state.best_epoch = epoch;
            save_trained(&best_path, &trained)?;
        }
        if epoch - state.best_epoch >= t.patience {
            state.finished = true;
        }
        save_trained(&last_path, &trained)?;
        write_json(&state_path, &state)?;
    }
    state.finished = true;
    write_json(&state_path, &state)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(summary(seed, state))
}

/// A seed's saved state when its training has finished.
fn finished_state(dir: &Path) -> Option<State> {
    read_json::<State>(&dir.join("state.json"))
        .ok()
        .filter(|s| s.finished)
}

/// What a seed's training state reports: best epoch, curve and throughput.
fn summary(seed: u64, state: State) -> SeedTraining {
    let seconds: f64 = state.curve.iter().map(|e| e.seconds).sum();
    let examples: f64 = state.curve.iter().map(|e| e.seq_per_s * e.seconds).sum();
    SeedTraining {
        seed,
        best_epoch: state.best_epoch,
        best_valid: state.best_valid,
        epochs: state.curve.len(),
        seconds,
        seq_per_s: examples / seconds.max(1e-9),
        targets_per_s: examples / seconds.max(1e-9),
        curve: state.curve,
    }
}

/// `encore train-seed RUN SEED` for an E4SRec run: trains (or resumes) one seed as recorded in
/// `RUN/e4srec.json`; the parent process scores it afterwards.
pub fn train_recorded_seed(run: &Path, seed: u64, device: &Device) -> Result<(), String> {
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
pub fn run(mut spec: E4SRecSpec, run: &Path, how: &Execution) -> Result<Results, String> {
    let (device, device_label, progress) = (&how.device, how.device_label.as_str(), how.progress);
    std::fs::create_dir_all(run).map_err(|e| format!("{}: {e}", run.display()))?;
    let spec_path = run.join(SPEC_FILE);
    if let Ok(old) = read_json::<E4SRecSpec>(&spec_path) {
        spec.llm_sha256 = old.llm_sha256.clone();
        if old != spec {
            return Err(format!(
                "{} holds a run with other settings; write to a new folder (-o) or remove it",
                run.display()
            ));
        }
    }
    let p = prepare(&mut spec, device)?;
    write_json(&spec_path, &spec)?;
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
    let mut training = Vec::new();
    let mut ranks = Vec::new();
    let mut throughput = Vec::new();
    for &seed in &spec.seeds {
        training.push(train_seed(&spec, &p, run, seed, device, progress)?);
        let dir = seed_dir(run, seed);
        let model = p.model(
            &spec,
            &load_trained(&dir.join("best.safetensors"), device)?,
            device,
        )?;
        let scorer = E4SRecScorer {
            model: &model,
            batch: spec.train.batch_size,
        };
        let (sr, per_s) = scorer_test_ranks(l, &scorer);
        throughput.push(per_s);
        write_json(&dir.join("ranks.json"), &sr)?;
        ranks.push(sr);
    }
    let model = ModelInfo {
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
    };
    let outcome = Outcome {
        seeds: spec.seeds.clone(),
        training,
        ranks,
        user_items_per_s: crate::eval::stats::mean(&throughput),
    };
    let results = results_of(l, model, outcome, device_label, floors(l));
    write_results(run, &results).map_err(|e| format!("{}: {e}", run.display()))?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::tag_words;

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
