//! Tagging a feature store's tracks (native): every track with a title is asked about by a
//! backend (a local model or a chat-completions server, several requests in flight), each answer
//! goes to the resumable cache as it comes, and then everything the cache holds for this model
//! and prompt goes to the store's `mgphot` modality (58 genes); the other tracks are cleared.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

use burn::tensor::Device;

use super::cache::{Entry, TagCache};
use super::error::TagError;
use super::remote::{RemoteTagger, ServerConfig};
use super::schema::{genes, tag};
use super::tagger::{LocalTagger, PromptMode, Song, Tagged, Tagger};
use crate::catalog::Catalog;
use crate::features::store::{FeatureStore, Provenance};
use crate::llm::generate::ChatTemplate;
use crate::llm::gguf::Gguf;
use crate::llm::llama::{Llama, LlamaConfig};
use crate::llm::tokenizer::BpeTokenizer;
use crate::llm::{ChatModel, LlmError};

/// Genes at least this strong (0-1) are named when a track's genes are written.
const STRONG_GENE: f32 = 0.66;
/// At most this many strong genes are named per track.
const GENES_NAMED: usize = 6;

/// A local chat model's parts, kept alive while a [`Backend`] borrows them.
pub struct LocalModel {
    pub model: Llama,
    pub tok: BpeTokenizer,
    pub template: ChatTemplate,
    pub config: LlamaConfig,
    pub name: String,
    /// sha256 of the weights.
    pub sha: String,
    /// Seconds the loading took.
    pub load_s: f64,
}

impl LocalModel {
    /// A GGUF file or a Hugging Face checkpoint folder, on `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, TagError> {
        let t0 = Instant::now();
        let at = |e: LlmError| e.in_file(path);
        let (m, sha) = if path.is_dir() {
            ChatModel::from_hf_dir(path, device).map_err(at)?
        } else {
            let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
            let sha = crate::util::sha256_hex(&bytes);
            let g = Gguf::parse(bytes).map_err(|source| LlmError::Gguf {
                path: path.to_path_buf(),
                source,
            })?;
            let m = ChatModel::from_gguf(&g, device).map_err(at)?;
            (m, sha)
        };
        let template = m.info.template().map_err(at)?;
        Ok(Self {
            model: m.model,
            tok: m.info.tok,
            template,
            config: m.config,
            name: m.info.name,
            sha,
            load_s: t0.elapsed().as_secs_f64(),
        })
    }
}

/// A loaded backend: the tagger, the cache's model key, and what the store's provenance says.
pub struct Backend<'a> {
    pub tagger: Box<dyn Tagger + Sync + 'a>,
    /// The model's key in the cache (`name@sha` for a local model, `name@server`).
    pub key: String,
    pub name: String,
    /// sha256 of the weights (empty for a server).
    pub sha: String,
    /// How answers are decoded, in words.
    pub decoding: String,
    /// Requests in flight at once.
    pub workers: usize,
    /// The chat-completions URL, for a server.
    pub url: Option<String>,
}

impl<'a> Backend<'a> {
    /// A local model on `device`, one request at a time.
    pub fn local(model: &'a LocalModel, device: Device, mode: PromptMode) -> Self {
        Backend {
            tagger: Box::new(LocalTagger {
                model: &model.model,
                tok: &model.tok,
                template: model.template,
                device,
                mode,
            }),
            key: format!("{}@{}", model.name, &model.sha[..16]),
            name: model.name.clone(),
            sha: model.sha.clone(),
            decoding: if mode == PromptMode::PerGene {
                "one question per gene, mean of the odds of 0-5, / 5".into()
            } else {
                "constrained JSON, ratings 0-5 / 5".into()
            },
            workers: 1,
            url: None,
        }
    }

    /// A model on a chat-completions server, `concurrency` requests at a time.
    pub fn server(
        cfg: ServerConfig,
        mode: PromptMode,
        concurrency: usize,
    ) -> Result<Self, TagError> {
        let (endpoint, model) = (cfg.endpoint.clone(), cfg.model.clone());
        let tagger = RemoteTagger::new(cfg, mode)?;
        let url = tagger.url().to_string();
        Ok(Backend {
            tagger: Box::new(tagger),
            key: format!("{model}@server"),
            name: model,
            sha: String::new(),
            decoding: format!(
                "chat completions at {endpoint}, JSON schema when the server takes one, ratings 0-5 / 5"
            ),
            workers: concurrency,
            url: Some(url),
        })
    }
}

