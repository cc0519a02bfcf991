//! `encore catalog` (build a catalog from audio folders, simulate sessions over it) and
//! `encore export` (a model bundle for the web app).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};

use crate::bundle;
use crate::catalog::Catalog;
use crate::catalog::build::{build, read_spec};
use crate::catalog::simulate::{SimConfig, simulate, write_inter, write_items};
use crate::experiment::export::{self, ExportOptions};
use crate::util::fsio::write_atomic;

#[derive(Args, Debug)]
pub struct CatalogArgs {
    #[command(subcommand)]
    command: CatalogCommand,
}

#[derive(Subcommand, Debug)]
enum CatalogCommand {
    /// Read the audio folders a TOML spec names (tags, durations) and write catalog.json beside
    /// the audio
    Build(BuildArgs),
    /// Simulate listening sessions from a catalog's content (a RecBole .inter log)
    Simulate(SimulateArgs),
}

#[derive(Args, Debug)]
struct BuildArgs {
    /// The catalog spec (see models/demo.toml)
    #[arg(long)]
    spec: PathBuf,
    /// Folder the spec's source paths are relative to [default: $ENCORE_ASSETS, else $ENCORE_CACHE/assets]
    #[arg(long)]
    assets: Option<PathBuf>,
    /// Output folder: catalog.json and audio/
    #[arg(long, short)]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct SimulateArgs {
    /// catalog.json
    catalog: PathBuf,
    /// Output .inter file (a `.item` file of the same stem beside it names the tracks and
    /// gives their durations)
    #[arg(long, short)]
    out: PathBuf,
    #[arg(long, default_value_t = 400)]
    listeners: usize,
    #[arg(long, default_value_t = 6)]
    sessions: usize,
    /// Mean session length (plays)
    #[arg(long, default_value_t = 8.0)]
    session_len: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run folder from `encore train` (an E4SRec run gives an E4SRec bundle: its item
    /// encoder's bundle plus the trained parts and the LLM's GGUF)
    run: PathBuf,
    /// The catalog the run's track ids come from
    #[arg(long)]
    catalog: PathBuf,
    /// Weight format: none (float32), q8 or q4 (burn's post-training quantization, blocks of 64;
    /// an E4SRec bundle's trained parts: none or q8); a quantized export prints its test
    /// metrics beside the float model's
    #[arg(long, default_value = "none")]
    quantize: String,
    /// Which seed's model [default: the run's first seed]
    #[arg(long)]
    seed: Option<u64>,
    /// Name shown in the app [default: the output folder's name]
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Record that the training log was simulated (the app says so)
    #[arg(long)]
    simulated: bool,
    /// Output bundle folder (its parent's index.json lists it)
    #[arg(long, short)]
    out: PathBuf,
    /// Also write the float32 weights as safetensors named by module path (e.g.
    /// `encoder.layers.0.mha.query.weight`), for other runtimes (scripts/bench/onnx_sasrec.py)
    #[arg(long)]
    tensors: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RecommendArgs {
    /// A bundle folder written by `encore export`
    bundle: PathBuf,
    /// The history, oldest first: catalog track ids, comma-separated (none: the most played)
    #[arg(long, value_delimiter = ',')]
    history: Vec<String>,
    /// How much of each history play was heard, 0..1, comma-separated, one per play (a model
    /// that reads completion uses them; none: unknown)
    #[arg(long, value_delimiter = ',')]
    completions: Vec<f32>,
    /// How many tracks
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Print JSON (`tracks`: catalog indices, `ids`, `scores`) instead of a table
    #[arg(long)]
    json: bool,
    /// auto, cpu, wgpu or cuda
    #[arg(long, default_value = "cpu", value_parser = super::args::parse_device)]
    device: crate::device::DeviceChoice,
}

pub(crate) fn default_assets() -> PathBuf {
    if let Some(a) = std::env::var_os("ENCORE_ASSETS") {
        return PathBuf::from(a);
    }
    std::env::var_os("ENCORE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/encore")))
        .unwrap_or_else(|| PathBuf::from(".cache/encore"))
        .join("assets")
}

