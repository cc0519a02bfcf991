//! A folder of audio files embedded with musicnn into a feature store (native): each file is
//! matched to a store track ([`TrackMatcher`]), decoded, resampled to 16 kHz and embedded; the
//! store gets `audio` (the 200-d embedding) and `audio_tags` (50 MSD tag probabilities), and
//! `durations.tsv` beside it gets each embedded track's length.
//!
//! Resumable: the store is saved every minute and at the end (each save atomic), and a rerun
//! skips the tracks that already have `audio` unless forced.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;

use crate::audio::AudioInfo;
use crate::catalog::Catalog;
use crate::device::DeviceChoice;
use crate::features::dsp::{self, MelFrontEnd};
use crate::features::error::FeatureError;
use crate::features::musicnn::{self, Musicnn, Pooling};
use crate::features::store::{FeatureStore, Provenance, TrackRef};
use crate::features::tracks::read_catalog;

/// How often the store is saved during a run, so that a killed run loses at most this much.
const SAVE_EVERY_S: u64 = 60;

/// What [`embed_audio_folder`] reads and where it writes.
#[derive(Clone, Debug)]
pub struct AudioEmbedOptions {
    /// Folder of audio files (mp3, ogg, oga, flac, wav), searched recursively.
    pub dir: PathBuf,
    /// The store's folder: the store is saved there, with `durations.tsv`.
    pub store_dir: PathBuf,
    /// musicnn's weights (safetensors, see [`musicnn::convert_checkpoint`]).
    pub weights: PathBuf,
    /// TSV mapping files to track ids: path (relative to `dir`) `<TAB>` track id.
    pub map: Option<PathBuf>,
    /// A catalog.json whose audio paths (relative to its folder) name the files' tracks.
    pub catalog: Option<PathBuf>,
    /// Whether a file that no track matches may add a track, keyed by its artist and title
    /// (false when the store's tracks came from a catalog or a list). Never with `map`, nor to a
    /// store whose tracks have listed ids.
    pub add_unknown_tracks: bool,
    /// Pooling over 3-second patches.
    pub pooling: Pooling,
    /// Patches per forward pass.
    pub batch: usize,
    /// Embed tracks that already have audio features again.
    pub force: bool,
    pub device: DeviceChoice,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// One file embedded: its path relative to the folder, its track, and musicnn's top 3 tags.
#[derive(Clone, Debug)]
pub struct EmbeddedFile<'a> {
    pub file: &'a str,
    pub track: usize,
    pub top_tags: Vec<(&'static str, f32)>,
}

/// What a run of [`embed_audio_folder`] did.
#[derive(Clone, Debug, Default)]
pub struct AudioEmbedReport {
    /// The device musicnn ran on: its adapter (`flex` for the CPU) and backend (`CPU`, ...).
    pub adapter: String,
    pub backend: &'static str,
    /// Files embedded in this run.
    pub embedded: usize,
    /// Files whose track already had audio features (skipped unless forced).
    pub already_present: usize,
    /// Files no track matches: `path (artist / title)`.
    pub unmatched: Vec<String>,
    /// Files that could not be read or embedded, each with its reason.
    pub failures: Vec<String>,
    /// Seconds of audio embedded.
    pub audio_s: f64,
    /// The run's wall time.
    pub wall_s: f64,
    /// Seconds spent resampling and in musicnn (decoding excluded).
    pub net_s: f64,
    /// `durations.tsv`, when this run wrote it (it embedded something).
    pub durations: Option<PathBuf>,
}

/// Embeds the audio files of `opts.dir` into `store`, saving it to `opts.store_dir` every minute
/// and at the end; `on_file` hears of each file embedded (with the progress bar out of the way).
/// Files that cannot be read or matched are reported, not errors; a folder without audio files,
/// unreadable weights, an unusable device or a store that cannot be saved are errors.
pub fn embed_audio_folder(
    store: &mut FeatureStore,
    opts: &AudioEmbedOptions,
    mut on_file: impl FnMut(&EmbeddedFile),
) -> Result<AudioEmbedReport, FeatureError> {
    let (model, selected, sha) = load_musicnn(&opts.weights, opts.device)?;
    let files = audio_files(&opts.dir)?;
    if files.is_empty() {
        return Err(FeatureError::NoAudio {
            dir: opts.dir.clone(),
        });
    }
    let matcher = TrackMatcher::from_options(opts)?;
    ensure_audio_modalities(store, &sha, opts.pooling)?;
    let mut run = Run {
        model: &model,
        front: MelFrontEnd::new(),
        device: &selected.device,
        opts,
        report: AudioEmbedReport {
            adapter: selected.adapter.clone(),
            backend: selected.backend.label(),
            ..AudioEmbedReport::default()
        },
        durations: Vec::new(),
        last_save: Instant::now(),
    };
    let started = Instant::now();
    let bar = progress_bar(opts.progress, files.len());
    for path in &files {
        bar.inc(1);
        run.file(store, &matcher, path, &bar, &mut on_file)?;
    }
    bar.finish_and_clear();
    save(store, &opts.store_dir)?;
    if !run.durations.is_empty() {
        run.report.durations = Some(write_durations(&opts.store_dir, store, &run.durations)?);
    }
    run.report.wall_s = started.elapsed().as_secs_f64();
    Ok(run.report)
}

/// The loaded model, the device it runs on and the sha256 of its weights.
fn load_musicnn(
    weights: &Path,
    device: DeviceChoice,
) -> Result<(Musicnn, crate::device::SelectedDevice, String), FeatureError> {
    let bytes = std::fs::read(weights).map_err(|e| FeatureError::io(weights, e))?;
    let sha = crate::util::sha256_hex(&bytes);
    let selected = crate::device::select(device)?;
    let model = Musicnn::from_safetensors(&bytes, &selected.device)?;
    Ok((model, selected, sha))
}

/// The store's `audio` and `audio_tags` modalities, created (or checked) with their provenance.
fn ensure_audio_modalities(
    store: &mut FeatureStore,
    sha: &str,
    pooling: Pooling,
) -> Result<(), FeatureError> {
    let prov = Provenance {
        model: "musicnn MSD".into(),
        version: "musicnn 0.1.0".into(),
        weights_sha256: sha.into(),
        parameters: serde_json::json!({"sample_rate": dsp::SAMPLE_RATE, "n_fft": dsp::N_FFT,
            "hop": dsp::HOP, "n_mels": dsp::N_MELS, "patch_frames": musicnn::PATCH_FRAMES,
            "pooling": pooling, "output": "penultimate (batch-normalised dense layer)"}),
        encore: env!("CARGO_PKG_VERSION").into(),
    };
    let mut tag_prov = prov.clone();
    tag_prov.parameters["output"] = serde_json::json!("sigmoid tag probabilities");
    let labels: Vec<String> = musicnn::MSD_TAGS.iter().map(|s| s.to_string()).collect();
    store.ensure_modality("audio", musicnn::EMBEDDING_DIM, prov, None)?;
    store.ensure_modality("audio_tags", musicnn::N_TAGS, tag_prov, Some(labels))?;
    Ok(())
}

fn progress_bar(show: bool, files: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(files as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_prefix("musicnn");
    bar
}

fn save(store: &FeatureStore, dir: &Path) -> Result<(), FeatureError> {
    store.save(dir)
}

/// One run's model, settings and tally.
struct Run<'a> {
    model: &'a Musicnn,
    front: MelFrontEnd,
    device: &'a Device,
    opts: &'a AudioEmbedOptions,
    report: AudioEmbedReport,
    /// (track, seconds) of each file embedded.
    durations: Vec<(usize, f64)>,
    last_save: Instant,
}

impl Run<'_> {
    /// Matches, decodes and embeds one file; a file that cannot be read or matched is tallied.
    fn file(
        &mut self,
        store: &mut FeatureStore,
        matcher: &TrackMatcher,
        path: &Path,
        bar: &indicatif::ProgressBar,
        on_file: &mut impl FnMut(&EmbeddedFile),
    ) -> Result<(), FeatureError> {
        let rel = path
            .strip_prefix(&self.opts.dir)
            .unwrap_or(path)
            .to_string_lossy()
            .to_string();
        let info = match crate::audio::probe(path) {
            Ok(i) => i,
            Err(e) => {
                self.report.failures.push(e.to_string());
                return Ok(());
            }
        };
        let track = match matcher.find(store, path, &rel, &info)? {
            FileMatch::Track(t) => t,
            FileMatch::Unmatched(u) => {
                self.report.unmatched.push(u);
                return Ok(());
            }
            FileMatch::Failed(f) => {
                self.report.failures.push(f);
                return Ok(());
            }
        };
        if !self.opts.force && store.get("audio", track).is_some() {
            self.report.already_present += 1;
            return Ok(());
        }
        bar.set_message(rel.clone());
        let Some((features, seconds)) = self.embed(path) else {
            return Ok(());
        };
        let stored = |e: FeatureError| e.in_file(path);
        store
            .set("audio", track, &features.embedding)
            .map_err(stored)?;
        store
            .set("audio_tags", track, &features.tags)
            .map_err(stored)?;
        let top_tags = musicnn::top_tags(&features.tags, 3);
        bar.suspend(|| {
            on_file(&EmbeddedFile {
                file: &rel,
                track,
                top_tags,
            })
        });
        self.durations.push((track, seconds));
        self.report.audio_s += seconds;
        self.report.embedded += 1;
        if self.last_save.elapsed().as_secs() >= SAVE_EVERY_S {
            save(store, &self.opts.store_dir)?;
            self.last_save = Instant::now();
        }
        Ok(())
    }

