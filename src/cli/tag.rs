//! `encore tag`: MGPHot genes for every track of a feature store, by a local GGUF model with
//! constrained decoding; results go to a resumable cache and to the store's `mgphot` modality.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::Args;

use super::features::{StoreArgs, open_store, provenance};
use crate::device::DeviceChoice;
use crate::llm::generate::ChatTemplate;
use crate::llm::gguf::{Gguf, Value};
use crate::llm::llama::Llama;
use crate::llm::tokenizer::BpeTokenizer;
use crate::tagging::cache::{Entry, TagCache};
use crate::tagging::schema::{genes, tag};
use crate::tagging::tagger::{LocalTagger, PromptMode, Song};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TagArgs {
    #[command(subcommand)]
    command: Option<TagCommand>,
    /// Feature store folder (created when missing); its tracks' artist and title are asked about
    #[arg(long)]
    store: Option<PathBuf>,
    /// A new store takes its tracks from this catalog.json
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// A new store takes its tracks from this TSV: id<TAB>artist<TAB>title per line
    #[arg(long)]
    tracks: Option<PathBuf>,
    /// A new store takes its tracks from this prepared dataset folder (`encore data ingest`)
    #[arg(long)]
    data: Option<PathBuf>,
    /// A GGUF model (Llama architecture: SmolLM2, Llama 3.x, Qwen2.5)
    #[arg(long)]
    model: Option<PathBuf>,
    /// One prompt per gene category (the MGPHot paper's way) instead of all 58 genes at once
    #[arg(long)]
    per_category: bool,
    /// Result cache (JSON lines) [default: STORE/mgphot-cache.jsonl]
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Tag at most this many tracks not yet in the cache
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value = "cpu", value_parser = super::parse_device)]
    device: DeviceChoice,
}

struct RunArgs {
    store: StoreArgs,
    model: PathBuf,
    per_category: bool,
    cache: Option<PathBuf>,
    limit: Option<usize>,
    device: DeviceChoice,
}

#[derive(clap::Subcommand, Debug)]
enum TagCommand {
    /// Agreement of the store's mgphot genes with reference values: Spearman rho and MAE per gene and category
    Validate(ValidateArgs),
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// Feature store with an mgphot modality (from `encore tag`)
    #[arg(long)]
    store: PathBuf,
    /// Reference genes: CSV/TSV (`id,v1..v58` or `artist,title,v1..v58` with a header) or JSONL
    /// (`{"id", "vector": [58 values in 0-1]}`), MGPHot's 58 values per track
    #[arg(long)]
    reference: PathBuf,
    /// Also write the scores as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
}