/// What [`tag_store`] does besides asking.
#[derive(Clone, Debug)]
pub struct TagOptions {
    /// The store's folder: the store is saved there.
    pub store_dir: PathBuf,
    /// The result cache (JSON lines).
    pub cache: PathBuf,
    pub mode: PromptMode,
    /// Tag at most this many tracks not yet in the cache.
    pub limit: Option<usize>,
    /// Tell the model what else is known of each track (see [`track_notes`]).
    pub notes: bool,
    /// The catalog the store's tracks came from, for the notes.
    pub catalog: Option<Catalog>,
    /// Draw a progress bar on stderr when it is a terminal.
    pub progress: bool,
}

/// What happens while tagging, for the caller to show.
#[derive(Debug)]
pub enum TagEvent<'a> {
    /// The cache ended in a line cut short by an interrupted run, which was dropped.
    CacheRepaired { cache: &'a Path, bytes: usize },
    /// Before asking: tracks with a title, how many the cache has, how many will be asked.
    Planned {
        with_title: usize,
        cached: usize,
        to_tag: usize,
        cache: &'a Path,
    },
    /// A track could not be tagged.
    Failed { song: &'a Song, error: &'a TagError },
    /// Failures in a row: no more tracks are asked about.
    Stopping { in_a_row: usize },
}

/// A track whose genes went into the store, with its strongest genes' tags.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackGenes {
    pub artist: String,
    pub title: String,
    pub strongest: Vec<String>,
}

/// What a run of [`tag_store`] did.
#[derive(Clone, Debug, Default)]
pub struct TagReport {
    /// Tracks tagged in this run, and the seconds it took.
    pub tagged: usize,
    pub seconds: f64,
    /// Tokens through the model (prompt and generated).
    pub tokens: usize,
    /// Values outside 0-5 in free-form answers, clamped.
    pub clamped: usize,
    /// Requests made, retries included (servers only).
    pub requests: usize,
    /// Answers asked again: requests beyond one per prompt.
    pub asked_again: usize,
    /// Ids of the tracks whose tagging failed.
    pub failed: Vec<String>,
    /// Tracks meant to be tagged in this run that were not (failed, or never asked).
    pub not_tagged: usize,
    /// The tracks the store now has genes for.
    pub written: Vec<TrackGenes>,
}

/// Tags the tracks of `store` through `backend`, caching each answer, then writes the cached
/// genes for this model and prompt to `mgphot` and saves the store. `on_event` hears of what
/// happens on the way (with the progress bar out of the way).
pub fn tag_store(
    store: &mut FeatureStore,
    backend: &Backend,
    opts: &TagOptions,
    mut on_event: impl FnMut(&TagEvent),
) -> Result<TagReport, TagError> {
    let notes = if opts.notes {
        track_notes(store, opts.catalog.as_ref())?
    } else {
        vec![None; store.tracks().len()]
    };
    let mut cache = TagCache::open(&opts.cache)?;
    if cache.dropped > 0 {
        on_event(&TagEvent::CacheRepaired {
            cache: &opts.cache,
            bytes: cache.dropped,
        });
    }
    let songs = songs(store, &notes);
    if songs.is_empty() {
        return Err(TagError::NoTitles {
            dir: opts.store_dir.clone(),
        });
    }
    let mut todo: Vec<&(usize, Song)> = songs
        .iter()
        .filter(|(_, s)| {
            cache
                .get(&s.id, &backend.key, &s.version(opts.mode))
                .is_none()
        })
        .collect();
    let cached = songs.len() - todo.len();
    todo.truncate(opts.limit.unwrap_or(usize::MAX));
    on_event(&TagEvent::Planned {
        with_title: songs.len(),
        cached,
        to_tag: todo.len(),
        cache: &opts.cache,
    });
    let mut report = ask_all(backend, &todo, &mut cache, opts, &mut on_event)?;
    report.asked_again = report
        .requests
        .saturating_sub(report.tagged * opts.mode.groups().len());
    report.not_tagged = todo.len() - report.tagged;
    report.written = write_genes(store, backend, &cache, &songs, opts)?;
    store.save(&opts.store_dir)?;
    Ok(report)
}

