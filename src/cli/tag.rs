//! `encore tag`: MGPHot genes for every track of a feature store, by a local GGUF model with
//! constrained decoding; results go to a resumable cache and to the store's `mgphot` modality.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::Args;

use super::features::{StoreArgs, open_store, provenance};
use crate::device::DeviceChoice;
use crate::llm::ChatModel;
use crate::llm::generate::ChatTemplate;
use crate::llm::gguf::Gguf;
use crate::llm::llama::Llama;
use crate::llm::tokenizer::BpeTokenizer;
use crate::tagging::cache::{Entry, TagCache};
use crate::tagging::remote::{RemoteTagger, ServerConfig};
use crate::tagging::schema::{genes, tag};
use crate::tagging::tagger::{LocalTagger, PromptMode, Song, Tagger};

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

/// Per store track, what else is known of it for the prompt: the catalog's tags and length
/// (when `catalog` is given and lists the track) and musicnn's strongest tags (when the store
/// has `audio_tags`). `None` where nothing is known.
fn notes(
    store: &crate::features::store::FeatureStore,
    catalog: Option<&std::path::Path>,
) -> anyhow::Result<Vec<Option<String>>> {
    let catalog = catalog.map(super::features::read_catalog).transpose()?;
    // `encore features audio` writes musicnn's MSD tags as `audio_tags`.
    let heard = store.modality("audio_tags").is_some();
    if catalog.is_none() && !heard {
        bail!(
            "--notes needs --catalog or a store with musicnn's audio_tags (encore features audio)"
        );
    }
    Ok(store
        .tracks()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut parts = Vec::new();
            if let Some(c) = catalog
                .as_ref()
                .and_then(|c| c.position(&t.id).map(|p| &c.tracks[p]))
            {
                if !c.tags.is_empty() {
                    parts.push(format!("tagged {}", c.tags.join(", ")));
                }
                if c.duration_s > 0.0 {
                    let s = c.duration_s.round() as u64;
                    parts.push(format!("{}:{:02} long", s / 60, s % 60));
                }
            }
            if let Some(v) = store.get("audio_tags", i) {
                let top: Vec<&str> = crate::features::musicnn::top_tags(v, 5)
                    .into_iter()
                    .map(|(l, _)| l)
                    .collect();
                parts.push(format!("an audio model hears {}", top.join(", ")));
            }
            (!parts.is_empty()).then(|| parts.join("; ") + ".")
        })
        .collect())
}

/// A loaded backend: the tagger, the cache's model key, and what the store's provenance says.
struct Backend<'a> {
    tagger: Box<dyn Tagger + Sync + 'a>,
    key: String,
    name: String,
    sha: String,
    decoding: String,
    workers: usize,
}

/// The local model's parts, kept alive while the tagger borrows them.
struct LocalModel {
    model: Llama,
    tok: BpeTokenizer,
    template: ChatTemplate,
    name: String,
    sha: String,
}