    /// Decodes and embeds one file: its features and its length in seconds, or `None` (the
    /// reason tallied as a failure).
    fn embed(&mut self, path: &Path) -> Option<(musicnn::TrackAudioFeatures, f64)> {
        let pcm = match crate::audio::decode(path) {
            Ok(p) => p,
            Err(e) => {
                self.report.failures.push(e.to_string());
                return None;
            }
        };
        let t0 = Instant::now();
        let mono = dsp::downmix(&pcm.samples, pcm.channels);
        let audio16 = dsp::resample(&mono, pcm.sample_rate, dsp::SAMPLE_RATE);
        let o = self.opts;
        let Some(f) = musicnn::embed_audio(
            self.model,
            &self.front,
            &audio16,
            o.pooling,
            o.batch,
            self.device,
        ) else {
            self.report
                .failures
                .push(format!("{}: no audio samples", path.display()));
            return None;
        };
        self.report.net_s += t0.elapsed().as_secs_f64();
        Some((f, pcm.duration_s()))
    }
}

/// The audio files under `dir` (recursively), sorted.
pub fn audio_files(dir: &Path) -> Result<Vec<PathBuf>, FeatureError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let listing = std::fs::read_dir(&d).map_err(|e| FeatureError::io(&d, e))?;
        for e in listing {
            let p = e.map_err(|e| FeatureError::io(&d, e))?.path();
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

/// Where a file goes: its store track, no track (`path (artist / title)`), or a failure.
#[derive(Clone, Debug, PartialEq)]
pub enum FileMatch {
    Track(usize),
    Unmatched(String),
    Failed(String),
}

/// Finds the store track of an audio file, first by the mapping (path relative to the folder
/// -> track id), then by the catalog's path for it, then by its artist and title tags (its file
/// name when it has no title), and, where allowed, adds a track for it keyed by artist and title.
#[derive(Clone, Debug, Default)]
pub struct TrackMatcher {
    mapping: Option<HashMap<String, String>>,
    by_path: HashMap<PathBuf, String>,
    add_unknown: bool,
}

impl TrackMatcher {
    /// A matcher over a mapping (path relative to the folder -> id) and a catalog's files
    /// (canonical path -> id, see [`catalog_paths`]); `add_unknown` lets files add tracks when
    /// there is no mapping.
    pub fn new(
        mapping: Option<HashMap<String, String>>,
        by_path: HashMap<PathBuf, String>,
        add_unknown: bool,
    ) -> Self {
        let add_unknown = add_unknown && mapping.is_none();
        Self {
            mapping,
            by_path,
            add_unknown,
        }
    }

    /// The matcher `opts` asks for, reading its mapping and catalog.
    pub fn from_options(opts: &AudioEmbedOptions) -> Result<Self, FeatureError> {
        let mapping = opts.map.as_deref().map(read_mapping).transpose()?;
        let by_path = match &opts.catalog {
            Some(c) => catalog_paths(&read_catalog(c)?, c.parent().unwrap_or(Path::new("."))),
            None => HashMap::new(),
        };
        Ok(Self::new(mapping, by_path, opts.add_unknown_tracks))
    }

    /// The track of the file at `path` (`rel` from the folder, `info` its tags). An error only
    /// when a track cannot be added.
    pub fn find(
        &self,
        store: &mut FeatureStore,
        path: &Path,
        rel: &str,
        info: &AudioInfo,
    ) -> Result<FileMatch, FeatureError> {
        let by_catalog = std::fs::canonicalize(path)
            .ok()
            .and_then(|p| self.by_path.get(&p))
            .and_then(|id| store.position(id));
        match (self.mapping.as_ref().and_then(|m| m.get(rel)), by_catalog) {
            (None, Some(t)) => Ok(FileMatch::Track(t)),
            (Some(id), _) => Ok(match store.position(id) {
                Some(t) => FileMatch::Track(t),
                None => FileMatch::Failed(format!(
                    "{}: the mapping names track '{id}', which the store lacks",
                    path.display()
                )),
            }),
            (None, None) => self.by_tags(store, path, rel, info),
        }
    }

    fn by_tags(
        &self,
        store: &mut FeatureStore,
        path: &Path,
        rel: &str,
        info: &AudioInfo,
    ) -> Result<FileMatch, FeatureError> {
        let title = if info.title.is_empty() {
            path.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        } else {
            info.title.clone()
        };
        if let Some(t) = store.find_by_name(&info.artist, &title) {
            return Ok(FileMatch::Track(t));
        }
        if !self.add_unknown || store_has_listed_tracks(store) {
            return Ok(FileMatch::Unmatched(format!(
                "{} ({} / {})",
                rel, info.artist, title
            )));
        }
        let mut id = String::new();
        crate::data::log::name_key(&mut id, &info.artist, &title);
        if let Some(t) = store.position(&id) {
            return Ok(FileMatch::Track(t));
        }
        store
            .add_track(TrackRef {
                id,
                artist: info.artist.clone(),
                title,
            })
            .map(FileMatch::Track)
    }
}

/// Whether the store's tracks came from a catalog or list: their ids are not `artist<TAB>title`.
fn store_has_listed_tracks(store: &FeatureStore) -> bool {
    store.tracks().iter().any(|t| !t.id.contains('\t'))
}

/// A catalog's audio files (resolved against `dir`, the catalog's folder, and made canonical)
/// -> track id, so that files match by the path the catalog gives them, before any tags are
/// read. Files that do not exist are left out.
pub fn catalog_paths(catalog: &Catalog, dir: &Path) -> HashMap<PathBuf, String> {
    catalog
        .tracks
        .iter()
        .filter_map(|t| {
            let p = std::fs::canonicalize(dir.join(&t.audio)).ok()?;
            Some((p, t.id.clone()))
        })
        .collect()
}

/// Reads a mapping TSV: file (relative to the folder) `<TAB>` track id per line; blank lines
/// and lines starting with `#` are skipped.
pub fn read_mapping(path: &Path) -> Result<HashMap<String, String>, FeatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| FeatureError::io(path, e))?;
    let mut m = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((file, id)) = line.split_once('\t') else {
            return Err(FeatureError::row(path, i + 1, "expected file<TAB>track id"));
        };
        m.insert(file.trim().to_string(), id.trim().to_string());
    }
    Ok(m)
}

