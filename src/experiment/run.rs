//! A run: one dataset, one protocol, one model configuration, K seeds. Each seed trains in
//! `RUN/seed-K/` (resumable), then its test ranks under the protocol and under full-catalogue
//! ranking (with and without heard tracks) go to `seed-K/ranks.json`; the seeds are summarised
//! into `results.json`, `results.md` and `curves.svg`. `run.json` records how the run was asked
//! for, so `encore eval RUN` can rebuild the data and re-score the saved models.

use super::ExperimentError;
use super::runner::{Execution, read_json, report_seed, seed_dir, train_in_children, write_json};
use crate::data::read::{self, Format, ReadOptions};
use crate::data::{Dataset, EventLog, Preset, preprocess};
use crate::eval::model::ModelScorer;
use crate::eval::protocol::{Prepared, Protocol, prepare};
use crate::eval::{View, evaluate_views};
use crate::experiment::results::{
    ContentInfo, DatasetInfo, ModelInfo, ProtocolInfo, Results, SeedRanks, SeedTraining,
    summarize_metrics, write_results,
};
use crate::model::fusion::ContentTable;
use crate::model::{ModelConfig, SeqModel};
use crate::train::content::{ContentSource, describe, load_content};
use crate::train::{TrainConfig, TrainJob, load_model, train};
use crate::util::sha256_hex;
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a run was asked for (`RUN/run.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub data: PathBuf,
    /// `encore` (a folder from `encore data ingest`) or a log format.
    pub format: String,
    /// Preprocessing preset for logs (by name), `none` to only order plays.
    pub preset: String,
    pub protocol: String,
    pub samples: Option<PathBuf>,
    pub model: ModelConfig,
    /// Content modalities fused into the items (`--content NAME=PATH`), in model order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentSource>,
    pub train: TrainConfig,
    pub seeds: Vec<u64>,
    /// Seed of the split and of sampled candidates (fixed across model seeds).
    pub split_seed: u64,
    /// Cold start: this share of the tracks that end a user's history are held out of all
    /// training and all histories, and only test cases with such a target are scored
    /// (leave-one-out, full ranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold: Option<f64>,
}

/// Loads training data: an `encore data ingest` folder, or a log read and preprocessed.
pub fn load_data(
    path: &Path,
    format: &str,
    preset: &str,
) -> Result<(Dataset, DatasetInfo), ExperimentError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (d, sha) = if format == "encore" {
        let (d, _) = crate::data::ingest::load_dataset(path)?;
        let bin = path.join("dataset.bin");
        let bytes = std::fs::read(&bin).map_err(|e| ExperimentError::io(&bin, e))?;
        (d, sha256_hex(&bytes))
    } else {
        let f: Format = format
            .parse()
            .map_err(|e: String| ExperimentError::setting("format", e))?;
        let mut log = EventLog::default();
        let report = read::read_file(f, path, &mut log, &ReadOptions::default())?;
        if report.skipped > 0 {
            eprintln!(
                "warning: {} malformed lines skipped in {} (first: {})",
                report.skipped,
                path.display(),
                report
                    .issues
                    .first()
                    .map(|i| i.to_string())
                    .unwrap_or_default()
            );
        }
        let p = match preset {
            "none" => Preset::sessions_only(i64::MAX / 4),
            name => Preset::builtin(name)?,
        };
        (preprocess(&log, &p, |_| {}).dataset, report.sha256)
    };
    let info = DatasetInfo {
        name,
        path: path.display().to_string(),
        format: format.to_string(),
        sha256: sha,
        users: d.n_users(),
        items: d.n_tracks(),
        plays: d.n_plays(),
    };
    Ok((d, info))
}

/// Reads a samples file (S3-Rec `_sample.txt`) and its sha256.
/// Per line of a samples file: the user and its negatives (original ids).
pub type Samples = Vec<(u32, Vec<u32>)>;

pub fn load_samples(path: &Path) -> Result<(Samples, String), ExperimentError> {
    let rows = read::read_samples(path)?;
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::io(path, e))?;
    Ok((rows, sha256_hex(&bytes)))
}

/// Everything loaded for a run.
pub struct Loaded {
    pub data: Dataset,
    pub info: DatasetInfo,
    pub protocol: Protocol,
    pub prepared: Prepared,
    pub samples: Option<(String, String)>,
    /// The content tables, aligned to the dataset's tracks.
    pub content: Vec<ContentTable>,
}

pub fn load(spec: &RunSpec) -> Result<Loaded, ExperimentError> {
    let (mut data, mut info) = load_data(&spec.data, &spec.format, &spec.preset)?;
    let protocol: Protocol = spec
        .protocol
        .parse()
        .map_err(|e: String| ExperimentError::setting("protocol", e))?;
    let cold = match spec.cold {
        None => None,
        Some(f) => {
            if protocol.split != crate::data::split::Scheme::LeaveOneOut
                || protocol.candidates != crate::data::split::Candidates::Full
            {
                return Err(ExperimentError::setting(
                    "cold",
                    format!(
                        "cold start needs protocol loo-full (a cold track has no history to sample negatives against), not {}",
                        protocol.name
                    ),
                ));
            }
            let (d, cold) = crate::eval::protocol::cold_start(&data, f, spec.split_seed)?;
            data = d;
            info.plays = data.n_plays();
            Some(cold)
        }
    };
    let (rows, samples) = match &spec.samples {
        Some(p) => {
            let (rows, sha) = load_samples(p)?;
            (Some(rows), Some((p.display().to_string(), sha)))
        }
        None => (None, None),
    };
    let mut prepared =
        prepare(&data, &protocol, spec.split_seed, rows.as_deref()).map_err(|e| {
            match &spec.samples {
                Some(p) => ExperimentError::at(p, e),
                None => e.into(),
            }
        })?;
    if let Some(cold) = &cold {
        prepared.split.test.retain(|c| cold[c.target as usize]);
        if prepared.split.test.is_empty() {
            return Err(ExperimentError::setting(
                "cold",
                "cold start left no test case (raise the share)",
            ));
        }
        eprintln!(
            "cold start: {} cold tracks, {} test cases with a cold target",
            cold.iter().filter(|&&c| c).count(),
            prepared.split.test.len()
        );
    }
    let content = spec
        .content
        .iter()
        .map(|c| load_content(c, &data))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Loaded {
        data,
        info,
        protocol,
        prepared,
        samples,
        content,
    })
}

/// Test ranks of one model under the protocol and full ranking; returns them and the full
/// ranking throughput (user x item scores per second).
pub fn test_ranks(
    l: &Loaded,
    model: &SeqModel,
    cfg: &ModelConfig,
    device: &Device,
) -> (SeedRanks, f64) {
    scorer_test_ranks(l, &ModelScorer::new(model, cfg.max_len(), device.clone()))
}

/// [`test_ranks`] for any scorer (E4SRec's too).
pub fn scorer_test_ranks(l: &Loaded, scorer: &dyn crate::eval::Scorer) -> (SeedRanks, f64) {
    let cases = &l.prepared.split.test;
    let full = |mask_heard| View {
        candidates: None,
        mask_heard,
    };
    let views = [
        View {
            candidates: l.prepared.test_candidates.as_deref(),
            mask_heard: false,
        },
        full(false),
        full(true),
    ];
    let t0 = Instant::now();
    let mut r = evaluate_views(scorer, &l.data, cases, &views).into_iter();
    let per_s = (cases.len() * l.data.n_tracks()) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    let mut next = || r.next().expect("one result per view");
    (
        SeedRanks {
            protocol: next(),
            full: next(),
            full_unheard: next(),
        },
        per_s,
    )
}

/// Trains (or resumes) every seed of `spec` in `run`, evaluates, and writes the results. With
/// `jobs > 1`, seeds train in that many child processes (`encore train-seed`) at once: burn's CPU
/// generator is process-wide, so separate processes keep every seed deterministic.
pub fn run(spec: RunSpec, run: &Path, how: &Execution) -> Result<Results, ExperimentError> {
    let (spec, l) = start(spec, run)?;
    run_started(&spec, &l, run, how)
}

/// The results of a run already recorded by [`start`], when every one of its seeds was
/// evaluated (what `encore ablate` skips).
pub fn finished_results(spec: &RunSpec, run: &Path) -> Option<Results> {
    let r: Results = read_json(&run.join("results.json")).ok()?;
    (r.seeds == spec.seeds && r.model.config == spec.model && r.model.train == spec.train)
        .then_some(r)
}

/// [`run`] after [`start`]: trains (or resumes) every seed, evaluates, writes the results.
pub fn run_started(
    spec: &RunSpec,
    l: &Loaded,
    run: &Path,
    how: &Execution,
) -> Result<Results, ExperimentError> {
    if how.jobs > 1 {
        train_in_children(&spec.seeds, run, how.jobs, &how.device_arg)?;
    }
    let mut trained = Vec::new();
    for &seed in &spec.seeds {
        trained.push(train_seed(spec, l, run, seed, &how.device, how.progress)?);
    }
    evaluate_run(spec, run, l, trained, &how.device, &how.device_label)
}

/// Loads the data, sets the catalogue size, and records the run (refusing a folder that holds a
/// run with other settings).
pub fn start(mut spec: RunSpec, run: &Path) -> Result<(RunSpec, Loaded), ExperimentError> {
    std::fs::create_dir_all(run).map_err(|e| ExperimentError::io(run, e))?;
    let l = load(&spec)?;
    spec.model.set_n_items(l.info.items);
    match (spec.model.fusion().cloned(), l.content.is_empty()) {
        (Some(mut f), false) => {
            f.modalities = l.content.iter().map(ContentTable::modality_dim).collect();
            f.validate()?;
            spec.model.set_fusion(Some(f));
        }
        (Some(f), true) => {
            return Err(ExperimentError::setting(
                "fusion",
                format!(
                    "fusion '{}' needs content (--content NAME=PATH)",
                    f.strategy
                ),
            ));
        }
        (None, false) => {
            return Err(ExperimentError::setting(
                "content",
                "content was given without a fusion strategy (--fusion)",
            ));
        }
        (None, true) => {}
    }
    if !l.content.is_empty() {
        eprintln!(
            "{}",
            describe(&l.content, |i| spec.content[i].path.display().to_string())
        );
    }
    let spec_path = run.join("run.json");
    if spec_path.exists() {
        let old: RunSpec = read_json(&spec_path)?;
        if old.data != spec.data
            || old.format != spec.format
            || old.preset != spec.preset
            || old.protocol != spec.protocol
            || old.model != spec.model
            || old.content != spec.content
            || old.cold != spec.cold
            || old.train != spec.train
        {
            return Err(ExperimentError::OtherSettings {
                run: run.to_path_buf(),
            });
        }
    }
    write_json(&spec_path, &spec)?;
    eprintln!(
        "{}: {} users, {} tracks, {} plays; {} ({} test, {} validation cases)",
        l.info.name,
        l.info.users,
        l.info.items,
        l.info.plays,
        l.protocol.name,
        l.prepared.split.test.len(),
        l.prepared.split.valid.len()
    );
    Ok((spec, l))
}

/// Trains (or resumes, or finds finished) one seed and saves its best model as `best.bpk`.
pub fn train_seed(
    spec: &RunSpec,
    l: &Loaded,
    run: &Path,
    seed: u64,
    device: &Device,
    progress: bool,
) -> Result<SeedTraining, ExperimentError> {
    let dir = seed_dir(run, seed);
    let job = TrainJob {
        data: &l.data,
        prepared: &l.prepared,
        model: spec.model.clone(),
        content: &l.content,
        train: spec.train.clone(),
        seed,
        device: device.clone(),
        dir: dir.clone(),
        progress,
        stop_after: None,
    };
    let t = train(&job)?;
    let best = dir.join("best.bpk");
    t.model
        .clone()
        .save_file(&best)
        .map_err(|e| ExperimentError::SaveModel {
            path: best.clone(),
            reason: e.to_string(),
        })?;
    Ok(SeedTraining::from_curve(
        seed,
        t.best_epoch,
        t.best_valid,
        t.curve,
    ))
}

/// One seed of a recorded sequence-model run (`run.json`): what `encore train-seed` does for it.
pub fn train_recorded_seed(run: &Path, seed: u64, device: &Device) -> Result<(), ExperimentError> {
    let spec: RunSpec = read_json(&run.join("run.json"))?;
    let l = load(&spec)?;
    let t = train_seed(&spec, &l, run, seed, device, false)?;
    report_seed(&t, &spec.train.valid_metric);
    Ok(())
}

/// Scores every seed's best model on the test cases and writes the results.
pub fn evaluate_run(
    spec: &RunSpec,
    run: &Path,
    l: &Loaded,
    training: Vec<SeedTraining>,
    device: &Device,
    device_label: &str,
) -> Result<Results, ExperimentError> {
    let mut ranks = Vec::new();
    let mut throughput = Vec::new();
    for &seed in &spec.seeds {
        let dir = seed_dir(run, seed);
        let model = load_model(&spec.model, &dir.join("best.bpk"), device)?;
        let (r, per_s) = test_ranks(l, &model, &spec.model, device);
        write_json(&dir.join("ranks.json"), &r)?;
        ranks.push(r);
        throughput.push(per_s);
    }
    let model = ModelInfo {
        name: spec.model.label(),
        config: spec.model.clone(),
        content: l
            .content
            .iter()
            .zip(&spec.content)
            .map(|(t, src)| ContentInfo {
                name: t.name.clone(),
                path: src.path.display().to_string(),
                dim: t.dim,
                present: t.n_present(),
                sha256: crate::train::content::table_sha256(t),
            })
            .collect(),
        train: spec.train.clone(),
        llm: None,
    };
    let outcome = Outcome {
        seeds: spec.seeds.clone(),
        training,
        ranks,
        user_items_per_s: crate::eval::stats::mean(&throughput),
    };
    let results = results_of(l, model, outcome, device_label, floors(l));
    write_results(run, &results)?;
    Ok(results)
}

/// Each seed of a run as scored: its training, its test ranks, and the test scoring speed
/// (users x items per second).
pub struct Outcome {
    pub seeds: Vec<u64>,
    pub training: Vec<SeedTraining>,
    pub ranks: Vec<SeedRanks>,
    pub user_items_per_s: f64,
}

/// The one constructor of a run's [`Results`]: the loaded data and protocol, the model as
/// described by its kind of run, the seeds' outcome summarised per metric (mean, 95 % CI over
/// the seeds, per-seed values) under every view, and the floors when computed.
pub fn results_of(
    l: &Loaded,
    model: ModelInfo,
    outcome: Outcome,
    device_label: &str,
    baselines: Baselines,
) -> Results {
    let pick = |f: fn(&SeedRanks) -> &crate::eval::Ranks| -> Vec<&crate::eval::Ranks> {
        outcome.ranks.iter().map(f).collect()
    };
    Results {
        dataset: l.info.clone(),
        protocol: ProtocolInfo {
            name: l.protocol.name.clone(),
            description: l.protocol.describe(),
            samples: l.samples.clone(),
            test_cases: l.prepared.split.test.len(),
            valid_cases: l.prepared.split.valid.len(),
        },
        model,
        seeds: outcome.seeds,
        code_version: crate::data::store::code_version(),
        device: device_label.to_string(),
        metrics: summarize_metrics(&pick(|r| &r.protocol)),
        metrics_full: summarize_metrics(&pick(|r| &r.full)),
        metrics_full_unheard: summarize_metrics(&pick(|r| &r.full_unheard)),
        training: outcome.training,
        eval_user_items_per_s: outcome.user_items_per_s,
        baselines,
    }
}

/// The floors' metrics by floor name.
pub type Baselines = std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>;

/// Most-popular and session item-kNN fitted on the training plays, ranked on the test cases
/// under the protocol.
pub fn floors(l: &Loaded) -> Baselines {
    use crate::eval::baselines::{ItemKnn, ItemKnnConfig, MostPopular};
    use crate::eval::{Scorer, evaluate};
    let d = &l.data;
    let seqs = crate::train::training_sequences(d, &l.prepared.fit_end);
    let pop = MostPopular::fit(d.n_tracks(), seqs.iter().flat_map(|s| s.iter().copied()));
    let knn = ItemKnn::fit(
        d.n_tracks(),
        seqs.iter().copied(),
        &ItemKnnConfig::default(),
    );
    let floors: [(&str, &dyn Scorer); 2] = [("most-popular", &pop), ("item-knn", &knn)];
    floors
        .into_iter()
        .map(|(name, s)| {
            let r = evaluate(
                s,
                d,
                &l.prepared.split.test,
                l.prepared.test_candidates.as_deref(),
                false,
            );
            let m = crate::experiment::results::HEADLINE
                .iter()
                .filter_map(|k| r.mean(k).map(|v| (k.to_string(), v)))
                .collect();
            (name.to_string(), m)
        })
        .collect()
}

/// Re-evaluates a finished run from its saved models (`encore eval RUN`).
pub fn reevaluate(
    run: &Path,
    device: &Device,
    device_label: &str,
) -> Result<Results, ExperimentError> {
    let spec: RunSpec = read_json(&run.join("run.json"))?;
    let old: Results = read_json(&run.join("results.json"))?;
    let l = load(&spec)?;
    if l.info.sha256 != old.dataset.sha256 {
        return Err(ExperimentError::DataChanged {
            data: spec.data.clone(),
            sha256: l.info.sha256,
            recorded: old.dataset.sha256,
        });
    }
    evaluate_run(&spec, run, &l, old.training, device, device_label)
}

/// The per-seed ranks of a finished run (for `encore compare`).
pub fn seed_ranks(run: &Path) -> Result<(Results, Vec<SeedRanks>), ExperimentError> {
    let r: Results = read_json(&run.join("results.json"))?;
    let ranks = r
        .seeds
        .iter()
        .map(|&s| read_json(&seed_dir(run, s).join("ranks.json")))
        .collect::<Result<Vec<SeedRanks>, _>>()?;
    Ok((r, ranks))
}