fn load_local(path: &std::path::Path, device: &burn::tensor::Device) -> anyhow::Result<LocalModel> {
    let t0 = Instant::now();
    let (m, sha) = if path.is_dir() {
        ChatModel::from_hf_dir(path, device).map_err(|e| anyhow!("{}: {e}", path.display()))?
    } else {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let sha = crate::util::sha256_hex(&bytes);
        let g = Gguf::parse(bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let m = ChatModel::from_gguf(&g, device).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        (m, sha)
    };
    let template = m
        .info
        .template()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let (cfg, name) = (&m.config, m.info.name.clone());
    eprintln!(
        "{name}: {} layers, width {}, {} heads ({} key/value), loaded in {:.1} s",
        cfg.n_layers,
        cfg.d_model,
        cfg.n_heads,
        cfg.n_kv_heads,
        t0.elapsed().as_secs_f64()
    );
    Ok(LocalModel {
        model: m.model,
        tok: m.info.tok,
        template,
        name,
        sha,
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
    let backend = match &a.backend {
        BackendArgs::Local(path) => {
            let device = crate::device::select(a.device)?.device;
            local = load_local(path, &device)?;
            Backend {
                tagger: Box::new(LocalTagger {
                    model: &local.model,
                    tok: &local.tok,
                    template: local.template,
                    device,
                    mode,
                }),
                key: format!("{}@{}", local.name, &local.sha[..16]),
                name: local.name.clone(),
                sha: local.sha.clone(),
                decoding: if mode == PromptMode::PerGene {
                    "one question per gene, mean of the odds of 0-5, / 5".into()
                } else {
                    "constrained JSON, ratings 0-5 / 5".into()
                },
                workers: 1,
            }
        }
        BackendArgs::Server {
            endpoint,
            model,
            api_key,
            concurrency,
            timeout,
            retries,
        } => {
            let mut cfg = ServerConfig::new(endpoint, model);
            cfg.api_key = api_key.clone();
            cfg.timeout = std::time::Duration::from_secs(*timeout);
            cfg.retries = *retries;
            let tagger = RemoteTagger::new(cfg, mode).map_err(|e| anyhow!(e))?;
            eprintln!(
                "{model} on {}, {concurrency} requests at a time",
                tagger.url()
            );
            Backend {
                tagger: Box::new(tagger),
                key: format!("{model}@server"),
                name: model.clone(),
                sha: String::new(),
                decoding: format!(
                    "chat completions at {endpoint}, JSON schema when the server takes one, ratings 0-5 / 5"
                ),
                workers: *concurrency,
            }
        }
    };
    let model_key = backend.key.clone();
    let notes = if a.notes {
        notes(&store, a.store.catalog.as_deref())?
    } else {
        vec![None; store.tracks().len()]
    };
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
                    notes: notes[i].clone(),
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
        .filter(|(_, s)| cache.get(&s.id, &model_key, &s.version(mode)).is_none())
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
    let (mut tokens, mut done, mut clamped, mut requests) = (0usize, 0usize, 0usize, 0usize);
    let mut failed: Vec<String> = Vec::new();
    // Workers ask; this thread alone writes the cache, so a kill loses at most the answers in
    // flight. Several failures in a row (a server that went away) stop the dispatch.
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let give_up = backend.workers.max(3);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..backend.workers.min(todo.len()) {
            let tx = tx.clone();
            let (todo, next, stop, tagger) = (&todo, &next, &stop, &backend.tagger);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, song)) = todo.get(n) else { break };
                    if tx.send((n, tagger.tag(song))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut in_a_row = 0;
        for (n, result) in rx {
            let song = &todo[n].1;
            match result {
                Ok(t) => {
                    in_a_row = 0;
                    done += 1;
                    tokens += t.counts.prompt_tokens + t.counts.generated;
                    clamped += t.clamped;
                    requests += t.requests;
                    cache
                        .put(Entry {
                            track: song.id.clone(),
                            model: model_key.clone(),
                            prompt: song.version(mode),
                            values: t.values,
                        })
                        .map_err(|e| anyhow!(e))?;
                }
                Err(e) => {
                    in_a_row += 1;
                    bar.suspend(|| {
                        eprintln!("{} - {} ({}): {e}", song.artist, song.title, song.id)
                    });
                    failed.push(song.id.clone());
                    if in_a_row >= give_up && !stop.swap(true, Ordering::Relaxed) {
                        bar.suspend(|| eprintln!("{in_a_row} failures in a row: stopping"));
                    }
                }
            }
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{:.1} tracks/min, {:.0} tokens/s",
                done as f64 * 60.0 / secs,
                tokens as f64 / secs
            ));
            bar.inc(1);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if done > 0 {
        println!(
            "tagged {done} tracks in {secs:.1} s: {:.1} tracks/min, {:.0} tokens/s",
            done as f64 * 60.0 / secs.max(1e-9),
            tokens as f64 / secs.max(1e-9)
        );
    }
    if requests > 0 {
        println!(
            "{requests} requests ({} answers asked again), {clamped} values outside 0-5 clamped",
            requests.saturating_sub(done * mode.groups().len())
        );
    }
    // Everything the cache holds for this model and prompt goes into the store; the other
    // tracks are cleared.
    let all = genes();
    let labels: Vec<String> = all.iter().map(|g| g.name.to_string()).collect();
    let version = mode.version();
    let prov = provenance(
        &backend.name,
        &version,
        &backend.sha,
        serde_json::json!({"prompt": version, "notes": a.notes, "decoding": backend.decoding}),
    );
    store
        .ensure_modality("mgphot", all.len(), prov, Some(labels))
        .map_err(|e| anyhow!(e))?;
    let mut written = 0;
    for (i, song) in &songs {
        if let Some(v) = cache.get(&song.id, &model_key, &song.version(mode)) {
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
        } else {
            // A value from another model or prompt must not stand beside this one's.
            store.clear("mgphot", *i);
        }
    }
    store.save(&a.store.store).map_err(|e| anyhow!(e))?;
    println!(
        "wrote mgphot (58 genes) for {written} tracks to {}",
        a.store.store.display()
    );
    let not_tagged = todo.len() - done;
    if not_tagged > 0 {
        eprintln!(
            "{not_tagged} tracks not tagged ({} failed); run the same command again to retry them",
            failed.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