/// Adds `found` (track, seconds) to `durations.tsv` in `dir` (track_id, artist, title,
/// duration_s; the data layer reads it with `--durations`), keeping the rows already there;
/// written atomically. Returns its path.
pub fn write_durations(
    dir: &Path,
    store: &FeatureStore,
    found: &[(usize, f64)],
) -> Result<PathBuf, FeatureError> {
    let path = dir.join("durations.tsv");
    let mut rows: BTreeMap<String, (String, String, f64)> = BTreeMap::new();
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
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(ids: &[(&str, &str, &str)]) -> FeatureStore {
        FeatureStore::new(
            ids.iter()
                .map(|(id, artist, title)| TrackRef {
                    id: (*id).into(),
                    artist: (*artist).into(),
                    title: (*title).into(),
                })
                .collect(),
        )
        .unwrap()
    }

    fn tags(artist: &str, title: &str) -> AudioInfo {
        AudioInfo {
            artist: artist.into(),
            title: title.into(),
            ..AudioInfo::default()
        }
    }

    #[test]
    fn the_mapping_comes_first_then_tags_and_names() {
        let mut s = store(&[("a", "Ann", "One"), ("b", "Bob", "Two")]);
        let mapping = HashMap::from([("x.ogg".to_string(), "b".to_string())]);
        let m = TrackMatcher::new(Some(mapping), HashMap::new(), true);
        let x = Path::new("/nowhere/x.ogg");
        assert_eq!(
            m.find(&mut s, x, "x.ogg", &tags("Ann", "One")).unwrap(),
            FileMatch::Track(1)
        );
        let y = Path::new("/nowhere/y.ogg");
        assert_eq!(
            m.find(&mut s, y, "y.ogg", &tags("ann ", "ONE")).unwrap(),
            FileMatch::Track(0)
        );
        // With a mapping no track is added.
        assert_eq!(
            m.find(&mut s, y, "y.ogg", &tags("Cy", "Three")).unwrap(),
            FileMatch::Unmatched("y.ogg (Cy / Three)".into())
        );
        let missing = HashMap::from([("z.ogg".to_string(), "gone".to_string())]);
        let m = TrackMatcher::new(Some(missing), HashMap::new(), false);
        let z = m
            .find(&mut s, Path::new("z.ogg"), "z.ogg", &tags("", ""))
            .unwrap();
        assert!(matches!(z, FileMatch::Failed(f) if f.contains("'gone'")));
    }

    #[test]
    fn unknown_files_add_tracks_only_to_stores_built_from_files() {
        let mut s = store(&[]);
        let m = TrackMatcher::new(None, HashMap::new(), true);
        let p = Path::new("/music/Song Name.ogg");
        assert_eq!(
            m.find(&mut s, p, "Song Name.ogg", &tags("Ann", ""))
                .unwrap(),
            FileMatch::Track(0)
        );
        assert_eq!(s.tracks()[0].id, "Ann\tSong Name");
        assert_eq!(
            m.find(&mut s, p, "Song Name.ogg", &tags("Ann", ""))
                .unwrap(),
            FileMatch::Track(0)
        );
        let mut listed = store(&[("id-1", "Ann", "One")]);
        assert!(matches!(
            m.find(&mut listed, p, "Song Name.ogg", &tags("Bob", "Two"))
                .unwrap(),
            FileMatch::Unmatched(_)
        ));
        assert_eq!(listed.tracks().len(), 1);
    }

    #[test]
    fn mappings_and_durations_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("map.tsv");
        std::fs::write(&map, "# file\tid\n\na/b.ogg\t t1 \n").unwrap();
        let m = read_mapping(&map).unwrap();
        assert_eq!(m.get("a/b.ogg").map(String::as_str), Some("t1"));
        std::fs::write(&map, "no tab here\n").unwrap();
        assert!(
            read_mapping(&map)
                .unwrap_err()
                .to_string()
                .contains("map.tsv:1")
        );

        let s = store(&[("t1", "Ann", "One"), ("Bob\tTwo", "Bob", "Two")]);
        let path = write_durations(dir.path(), &s, &[(0, 61.25)]).unwrap();
        write_durations(dir.path(), &s, &[(1, 3.0)]).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text,
            "track_id\tartist\ttitle\tduration_s\nBob - Two\tBob\tTwo\t3.000\nt1\tAnn\tOne\t61.250\n"
        );
    }
}