pub fn run(args: CatalogArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CatalogCommand::Build(a) => {
            let spec = read_spec(&a.spec)?;
            let assets = a.assets.unwrap_or_else(default_assets);
            let bar = indicatif::ProgressBar::new_spinner();
            let (catalog, skipped) = build(&spec, &assets, &a.out, |p| {
                bar.set_message(
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                );
                bar.tick();
            })?;
            bar.finish_and_clear();
            let path = a.out.join("catalog.json");
            let text = serde_json::to_string_pretty(&catalog)?;
            write_atomic(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
            let minutes: f64 = catalog.tracks.iter().map(|t| t.duration_s).sum::<f64>() / 60.0;
            println!(
                "{}: {} tracks, {:.0} minutes, {} artists",
                path.display(),
                catalog.tracks.len(),
                minutes,
                catalog
                    .tracks
                    .iter()
                    .map(|t| &t.artist)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            );
            for s in &skipped {
                eprintln!("skipped {}: {}", s.path.display(), s.reason);
            }
            Ok(if skipped.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        CatalogCommand::Simulate(a) => {
            let text = std::fs::read_to_string(&a.catalog)
                .with_context(|| a.catalog.display().to_string())?;
            let catalog: Catalog =
                serde_json::from_str(&text).with_context(|| a.catalog.display().to_string())?;
            if catalog.tracks.len() < 2 {
                bail!(
                    "{}: a catalog needs at least two tracks",
                    a.catalog.display()
                );
            }
            let cfg = SimConfig {
                listeners: a.listeners,
                sessions_per_listener: a.sessions,
                session_len: a.session_len,
                seed: a.seed,
                ..SimConfig::default()
            };
            let plays = simulate(&catalog, &cfg);
            write_atomic(&a.out.with_extension("item"), |w| write_items(&catalog, w))?;
            write_atomic(&a.out, |w| write_inter(&catalog, &plays, w))?;
            let skips = plays.iter().filter(|p| p.completion < 0.5).count();
            println!(
                "{}: {} plays by {} listeners ({:.0} % under half heard)",
                a.out.display(),
                plays.len(),
                a.listeners,
                100.0 * skips as f64 / plays.len().max(1) as f64
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run_export(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let opts = ExportOptions {
        run: a.run,
        seed: a.seed,
        catalog: a.catalog,
        quantize: a.quantize,
        out: a.out.clone(),
        name: a.name,
        description: a.description,
        simulated: a.simulated,
        tensors: a.tensors,
    };
    let manifest = export::export(&opts)?;
    let index = export::register(&a.out, &manifest)?;
    println!(
        "{} ({}): {}",
        a.out.display(),
        manifest.quantization,
        manifest.description
    );
    for f in &manifest.files {
        println!(
            "  {:<14} {:>10} bytes  sha256 {}",
            f.path,
            f.bytes,
            &f.sha256[..16]
        );
    }
    if let Some(q) = &manifest.quantization_effect {
        println!(
            "  weights {} -> {} bytes ({:.2}x); test metrics ({}), float32 -> {}:",
            q.bytes[0],
            q.bytes[1],
            q.bytes[1] as f64 / q.bytes[0] as f64,
            q.protocol,
            manifest.quantization
        );
        for (m, [a, b]) in &q.metrics {
            println!(
                "    {m:<8} {a:.4} -> {b:.4} ({:+.2} %)",
                100.0 * (b - a) / a
            );
        }
    }
    println!("listed in {}", index.display());
    Ok(ExitCode::SUCCESS)
}

/// `encore recommend`: loads a bundle as the app does (files checked against the manifest, an
/// E4SRec bundle's LLM attached) and prints the next tracks after a history.
pub fn run_recommend(a: RecommendArgs) -> anyhow::Result<ExitCode> {
    let read = |name: &str| -> anyhow::Result<Vec<u8>> {
        let p = a.bundle.join(name);
        std::fs::read(&p).map_err(|e| anyhow!("{}: {e}", p.display()))
    };
    let manifest = bundle::Manifest::parse(&read("manifest.json")?)
        .map_err(|e| anyhow!("{}/{e}", a.bundle.display()))?;
    let sel = crate::device::select(a.device)?;
    let mut rec = bundle::open(
        &manifest,
        &read("config.json")?,
        &read("catalog.json")?,
        read("model.bpk")?,
        &sel.device,
    )
    .map_err(|e| anyhow!("{}/{e}", a.bundle.display()))?;
    if let Some(part) = rec.config.e4srec.clone() {
        rec.attach_e4srec(&manifest, &read(&part.trained)?, read(&part.llm)?)
            .map_err(|e| anyhow!("{}/{e}", a.bundle.display()))?;
    }
    let history: Vec<usize> = a
        .history
        .iter()
        .map(|id| {
            rec.catalog.position(id).ok_or_else(|| {
                anyhow!(
                    "--history: '{id}' is not in {}/catalog.json",
                    a.bundle.display()
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    if !a.completions.is_empty() && a.completions.len() != history.len() {
        bail!(
            "--completions: {} ratios for {} history plays",
            a.completions.len(),
            history.len()
        );
    }
    if let Some(c) = a.completions.iter().find(|c| !(0.0..=1.0).contains(*c)) {
        bail!("--completions: {c} is not a ratio between 0 and 1");
    }
    let completions = (!a.completions.is_empty()).then_some(&a.completions[..]);
    let list = pollster::block_on(rec.recommend_with(&history, completions, &[], a.k))?;
    if a.json {
        let v = serde_json::json!({
            "bundle": manifest.name,
            "tracks": list.iter().map(|r| r.track).collect::<Vec<_>>(),
            "ids": list.iter().map(|r| rec.catalog.tracks[r.track].id.clone()).collect::<Vec<_>>(),
            "scores": list.iter().map(|r| r.score).collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} after {} plays ({})",
        manifest.name,
        list.len(),
        history.len(),
        if rec.ranks_with_llm() {
            "the LLM ranks"
        } else {
            "the sequence model ranks"
        }
    );
    println!("| # | score | track | artist | title |");
    println!("|---|---|---|---|---|");
    for (i, r) in list.iter().enumerate() {
        let t = &rec.catalog.tracks[r.track];
        println!(
            "| {} | {:.4} | {} | {} | {} |",
            i + 1,
            r.score,
            t.id,
            t.artist,
            t.title
        );
    }
    Ok(ExitCode::SUCCESS)
}
