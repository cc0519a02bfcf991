//! `encore train`, `encore eval` and `encore compare`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use crate::device::{self, DeviceChoice};
use crate::experiment::results::{HEADLINE, compare};
use crate::experiment::run::{RunSpec, reevaluate, run, seed_ranks};
use crate::experiment::runner::Execution;
use crate::model::ModelConfig;
use crate::model::completion::CompletionInput;
use crate::model::fusion::{FusionConfig, Strategy};
use crate::train::content::ContentSource;
use crate::train::loss::Loss;
use crate::train::{Decay, TrainConfig};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The listening data: a log file, or a folder written by `encore data ingest` (e4srec
    /// takes its item encoder's)
    #[arg(long)]
    data: Option<PathBuf>,
    /// encore (an ingested folder), s3rec, recbole, lastfm1k, spotify or listenbrainz
    #[arg(long, default_value = "encore")]
    format: String,
    /// Preprocessing preset for log formats (`none`: only order the plays; `paper`, `default`)
    #[arg(long, default_value = "none")]
    preset: String,
    /// sasrec, bert4rec, gru4rec, e4srec (an LLM over a trained run's items: --llm,
    /// --item-encoder), or zeroshot (the LLM alone ranks a run's candidates by likelihood)
    #[arg(long)]
    model: String,
    /// e4srec: the LLM, a GGUF file (Llama architecture: SmolLM2, Llama 3.x, Qwen2.5)
    #[arg(long)]
    llm: Option<PathBuf>,
    /// e4srec: a finished run folder of sasrec, bert4rec or gru4rec (id-only or fused); its data,
    /// protocol and split are used, and its best model's item table is the frozen item input.
    /// zeroshot: the run whose data, protocol, split and candidates are used
    #[arg(long)]
    item_encoder: Option<PathBuf>,
    /// e4srec: which seed of the item encoder's run gives the item table
    #[arg(long, default_value_t = 0)]
    encoder_seed: u64,
    /// e4srec: LoRA rank
    #[arg(long, default_value_t = 16)]
    lora_rank: usize,
    /// e4srec: LoRA alpha (the update is scaled by alpha / rank)
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// e4srec: adapted projections, comma-separated among q, k, v, o, gate, up, down
    #[arg(long, default_value = "gate,up,down", value_delimiter = ',')]
    lora_targets: Vec<String>,
    /// e4srec, zeroshot: most recent history items read [default: 50 for e4srec, 20 for
    /// zeroshot]
    #[arg(long)]
    history: Option<usize>,
    /// e4srec: each history play's completion ratio in the prompt: off, text ("heard 80%"
    /// after its soft token) or embed (a trained embedding of its bucket added to the token)
    #[arg(long, default_value = "off")]
    prompt_completion: crate::model::e4srec::Signal,
    /// e4srec: each history track's tags in the prompt: off, text (its strongest labels after
    /// its soft token) or embed (a trained projection of its tag vector added to the token);
    /// needs --prompt-tags-from
    #[arg(long, default_value = "off")]
    prompt_tags: crate::model::e4srec::Signal,
    /// e4srec: where the tags come from, MODALITY=PATH (e.g. mgphot=features/: MGPHot genes
    /// read as "Tempo High"; text needs a feature store whose modality names its dimensions)
    #[arg(long)]
    prompt_tags_from: Option<ContentSource>,
    /// e4srec: tags per track written as text (its strongest)
    #[arg(long, default_value_t = 3)]
    prompt_tag_count: usize,
    /// zeroshot: a candidate's score is its text's log-likelihood summed over its tokens (sum)
    /// or per token (mean)
    #[arg(long, default_value = "sum")]
    likelihood: crate::llm::likelihood::Likelihood,
    /// zeroshot: score a seeded sample of this many test cases (default: all)
    #[arg(long)]
    max_users: Option<usize>,
    /// loo-sampled99, temporal-sampled200, full (= temporal-full), loo-full,
    /// loo-sampled-N, temporal-sampled-N
    #[arg(long, default_value = "temporal-sampled200")]
    protocol: String,
    /// Negatives per user in S3-Rec's `_sample.txt` format (loo-sampled99's published negatives)
    #[arg(long)]
    samples: Option<PathBuf>,
    /// Number of seeds (0, 1, ..., K-1) to train and evaluate
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Seed of the split and sampled candidates (kept fixed across model seeds)
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// The run folder (results.json, results.md, curves.svg, seed-K/ checkpoints)
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Model hyper-parameter overrides: d_model, d_ff, n_layers, n_heads, max_len, dropout,
    /// mask_prob (bert4rec), d_hidden (gru4rec); e.g. `--set dropout=0.5 --set max_len=100`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Most training epochs (early stopping usually ends sooner)
    #[arg(long, default_value_t = 200)]
    epochs: usize,
    /// Training windows per optimiser step
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate (AdamW)
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// AdamW's decoupled weight decay
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Linear warm-up over this many optimiser steps
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Learning-rate decay after warm-up: none, linear or cosine
    #[arg(long, default_value = "linear")]
    decay: Decay,
    /// Largest gradient norm per parameter tensor (0 = no clipping)
    #[arg(long, default_value_t = 5.0)]
    grad_clip: f32,
    /// ce (full softmax), sampled-softmax[:N] (logQ-corrected), bce[:N]; bert4rec trains by cloze with ce
    #[arg(long, default_value = "ce")]
    loss: Loss,
    /// Stop after this many validations without improvement
    #[arg(long, default_value_t = 20)]
    patience: usize,
    /// Validate every this many epochs
    #[arg(long, default_value_t = 1)]
    eval_every: usize,
    /// Validation metric that picks the best epoch
    #[arg(long, default_value = "NDCG@10")]
    valid_metric: String,
    /// auto, cpu, wgpu or cuda
    #[arg(long = "device", value_name = "DEVICE", default_value = "auto")]
    device_arg: String,
    /// Train this many seeds at once, each in its own process (on the CPU each keeps about one core busy)
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Content fused into the items: MODALITY=PATH, PATH a feature-store folder (its modality
    /// MODALITY) or an S3-Rec item2attributes .json file; repeatable
    #[arg(long = "content", value_name = "MODALITY=PATH")]
    content: Vec<ContentSource>,
    /// How content joins the id embedding: concat, sum, gate, xattn, film, or content-only (no
    /// id embedding: tracks unseen in training are scored too); default concat with --content
    #[arg(long)]
    fusion: Option<Strategy>,
    /// Chance per track, modality and step that a present content vector is dropped in training
    #[arg(long, default_value_t = 0.1)]
    modality_dropout: f64,
    /// Read each history play's completion ratio: buckets[:N] (a learned embedding per bucket,
    /// default 10) or scalar (ratio times a learned vector); unknown ratios have their own input
    #[arg(long)]
    completion: Option<CompletionInput>,
    /// Engagement-weighted loss: each target play counts FLOOR + (1 - FLOOR) x its completion
    #[arg(long, value_name = "FLOOR")]
    engagement_weight: Option<f32>,
    /// Next-item windows move by this many plays and predict only their last N, so targets see
    /// at least max_len - N plays of history (default: windows tile each sequence; 1 = every
    /// target with its full history, max_len times the computation)
    #[arg(long, value_name = "N")]
    window_stride: Option<usize>,
    /// Train on each user's N most recent windows only (1: the last max_len plays of each
    /// training sequence, as S3-Rec's SASRec; default: every play is a target)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    recent_windows: Option<u64>,
    /// Cold start (with --protocol loo-full): hold this share of the tracks that end a user's
    /// history out of all training and histories, and score only the cases that target them
    #[arg(long, value_name = "SHARE")]
    cold: Option<f64>,
}

#[derive(Args, Debug)]
pub struct AblateArgs {
    /// The ablation (TOML): data, protocol, backbones, fusions, content, modality subsets, seeds
    #[arg(long)]
    config: PathBuf,
    /// Folder for the cells (one run folder each) and ablation.json, .md, .svg
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Base of the configuration's relative paths (default: the configuration file's folder)
    #[arg(long)]
    root: Option<PathBuf>,
    /// Run only the cells whose name contains this (the table still lists every finished cell)
    #[arg(long)]
    only: Option<String>,
    /// auto, cpu, wgpu or cuda
    #[arg(long = "device", value_name = "DEVICE", default_value = "auto")]
    device_arg: String,
    /// Seeds trained at once, each in its own process
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

#[derive(Args, Debug)]
pub struct TrainSeedArgs {
    run: PathBuf,
    seed: u64,
    #[arg(long, default_value = "cpu", value_parser = super::args::parse_device)]
    device: DeviceChoice,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run folder written by `encore train`
    run: PathBuf,
    #[arg(long, default_value = "auto", value_parser = super::args::parse_device)]
    device: DeviceChoice,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The baseline run folder
    a: PathBuf,
    /// The run compared with it
    b: PathBuf,
    /// Which metrics (default: a headline set)
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// Compare under `protocol`, `full` or `full-unheard` ranking
    #[arg(long, default_value = "protocol")]
    ranking: String,
    /// Also write the comparison as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
}

fn select_device(choice: DeviceChoice) -> anyhow::Result<(burn::tensor::Device, String)> {
    let sel = device::select(choice)?;
    let label = format!("{} ({})", sel.backend.label(), sel.adapter);
    if let Some(why) = &sel.fallback_reason {
        eprintln!("device: {label} ({why})");
    }
    Ok((sel.device, label))
}

/// Where runs train: the chosen device, progress on a terminal, `jobs` seeds at once.
fn execution(device_arg: &str, jobs: usize) -> anyhow::Result<Execution> {
    let (device, device_label) =
        select_device(super::args::parse_device(device_arg).map_err(anyhow::Error::msg)?)?;
    Ok(Execution {
        device,
        device_label,
        device_arg: device_arg.to_string(),
        progress: progress(),
        jobs,
    })
}

fn progress() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

pub fn run_train(a: TrainArgs) -> anyhow::Result<ExitCode> {
    if a.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    if a.model == "e4srec" {
        return run_e4srec(a);
    }
    if a.model == "zeroshot" {
        return run_zeroshot(a);
    }
    if a.llm.is_some() || a.item_encoder.is_some() {
        bail!("--llm and --item-encoder are for --model e4srec and zeroshot");
    }
    refuse_prompt_signals(&a)?;
    let Some(data) = a.data.clone() else {
        bail!("--data is needed (a log file or an ingested folder)");
    };
    // The catalogue size is set by `run` once the data is read.
    let mut model = ModelConfig::defaults(&a.model, 0)?;
    for s in &a.sets {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--set {s}: expected KEY=VALUE"))?;
        let v: f64 = v
            .parse()
            .with_context(|| format!("--set {s}: '{v}' is not a number"))?;
        model.set(k, v)?;
    }
    let fusion = match (a.fusion, a.content.is_empty()) {
        (Some(s), true) => bail!("--fusion {s} needs content (--content MODALITY=PATH)"),
        (None, true) => None,
        (s, false) => Some(s.unwrap_or(Strategy::Concat)),
    };
    // The modalities' widths are filled in once the content is read.
    model.set_fusion(
        fusion.map(|s| FusionConfig::new(s, vec![]).with_modality_dropout(a.modality_dropout)),
    );
    model.set_completion(a.completion);
    if let Some(f) = a.engagement_weight
        && !(0.0..=1.0).contains(&f)
    {
        bail!("--engagement-weight {f}: the floor is a weight in [0, 1]");
    }
    let loss = match (&model, a.loss) {
        (ModelConfig::Bert4rec(_), Loss::Bce { .. }) => {
            bail!("bert4rec trains by cloze; use --loss ce or sampled-softmax")
        }
        (_, l) => l,
    };
    let spec = RunSpec {
        data,
        format: a.format.clone(),
        preset: a.preset.clone(),
        protocol: a.protocol.clone(),
        samples: a.samples.clone(),
        model,
        content: a.content.clone(),
        train: train_config(&a, loss),
        seeds: (0..a.seeds).collect(),
        split_seed: a.split_seed,
        cold: a.cold,
    };
    let how = execution(&a.device_arg, a.jobs)?;
    let r = run(spec, &a.out, &how)?;
    print!("{}", r.to_markdown());
    println!(
        "\nwrote {}/results.json, results.md, curves.svg",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn train_config(a: &TrainArgs, loss: Loss) -> TrainConfig {
    TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        weight_decay: a.weight_decay,
        warmup_steps: a.warmup,
        decay: a.decay,
        grad_clip: (a.grad_clip > 0.0).then_some(a.grad_clip),
        loss,
        patience: a.patience,
        eval_every: a.eval_every,
        valid_metric: a.valid_metric.clone(),
        engagement_floor: a.engagement_weight,
        window_stride: a.window_stride,
        recent_windows: a.recent_windows.map(|n| n as usize),
    }
}

/// The LLM models take everything about the data from `--item-encoder`.
fn refuse_data_flags(a: &TrainArgs, extra: &str) -> anyhow::Result<()> {
    if a.data.is_some()
        || a.samples.is_some()
        || !a.content.is_empty()
        || a.fusion.is_some()
        || a.cold.is_some()
        || !a.sets.is_empty()
    {
        bail!(
            "--model {} takes its data, protocol, samples and content from --item-encoder; drop --data, --samples, --content, --fusion, --cold and --set{extra}",
            a.model
        );
    }
    Ok(())
}

/// The prompt's signals are E4SRec's.
fn refuse_prompt_signals(a: &TrainArgs) -> anyhow::Result<()> {
    use crate::model::e4srec::Signal;
    if a.prompt_completion != Signal::Off
        || a.prompt_tags != Signal::Off
        || a.prompt_tags_from.is_some()
    {
        bail!("--prompt-completion, --prompt-tags and --prompt-tags-from are for --model e4srec");
    }
    Ok(())
}

/// `encore train --model e4srec`: the LLM over a finished run's item table.
fn run_e4srec(a: TrainArgs) -> anyhow::Result<ExitCode> {
    use crate::experiment::e4srec::E4SRecSpec;
    use crate::model::e4srec::E4SRecConfig;
    let (Some(llm), Some(encoder)) = (a.llm.clone(), a.item_encoder.clone()) else {
        bail!(
            "--model e4srec needs --llm GGUF and --item-encoder RUN (a finished encore train run)"
        );
    };
    refuse_data_flags(&a, "")?;
    if a.loss != Loss::Ce || a.engagement_weight.is_some() || a.completion.is_some() {
        bail!("--model e4srec trains with --loss ce, without --engagement-weight or --completion");
    }
    let config = E4SRecConfig {
        history: a.history.unwrap_or(50),
        lora_rank: a.lora_rank,
        lora_alpha: a.lora_alpha,
        lora_targets: a.lora_targets.clone(),
        completion: a.prompt_completion,
        tags: a.prompt_tags,
        tag_count: a.prompt_tag_count,
        ..E4SRecConfig::default()
    };
    let spec = E4SRecSpec {
        llm,
        llm_sha256: String::new(),
        encoder,
        encoder_seed: a.encoder_seed,
        config,
        train: train_config(&a, Loss::Ce),
        seeds: (0..a.seeds).collect(),
        tags_from: a.prompt_tags_from.clone(),
    };
    let how = execution(&a.device_arg, a.jobs)?;
    let r = crate::experiment::e4srec::run(spec, &a.out, &how)?;
    print!("{}", r.to_markdown());
    println!(
        "\nwrote {}/results.json, results.md, curves.svg",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `encore train --model zeroshot`: the LLM ranks a finished run's candidates by likelihood.
fn run_zeroshot(a: TrainArgs) -> anyhow::Result<ExitCode> {
    use crate::experiment::zeroshot::ZeroShotSpec;
    use crate::llm::likelihood::ZeroShotConfig;
    let (Some(llm), Some(encoder)) = (a.llm.clone(), a.item_encoder.clone()) else {
        bail!(
            "--model zeroshot needs --llm GGUF and --item-encoder RUN (the finished run whose data, protocol and candidates it ranks)"
        );
    };
    refuse_data_flags(&a, " (it trains nothing)")?;
    if a.seeds != 1 {
        bail!("--model zeroshot trains nothing: drop --seeds");
    }
    refuse_prompt_signals(&a)?;
    if a.max_users == Some(0) {
        bail!("--max-users must be at least 1");
    }
    let spec = ZeroShotSpec {
        llm,
        llm_sha256: String::new(),
        encoder,
        config: ZeroShotConfig {
            history: a.history.unwrap_or(20),
            likelihood: a.likelihood,
            max_users: a.max_users,
            ..ZeroShotConfig::default()
        },
        sample_seed: a.split_seed,
    };
    let (device, label) =
        select_device(super::args::parse_device(&a.device_arg).map_err(anyhow::Error::msg)?)?;
    let r = crate::experiment::zeroshot::run(spec, &a.out, &device, &label, progress())?;
    print!("{}", r.to_markdown());
    println!("\nwrote {}/results.json, results.md", a.out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_ablate(a: AblateArgs) -> anyhow::Result<ExitCode> {
    let cfg = crate::experiment::ablate::AblationConfig::read(&a.config)?;
    let root = match &a.root {
        Some(r) => r.clone(),
        None => a
            .config
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    };
    let how = execution(&a.device_arg, a.jobs)?;
    let r = crate::experiment::ablate::ablate(&cfg, &root, &a.out, &how, a.only.as_deref())?;
    print!("{}", r.to_markdown());
    println!(
        "\nwrote {}/ablation.json, ablation.md, ablation.svg",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_train_seed(a: TrainSeedArgs) -> anyhow::Result<ExitCode> {
    let (device, _) = select_device(a.device)?;
    crate::experiment::train_recorded_seed(&a.run, a.seed, &device)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_eval(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let (device, label) = select_device(a.device)?;
    let r = reevaluate(&a.run, &device, &label)?;
    print!("{}", r.to_markdown());
    println!(
        "full-catalogue evaluation: {} users x {} tracks, {:.3e} scores per second on {label}",
        r.protocol.test_cases, r.dataset.items, r.eval_user_items_per_s
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_compare(a: CompareArgs) -> anyhow::Result<ExitCode> {
    let (ra, sa) = seed_ranks(&a.a)?;
    let (rb, sb) = seed_ranks(&a.b)?;
    if ra.dataset.sha256 != rb.dataset.sha256 || ra.protocol.name != rb.protocol.name {
        bail!(
            "the runs differ in data or protocol ({} / {} vs {} / {}): a paired test needs the same cases",
            ra.dataset.name,
            ra.protocol.name,
            rb.dataset.name,
            rb.protocol.name
        );
    }
    let pick =
        |s: &[crate::experiment::results::SeedRanks]| -> anyhow::Result<Vec<crate::eval::Ranks>> {
            s.iter()
                .map(|r| match a.ranking.as_str() {
                    "protocol" => Ok(r.protocol.clone()),
                    "full" => Ok(r.full.clone()),
                    "full-unheard" => Ok(r.full_unheard.clone()),
                    o => bail!("unknown ranking '{o}' (protocol, full, full-unheard)"),
                })
                .collect()
        };
    let metrics: Vec<String> = if a.metrics.is_empty() {
        HEADLINE.iter().map(|s| s.to_string()).collect()
    } else {
        a.metrics.clone()
    };
    for m in &metrics {
        if crate::eval::Ranks::default().values(m).is_none() {
            bail!("unknown metric '{m}' (HR@K, Recall@K, NDCG@K, MRR@K, MRR)");
        }
    }
    let names: Vec<&str> = metrics.iter().map(String::as_str).collect();
    let (pa, pb) = (pick(&sa)?, pick(&sb)?);
    for (run, p) in [(&a.a, &pa), (&a.b, &pb)] {
        if p.iter().all(crate::eval::Ranks::is_empty) {
            bail!(
                "{} has no {} ranking (a zero-shot run ranks only the protocol's candidates)",
                run.display(),
                a.ranking
            );
        }
    }
    let out = compare(&pa, &pb, &names, 0);
    println!(
        "A = {} ({}, {} seeds), B = {} ({}, {} seeds); {} ranking on {}, paired per user (values averaged over seeds)",
        a.a.display(),
        ra.model.name,
        ra.seeds.len(),
        a.b.display(),
        rb.model.name,
        rb.seeds.len(),
        a.ranking,
        ra.dataset.name
    );
    println!(
        "\n| metric | users | A | B | B - A | 95 % CI (bootstrap) | p (bootstrap) | p (Wilcoxon) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for c in &out {
        let t = &c.test;
        println!(
            "| {} | {} | {:.4} | {:.4} | {:+.4} | [{:+.4}, {:+.4}] | {:.4} | {:.4} |",
            c.metric,
            t.n,
            t.mean_a,
            t.mean_b,
            t.diff,
            t.ci95[0],
            t.ci95[1],
            t.p_bootstrap,
            t.p_wilcoxon
        );
    }
    if let Some(p) = &a.json {
        crate::data::ingest::write_json(p, &out)?;
    }
    Ok(ExitCode::SUCCESS)
}