fn validate(a: ValidateArgs) -> anyhow::Result<ExitCode> {
    let store = crate::features::store::FeatureStore::load(&a.store).map_err(|e| anyhow!(e))?;
    let pred = store
        .modality("mgphot")
        .with_context(|| format!("{}: no mgphot modality (run encore tag)", a.store.display()))?;
    let rows = crate::features::import::read_vectors(&a.reference, None).map_err(|e| anyhow!(e))?;
    let mut pairs = Vec::new();
    let (mut unknown, mut untagged) = (0, 0);
    for (line, key, v) in rows {
        crate::features::tags::check_known_modality("mgphot", &v)
            .map_err(|e| anyhow!("{}:{line}: {e}", a.reference.display()))?;
        match store.resolve(&key) {
            None => unknown += 1,
            Some(t) if !pred.present[t] => untagged += 1,
            Some(t) => pairs.push((pred.values[t * 58..(t + 1) * 58].to_vec(), v)),
        }
    }
    if pairs.len() < 2 {
        bail!(
            "{}: {} reference tracks are tagged in {} (at least 2 are needed; {unknown} unknown, {untagged} untagged)",
            a.reference.display(),
            pairs.len(),
            a.store.display()
        );
    }
    let r = crate::tagging::validate::validate(&pairs);
    print!("{}", r.to_markdown());
    println!("(reference rows skipped: {unknown} not in the store, {untagged} without mgphot)");
    if let Some(p) = &a.json {
        crate::data::ingest::write_json(p, &r)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(a: TagArgs) -> anyhow::Result<ExitCode> {
    if let Some(TagCommand::Validate(v)) = a.command {
        return validate(v);
    }
    let (Some(store), Some(model)) = (a.store, a.model) else {
        bail!("encore tag needs --store and --model (or: encore tag validate ...)");
    };
    tag_tracks(RunArgs {
        store: StoreArgs {
            store,
            catalog: a.catalog,
            tracks: a.tracks,
            data: a.data,
        },
        model,
        per_category: a.per_category,
        cache: a.cache,
        limit: a.limit,
        device: a.device,
    })
}

fn tag_tracks(a: RunArgs) -> anyhow::Result<ExitCode> {
    let model_path = a.model.clone();
    let mut store = open_store(&a.store, false)?;
    let bytes = std::fs::read(&model_path).with_context(|| model_path.display().to_string())?;
    let sha = crate::data::sha256_hex(&bytes);
    let g = Gguf::parse(bytes).map_err(|e| anyhow!("{}: {e}", model_path.display()))?;
    let name = g
        .get("general.name")
        .and_then(Value::as_str)
        .unwrap_or("model")
        .to_string();
    let model_key = format!("{name}@{}", &sha[..16]);
    let tok = BpeTokenizer::from_gguf(&g).map_err(|e| anyhow!("{}: {e}", model_path.display()))?;
    let template = g
        .get("tokenizer.chat_template")
        .and_then(Value::as_str)
        .and_then(ChatTemplate::detect)
        .with_context(|| {
            format!(
                "{}: no ChatML or Llama 3 chat template in its metadata",
                model_path.display()
            )
        })?;
    let device = crate::device::select(a.device)?.device;
    let t0 = Instant::now();
    let (model, cfg) =
        Llama::from_gguf(&g, &device).map_err(|e| anyhow!("{}: {e}", model_path.display()))?;
    drop(g);
    eprintln!(
        "{name}: {} layers, width {}, {} heads ({} key/value), loaded in {:.1} s",
        cfg.n_layers,
        cfg.d_model,
        cfg.n_heads,
        cfg.n_kv_heads,
        t0.elapsed().as_secs_f64()
    );
    let mode = if a.per_category {
        PromptMode::PerCategory
    } else {
        PromptMode::AllAtOnce
    };
    let version = mode.version();
    let cache_path = a
        .cache
        .clone()
        .unwrap_or_else(|| a.store.store.join("mgphot-cache.jsonl"));
    let mut cache = TagCache::open(&cache_path).map_err(|e| anyhow!(e))?;
    if cache.dropped > 0 {
        eprintln!(
            "{}: dropped a line cut short by an interrupted run ({} bytes)",
            cache_path.display(),
            cache.dropped
        );
    }
    let tagger = LocalTagger {
        model: &model,
        tok: &tok,
        template,
        device,
        mode,
    };
    let songs: Vec<(usize, Song)> = store
        .tracks()
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.title.is_empty())
        .map(|(i, t)| {
            (
                i,
                Song {
                    id: t.id.clone(),
                    artist: if t.artist.is_empty() {
                        "an unknown artist".into()
                    } else {
                        t.artist.clone()
                    },
                    title: t.title.clone(),
                },
            )
        })
        .collect();
    if songs.is_empty() {
        bail!(
            "{}: no track has a title to ask about",
            a.store.store.display()
        );
    }
    let mut todo: Vec<&(usize, Song)> = songs
        .iter()
        .filter(|(_, s)| cache.get(&s.id, &model_key, &version).is_none())
        .collect();
    let cached = songs.len() - todo.len();
    todo.truncate(a.limit.unwrap_or(usize::MAX));
    eprintln!(
        "{} tracks with a title, {cached} already in {}, tagging {}",
        songs.len(),
        cache_path.display(),
        todo.len()
    );
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(todo.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(indicatif::ProgressStyle::with_template(
        "tagging [{bar:30}] {pos}/{len} {msg}",
    )?);
    let started = Instant::now();
    let mut tokens = 0usize;
    for (n, (_, song)) in todo.iter().enumerate() {
        let t = tagger
            .tag(song)
            .map_err(|e| anyhow!("{} ({}): {e}", song.title, song.id))?;
        tokens += t.counts.prompt_tokens + t.counts.generated;
        cache
            .put(Entry {
                track: song.id.clone(),
                model: model_key.clone(),
                prompt: version.clone(),
                values: t.values,
            })
            .map_err(|e| anyhow!(e))?;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{:.1} tracks/min, {:.0} tokens/s",
            (n + 1) as f64 * 60.0 / secs,
            tokens as f64 / secs
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if !todo.is_empty() {
        println!(
            "tagged {} tracks in {secs:.1} s: {:.1} tracks/min, {:.0} tokens/s",
            todo.len(),
            todo.len() as f64 * 60.0 / secs.max(1e-9),
            tokens as f64 / secs.max(1e-9)
        );
    }
    // Everything the cache holds for this model and prompt goes into the store.
    let all = genes();
    let labels: Vec<String> = all.iter().map(|g| g.name.to_string()).collect();
    let prov = provenance(
        &name,
        &version,
        &sha,
        serde_json::json!({"prompt": version, "decoding": "constrained JSON, ratings 0-5 / 5"}),
    );
    store
        .ensure_modality("mgphot", all.len(), prov, Some(labels))
        .map_err(|e| anyhow!(e))?;
    let mut written = 0;
    for (i, song) in &songs {
        if let Some(v) = cache.get(&song.id, &model_key, &version) {
            let v = v.to_vec();
            crate::features::tags::check_known_modality("mgphot", &v).map_err(|e| anyhow!(e))?;
            store.set("mgphot", *i, &v).map_err(|e| anyhow!(e))?;
            written += 1;
            let mut top: Vec<(f32, String)> = all
                .iter()
                .filter_map(|g| tag(g, v[g.index]).map(|t| (v[g.index], t)))
                .filter(|(x, _)| *x >= 0.66)
                .collect();
            top.sort_by(|a, b| b.0.total_cmp(&a.0));
            let top: Vec<String> = top.into_iter().take(6).map(|(_, t)| t).collect();
            println!("{} - {}: {}", song.artist, song.title, top.join(", "));
        }
    }
    store.save(&a.store.store).map_err(|e| anyhow!(e))?;
    println!(
        "wrote mgphot (58 genes) for {written} tracks to {}",
        a.store.store.display()
    );
    Ok(ExitCode::SUCCESS)
}