/// The store's tracks that have a title, as songs to ask about (by index in the store).
fn songs(store: &FeatureStore, notes: &[Option<String>]) -> Vec<(usize, Song)> {
    store
        .tracks()
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.title.is_empty())
        .map(|(i, t)| {
            let artist = if t.artist.is_empty() {
                "an unknown artist".into()
            } else {
                t.artist.clone()
            };
            let song = Song {
                id: t.id.clone(),
                artist,
                title: t.title.clone(),
                notes: notes[i].clone(),
            };
            (i, song)
        })
        .collect()
}

/// Asks about every song of `todo` with `backend.workers` workers; this thread alone writes the
/// cache, so a kill loses at most the answers in flight. Several failures in a row (a server
/// that went away) stop the dispatch.
fn ask_all(
    backend: &Backend,
    todo: &[&(usize, Song)],
    cache: &mut TagCache,
    opts: &TagOptions,
    on_event: &mut impl FnMut(&TagEvent),
) -> Result<TagReport, TagError> {
    let bar = progress_bar(opts.progress, todo.len());
    let started = Instant::now();
    let mut report = TagReport::default();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let give_up = backend.workers.max(3);
    std::thread::scope(|scope| -> Result<(), TagError> {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..backend.workers.min(todo.len()) {
            let (tx, next, stop, tagger) = (tx.clone(), &next, &stop, &*backend.tagger);
            scope.spawn(move || ask(todo, next, stop, tagger, tx));
        }
        drop(tx);
        let mut in_a_row = 0;
        for (n, result) in rx {
            let song = &todo[n].1;
            match result {
                Ok(t) => {
                    in_a_row = 0;
                    report.count(&t);
                    let prompt = song.version(opts.mode);
                    cache.put(Entry {
                        track: song.id.clone(),
                        model: backend.key.clone(),
                        prompt,
                        values: t.values,
                    })?;
                }
                Err(error) => {
                    in_a_row += 1;
                    bar.suspend(|| {
                        on_event(&TagEvent::Failed {
                            song,
                            error: &error,
                        })
                    });
                    report.failed.push(song.id.clone());
                    if in_a_row >= give_up && !stop.swap(true, Ordering::Relaxed) {
                        bar.suspend(|| on_event(&TagEvent::Stopping { in_a_row }));
                    }
                }
            }
            report.seconds = started.elapsed().as_secs_f64();
            bar.set_message(report.speed());
            bar.inc(1);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One worker: takes the next song until none is left, asked to stop, or the receiver is gone.
fn ask(
    todo: &[&(usize, Song)],
    next: &AtomicUsize,
    stop: &AtomicBool,
    tagger: &(dyn Tagger + Sync),
    tx: Sender<(usize, Result<Tagged, TagError>)>,
) {
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let Some((_, song)) = todo.get(n) else { break };
        if tx.send((n, tagger.tag(song))).is_err() {
            break;
        }
    }
}

impl TagReport {
    fn count(&mut self, t: &Tagged) {
        self.tagged += 1;
        self.tokens += t.counts.prompt_tokens + t.counts.generated;
        self.clamped += t.clamped;
        self.requests += t.requests;
    }

    /// Tracks per minute and tokens per second so far.
    pub fn speed(&self) -> String {
        let secs = self.seconds.max(1e-9);
        format!(
            "{:.1} tracks/min, {:.0} tokens/s",
            self.tagged as f64 * 60.0 / secs,
            self.tokens as f64 / secs
        )
    }
}

fn progress_bar(show: bool, len: usize) -> indicatif::ProgressBar {
    if !show || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("tagging [{bar:30}] {pos}/{len} {msg}")
            .expect("template"),
    );
    bar
}

/// Everything the cache holds for this model and prompt goes into the store's `mgphot`; the
/// other tracks are cleared (a value from another model or prompt must not stand beside this
/// one's). Returns the tracks written.
fn write_genes(
    store: &mut FeatureStore,
    backend: &Backend,
    cache: &TagCache,
    songs: &[(usize, Song)],
    opts: &TagOptions,
) -> Result<Vec<TrackGenes>, TagError> {
    let all = genes();
    let labels: Vec<String> = all.iter().map(|g| g.name.to_string()).collect();
    let version = opts.mode.version();
    let prov = Provenance {
        model: backend.name.clone(),
        version: version.clone(),
        weights_sha256: backend.sha.clone(),
        parameters: serde_json::json!({"prompt": version, "notes": opts.notes,
            "decoding": backend.decoding}),
        encore: env!("CARGO_PKG_VERSION").into(),
    };
    store.ensure_modality("mgphot", all.len(), prov, Some(labels))?;
    let mut written = Vec::new();
    for (i, song) in songs {
        let Some(v) = cache.get(&song.id, &backend.key, &song.version(opts.mode)) else {
            store.clear("mgphot", *i);
            continue;
        };
        let v = v.to_vec();
        crate::features::tags::check_known_modality("mgphot", &v)?;
        store.set("mgphot", *i, &v)?;
        written.push(TrackGenes {
            artist: song.artist.clone(),
            title: song.title.clone(),
            strongest: strongest_genes(&v),
        });
    }
    Ok(written)
}

/// The tags of the strongest genes of `v` (58 values in 0-1), strongest first.
pub fn strongest_genes(v: &[f32]) -> Vec<String> {
    let mut top: Vec<(f32, String)> = genes()
        .iter()
        .filter_map(|g| tag(g, v[g.index]).map(|t| (v[g.index], t)))
        .filter(|(x, _)| *x >= STRONG_GENE)
        .collect();
    top.sort_by(|a, b| b.0.total_cmp(&a.0));
    top.into_iter().take(GENES_NAMED).map(|(_, t)| t).collect()
}

/// Per store track, what else is known of it for the prompt: the catalog's tags and length
/// (when `catalog` lists the track) and musicnn's strongest tags (when the store has
/// `audio_tags`). `None` where nothing is known; an error when neither source is there.
pub fn track_notes(
    store: &FeatureStore,
    catalog: Option<&Catalog>,
) -> Result<Vec<Option<String>>, TagError> {
    // `encore features audio` writes musicnn's MSD tags as `audio_tags`.
    let heard = store.modality("audio_tags").is_some();
    if catalog.is_none() && !heard {
        return Err(TagError::NoNotes);
    }
    Ok(store
        .tracks()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut parts = Vec::new();
            if let Some(c) = catalog.and_then(|c| c.position(&t.id).map(|p| &c.tracks[p])) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::store::TrackRef;

    fn store() -> FeatureStore {
        let t = |id: &str, title: &str| TrackRef {
            id: id.into(),
            artist: String::new(),
            title: title.into(),
        };
        FeatureStore::new(vec![t("a", "One"), t("b", ""), t("c", "Three")]).unwrap()
    }

    #[test]
    fn notes_come_from_the_catalog_and_need_a_source() {
        let s = store();
        let err = track_notes(&s, None).unwrap_err();
        assert!(
            err.to_string().starts_with("--notes needs --catalog"),
            "{err}"
        );
        let catalog: Catalog = serde_json::from_value(serde_json::json!({
            "name": "c",
            "tracks": [{"id": "c", "title": "Three", "artist": "", "duration_s": 125.4,
                "audio": "c.ogg", "licence": "CC0", "attribution": "", "tags": ["jazz", "slow"]}]
        }))
        .unwrap();
        let notes = track_notes(&s, Some(&catalog)).unwrap();
        assert_eq!(
            notes,
            [
                None,
                None,
                Some("tagged jazz, slow; 2:05 long.".to_string())
            ]
        );
    }

    #[test]
    fn songs_need_titles_and_strong_genes_are_named_strongest_first() {
        let songs = songs(&store(), &[None, None, Some("n.".into())]);
        let ids: Vec<(usize, &str, &str)> = songs
            .iter()
            .map(|(i, s)| (*i, s.id.as_str(), s.artist.as_str()))
            .collect();
        assert_eq!(
            ids,
            [(0, "a", "an unknown artist"), (2, "c", "an unknown artist")]
        );
        let all = genes();
        let mut v = vec![0.0f32; all.len()];
        let named: Vec<usize> = all
            .iter()
            .filter(|g| tag(g, 0.9).is_some() && tag(g, 0.0).is_none())
            .map(|g| g.index)
            .take(8)
            .collect();
        for (k, &i) in named.iter().enumerate() {
            v[i] = 0.7 + 0.03 * k as f32;
        }
        let top = strongest_genes(&v);
        assert_eq!(top.len(), GENES_NAMED);
        assert_eq!(top[0], tag(&all[named[7]], v[named[7]]).unwrap());
    }
}
