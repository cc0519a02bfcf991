//! `encore tag`: MGPHot genes for every track of a feature store, by a local GGUF model with
//! constrained decoding; results go to a resumable cache and to the store's `mgphot` modality.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;

use super::features::{StoreArgs, open_store};
use crate::device::DeviceChoice;
use crate::tagging::remote::ServerConfig;
use crate::tagging::run::{Backend, LocalModel, TagEvent, TagOptions, TagReport, tag_store};
use crate::tagging::tagger::PromptMode;

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
    /// A GGUF model or a Hugging Face checkpoint folder (safetensors, config.json,
    /// tokenizer.json; Llama architecture: SmolLM2, Llama 3.x, Qwen2.5), or with --endpoint the
    /// name of the server's model
    #[arg(long)]
    model: Option<PathBuf>,
    /// An OpenAI-compatible chat-completions server (llama.cpp, vLLM, Ollama), e.g.
    /// http://127.0.0.1:8080/v1; --model then names the server's model
    #[arg(long)]
    endpoint: Option<String>,
    /// Bearer token for the server
    #[arg(long, env = "ENCORE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Requests in flight at once (server only)
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds one request may take (server only)
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Further attempts after a failed request: transport errors, timeouts, 429, 5xx, or an
    /// answer that lacks genes (server only)
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// One prompt per gene category (the MGPHot paper's way) instead of all 58 genes at once
    #[arg(long)]
    per_category: bool,
    /// One question per gene after a shared description of the song, storing the mean of the
    /// model's odds over 0-5 (for small local models, whose answers to many genes at once copy
    /// each other)
    #[arg(long, conflicts_with = "per_category")]
    per_gene: bool,
    /// Result cache (JSON lines) [default: STORE/mgphot-cache.jsonl]
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Tag at most this many tracks not yet in the cache
    #[arg(long)]
    limit: Option<usize>,
    /// Tell the model what else is known of each track (for music it cannot know by name): its
    /// catalog tags and length (with --catalog) and the strongest musicnn tags when the store
    /// has `audio_tags` (`encore features audio`)
    #[arg(long)]
    notes: bool,
    #[arg(long, default_value = "cpu", value_parser = super::args::parse_device)]
    device: DeviceChoice,
}

struct RunArgs {
    store: StoreArgs,
    backend: BackendArgs,
    per_category: bool,
    per_gene: bool,
    cache: Option<PathBuf>,
    limit: Option<usize>,
    notes: bool,
    device: DeviceChoice,
}

/// Which model answers: a local GGUF file or a model on a chat-completions server.
enum BackendArgs {
    Local(PathBuf),
    Server {
        endpoint: String,
        model: String,
        api_key: Option<String>,
        concurrency: usize,
        timeout: u64,
        retries: u32,
    },
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
    let store = crate::features::store::FeatureStore::load(&a.store)?;
    let pred = store
        .modality("mgphot")
        .with_context(|| format!("{}: no mgphot modality (run encore tag)", a.store.display()))?;
    let rows = crate::features::import::read_vectors(&a.reference, None)?;
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
        bail!(
            "encore tag needs --store and --model (a GGUF file, or a server's model name with --endpoint), or: encore tag validate ..."
        );
    };
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let backend = match a.endpoint {
        None => BackendArgs::Local(model),
        Some(endpoint) => BackendArgs::Server {
            endpoint,
            model: model.to_string_lossy().into_owned(),
            api_key: a.api_key,
            concurrency: a.concurrency,
            timeout: a.timeout,
            retries: a.retries,
        },
    };
    tag_tracks(RunArgs {
        store: StoreArgs {
            store,
            catalog: a.catalog,
            tracks: a.tracks,
            data: a.data,
        },
        backend,
        per_category: a.per_category,
        per_gene: a.per_gene,
        cache: a.cache,
        limit: a.limit,
        notes: a.notes,
        device: a.device,
    })
}

fn tag_tracks(a: RunArgs) -> anyhow::Result<ExitCode> {
    let mut store = open_store(&a.store, false)?;
    let mode = if a.per_gene {
        PromptMode::PerGene
    } else if a.per_category {
        PromptMode::PerCategory
    } else {
        PromptMode::AllAtOnce
    };
    let local;
    let backend = match a.backend {
        BackendArgs::Local(path) => {
            let device = crate::device::select(a.device)?.device;
            local = LocalModel::load(&path, &device)?;
            let cfg = &local.config;
            eprintln!(
                "{}: {} layers, width {}, {} heads ({} key/value), loaded in {:.1} s",
                local.name, cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, local.load_s
            );
            Backend::local(&local, device, mode)
        }
        BackendArgs::Server {
            endpoint,
            model,
            api_key,
            concurrency,
            timeout,
            retries,
        } => {
            let mut cfg = ServerConfig::new(&endpoint, &model);
            cfg.api_key = api_key;
            cfg.timeout = std::time::Duration::from_secs(timeout);
            cfg.retries = retries;
            let backend = Backend::server(cfg, mode, concurrency)?;
            let url = backend.url.as_deref().unwrap_or_default();
            eprintln!("{model} on {url}, {concurrency} requests at a time");
            backend
        }
    };
    let catalog = match (a.notes, &a.store.catalog) {
        (true, Some(c)) => Some(super::features::read_catalog(c)?),
        _ => None,
    };
    let opts = TagOptions {
        cache: a
            .cache
            .unwrap_or_else(|| a.store.store.join("mgphot-cache.jsonl")),
        store_dir: a.store.store,
        mode,
        limit: a.limit,
        notes: a.notes,
        catalog,
        progress: true,
    };
    let r = tag_store(&mut store, &backend, &opts, print_event)?;
    print_report(&r, &opts)
}

/// What happens while tagging, on stderr.
fn print_event(e: &TagEvent) {
    match e {
        TagEvent::CacheRepaired { cache, bytes } => eprintln!(
            "{}: dropped a line cut short by an interrupted run ({bytes} bytes)",
            cache.display()
        ),
        TagEvent::Planned {
            with_title,
            cached,
            to_tag,
            cache,
        } => eprintln!(
            "{with_title} tracks with a title, {cached} already in {}, tagging {to_tag}",
            cache.display()
        ),
        TagEvent::Failed { song, error } => {
            eprintln!("{} - {} ({}): {error}", song.artist, song.title, song.id)
        }
        TagEvent::Stopping { in_a_row } => eprintln!("{in_a_row} failures in a row: stopping"),
    }
}

/// The run's speed, each track's strongest genes, and what was not tagged; a failure when some
/// tracks were not tagged.
fn print_report(r: &TagReport, opts: &TagOptions) -> anyhow::Result<ExitCode> {
    if r.tagged > 0 {
        println!(
            "tagged {} tracks in {:.1} s: {}",
            r.tagged,
            r.seconds,
            r.speed()
        );
    }
    if r.requests > 0 {
        println!(
            "{} requests ({} answers asked again), {} values outside 0-5 clamped",
            r.requests, r.asked_again, r.clamped
        );
    }
    for t in &r.written {
        println!("{} - {}: {}", t.artist, t.title, t.strongest.join(", "));
    }
    println!(
        "wrote mgphot (58 genes) for {} tracks to {}",
        r.written.len(),
        opts.store_dir.display()
    );
    if r.not_tagged > 0 {
        eprintln!(
            "{} tracks not tagged ({} failed); run the same command again to retry them",
            r.not_tagged,
            r.failed.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
