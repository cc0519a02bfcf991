//! `encore data ingest`: read logs (or their cached binary form), attach durations, run a
//! preset, and write the processed dataset with its statistics.

use super::completion::ratio_summary;
use super::preprocess::{Preset, Processed, StepStats, preprocess};
use super::read::{self, DataError, Format, ReadOptions, ReadReport, UserProfile};
use super::store::code_version;
use super::{Dataset, EventLog};
use crate::util::fsio::write_atomic;
use crate::util::staged::{StagedDir, sweep_stale};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything `ingest` needs.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub format: Format,
    pub inputs: Vec<PathBuf>,
    pub preset_name: String,
    pub preset: Preset,
    pub read: ReadOptions,
    /// Track metadata with durations (TSV, CSV or JSON).
    pub durations: Option<PathBuf>,
    /// LastFM-1K `userid-profile.tsv`.
    pub profiles: Option<PathBuf>,
    /// Where parsed logs are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    pub out: PathBuf,
    /// Draw progress bars on a terminal.
    pub progress: bool,
}

/// `DIR/stats.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IngestStats {
    pub code_version: String,
    pub format: Format,
    pub inputs: Vec<ReadReport>,
    pub preset: String,
    pub config: Preset,
    pub steps: Vec<StepStats>,
    pub completion: CompletionStats,
    /// Whether the parsed log came from the cache.
    pub cache_hit: bool,
    pub seconds: Timings,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompletionStats {
    /// Where durations came from.
    pub duration_source: String,
    pub tracks_with_duration: u64,
    /// Plays in the raw log with a completion ratio, and their mean.
    pub raw_plays_with_ratio: u64,
    pub raw_mean: Option<f64>,
    /// Plays in the processed dataset with a ratio; mean and share below the skip threshold.
    pub plays_with_ratio: u64,
    pub mean: Option<f64>,
    pub skip_rate: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timings {
    pub read: f64,
    pub preprocess: f64,
    pub write: f64,
}

/// `DIR/manifest.json`: what the dataset was made from and with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetManifest {
    pub code_version: String,
    pub format: Format,
    pub sources: Vec<SourceFile>,
    pub preset: String,
    pub config: Preset,
    pub users: u64,
    pub tracks: u64,
    pub sessions: u64,
    pub plays: u64,
    pub files: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceFile {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The cache's record of a parsed log.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CacheManifest {
    code_version: String,
    key: String,
    reports: Vec<ReadReport>,
    events: u64,
}

fn cache_key(opts: &IngestOptions) -> Result<String, DataError> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(code_version().as_bytes());
    h.update(opts.format.to_string().as_bytes());
    h.update(opts.read.user.as_deref().unwrap_or("").as_bytes());
    // The accepted times: where they start, and whether they end at year 9999 (the default's
    // end moves with the clock, so it is not part of the key).
    let t = &opts.read.times;
    h.update(format!("\0{}\0{}", t.min, t.max == read::TimeRange::ANY.max).as_bytes());
    for p in &opts.inputs {
        let meta = std::fs::metadata(p).map_err(|e| DataError::io(p, e))?;
        let canon = std::fs::canonicalize(p).map_err(|e| DataError::io(p, e))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        h.update(format!("\0{}\0{}\0{:?}", canon.display(), meta.len(), mtime).as_bytes());
    }
    Ok(crate::util::digest::hex(&h.finalize())[..24].to_string())
}

fn bar(show: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template(template).expect("valid progress template"),
    );
    b
}

/// The cached log for `key`, if its manifest and binary file are complete and agree.
fn cached_log(
    log_path: &Path,
    man_path: &Path,
    key: &str,
) -> Option<(EventLog, Vec<ReadReport>, bool)> {
    let m: CacheManifest = serde_json::from_str(&std::fs::read_to_string(man_path).ok()?).ok()?;
    if m.code_version != code_version() || m.key != key {
        return None;
    }
    let log = EventLog::load(log_path).ok()?;
    (log.len() as u64 == m.events).then_some((log, m.reports, true))
}

/// Reads the inputs, from the cache when the same files were read before.
pub fn load_log(opts: &IngestOptions) -> Result<(EventLog, Vec<ReadReport>, bool), DataError> {
    let key = cache_key(opts)?;
    if let Some(d) = &opts.cache_dir {
        sweep_stale(d);
    }
    let cached = opts
        .cache_dir
        .as_ref()
        .map(|d| (d.join(format!("{key}.log")), d.join(format!("{key}.json"))));
    if let Some((log_path, man_path)) = &cached
        && let Some(hit) = cached_log(log_path, man_path, &key)
    {
        return Ok(hit);
    }
    let total: u64 = opts
        .inputs
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let pb = bar(
        opts.progress,
        total,
        "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    pb.set_message("reading");
    let mut log = EventLog::default();
    let mut reports = Vec::new();
    let mut before = 0u64;
    for p in &opts.inputs {
        let mut ro = opts.read.clone();
        let (pb2, base) = (pb.clone(), before);
        ro.progress = Some(std::sync::Arc::new(move |n| pb2.set_position(base + n)));
        let r = read::read_file(opts.format, p, &mut log, &ro)?;
        before += r.bytes;
        reports.push(r);
    }
    pb.finish_and_clear();
    if let Some((log_path, man_path)) = &cached {
        log.save(log_path)?;
        let m = CacheManifest {
            code_version: code_version(),
            key,
            reports: reports.clone(),
            events: log.len() as u64,
        };
        write_atomic(man_path, |w| {
            serde_json::to_writer_pretty(&mut *w, &m).map_err(std::io::Error::other)
        })?;
    }
    Ok((log, reports, false))
}

/// What `ingest` writes into its output folder (and `data split` adds as `split-*` folders):
/// the folder is replaced whole, so it may hold nothing else.
const OUTPUT_FILES: [&str; 6] = [
    "dataset.bin",
    "tracks.tsv",
    "users.tsv",
    "sequences.txt",
    "stats.json",
    "manifest.json",
];

/// Refuses an output folder that holds files `ingest` did not write (they would be replaced
/// with it), before any work is done.
fn check_output_folder(out: &Path) -> Result<(), DataError> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let mut foreign: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !OUTPUT_FILES.contains(&n.as_str()) && !n.starts_with("split-"))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    foreign.truncate(5);
    Err(DataError::invalid(
        out,
        format!(
            "holds files encore data ingest did not write ({}); the folder is replaced whole, \
             so choose another -o or move them",
            foreign.join(", ")
        ),
    ))
}

/// Refuses inputs of which two have the same contents: every play would count twice.
fn same_file_twice(reports: &[ReadReport]) -> Result<(), DataError> {
    for (i, a) in reports.iter().enumerate() {
        let same = |b: &&ReadReport| b.sha256 == a.sha256 && !a.sha256.is_empty() && b.bytes > 0;
        if let Some(b) = reports[..i].iter().find(same) {
            return Err(DataError::invalid(
                Path::new(&a.file),
                format!(
                    "has the same contents as {} (sha256 {}): give each file once",
                    b.file, a.sha256
                ),
            ));
        }
    }
    Ok(())
}

/// The error for inputs that held no play: what was seen instead, and the first line skipped.
fn no_plays(first: &Path, reports: &[ReadReport]) -> DataError {
    let sum = |f: fn(&ReadReport) -> u64| reports.iter().map(f).sum::<u64>();
    let mut why = format!(
        "no plays read from {} file(s): {} lines, {} skipped as malformed, {} not music",
        reports.len(),
        sum(|r| r.lines),
        sum(|r| r.skipped),
        sum(|r| r.ignored)
    );
    if let Some(i) = reports.iter().flat_map(|r| &r.issues).next() {
        why.push_str(&format!("; the first skipped: {i}"));
    }
    DataError::invalid(first, why)
}

/// The whole `ingest` job. Returns the statistics also written to `DIR/stats.json`.
pub fn ingest(opts: &IngestOptions) -> Result<IngestStats, DataError> {
    if opts.inputs.is_empty() {
        return Err(DataError::invalid(Path::new("."), "no input files"));
    }
    check_output_folder(&opts.out)?;
    let t0 = Instant::now();
    let (mut log, reports, cache_hit) = load_log(opts)?;
    if log.is_empty() {
        return Err(no_plays(&opts.inputs[0], &reports));
    }
    same_file_twice(&reports)?;
    let mut duration_source = if log.track_duration.iter().any(|d| d.is_finite()) {
        "the log itself".to_string()
    } else {
        "none (no completion ratios)".to_string()
    };
    if let Some(p) = &opts.durations {
        let d = read::read_durations(p)?;
        let n = log.apply_durations(&d);
        duration_source = format!(
            "{} ({n} of {} tracks matched)",
            p.display(),
            log.tracks.len()
        );
    }
    let profiles = match &opts.profiles {
        Some(p) => Some(read::read_profiles(p, &opts.read)?.0),
        None => None,
    };
    let read_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let sp = bar(opts.progress, 0, "{spinner} {msg} {elapsed}");
    sp.enable_steady_tick(std::time::Duration::from_millis(120));
    let processed = preprocess(&log, &opts.preset, |step| {
        sp.set_message(format!("preprocessing: {step} done"))
    });
    sp.finish_and_clear();
    drop(log);
    let pre_s = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    let Processed {
        dataset: d,
        steps,
        raw_plays_with_ratio,
        raw_mean_ratio,
        raw_tracks_with_duration,
    } = processed;
    let (plays_with_ratio, mean, skip_rate) =
        ratio_summary(&d.completion, opts.preset.skip_threshold);
    let finite = |x: f64| x.is_finite().then_some(x);
    let completion = CompletionStats {
        duration_source,
        tracks_with_duration: raw_tracks_with_duration,
        raw_plays_with_ratio,
        raw_mean: finite(raw_mean_ratio),
        plays_with_ratio,
        mean: finite(mean),
        skip_rate: finite(skip_rate),
    };
    // Written beside the output folder and swapped in whole: a killed run leaves the old
    // dataset as it was (and a staging folder the next run removes).
    let stage = StagedDir::new(&opts.out)?;
    let files = write_dataset(stage.path(), &d, profiles.as_deref())?;
    let mut stats = IngestStats {
        code_version: code_version(),
        format: opts.format,
        inputs: reports,
        preset: opts.preset_name.clone(),
        config: opts.preset.clone(),
        steps,
        completion,
        cache_hit,
        seconds: Timings {
            read: read_s,
            preprocess: pre_s,
            write: 0.0,
        },
    };
    stats.seconds.write = t2.elapsed().as_secs_f64();
    let manifest = DatasetManifest {
        code_version: code_version(),
        format: opts.format,
        sources: stats
            .inputs
            .iter()
            .map(|r| SourceFile {
                file: r.file.clone(),
                sha256: r.sha256.clone(),
                bytes: r.bytes,
            })
            .collect(),
        preset: opts.preset_name.clone(),
        config: opts.preset.clone(),
        users: d.n_users() as u64,
        tracks: d.n_tracks() as u64,
        sessions: d.n_sessions() as u64,
        plays: d.n_plays() as u64,
        files,
    };
    write_json(&stage.path().join("stats.json"), &stats)?;
    write_json(&stage.path().join("manifest.json"), &manifest)?;
    stage.commit()?;
    Ok(stats)
}

pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), DataError> {
    Ok(crate::util::fsio::write_json(path, v)?)
}

fn opt_f32(x: f32) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        String::new()
    }
}

/// Writes `dataset.bin`, `tracks.tsv`, `users.tsv` and `sequences.txt` (S3-Rec format,
/// ids + 1) into `dir`; returns their names.
pub fn write_dataset(
    dir: &Path,
    d: &Dataset,
    profiles: Option<&[UserProfile]>,
) -> Result<Vec<String>, DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    d.save(&dir.join("dataset.bin"))?;
    let mut plays = vec![0u32; d.n_tracks()];
    for &t in &d.track {
        plays[t as usize] += 1;
    }
    write_atomic(&dir.join("tracks.tsv"), |w| {
        writeln!(
            w,
            "id\tkey\tartist\ttitle\tplays\tduration_s\tcompletion_n\tcompletion_mean\tcompletion_median\tskip_rate"
        )?;
        for t in 0..d.n_tracks() as u32 {
            let c = d.track_completion[t as usize];
            let key = d.tracks.get(t).replace('\t', " - ");
            writeln!(
                w,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                t + 1,
                key,
                d.artist_name.get(d.track_artist[t as usize]),
                d.track_name.get(t),
                plays[t as usize],
                opt_f32(d.track_duration[t as usize]),
                c.n,
                opt_f32(c.mean),
                opt_f32(c.median),
                opt_f32(c.skip_rate)
            )?;
        }
        Ok(())
    })?;
    let by_name: std::collections::HashMap<&str, &UserProfile> = profiles
        .unwrap_or(&[])
        .iter()
        .map(|p| (p.user.as_str(), p))
        .collect();
    write_atomic(&dir.join("users.tsv"), |w| {
        writeln!(
            w,
            "id\tuser\tplays\tsessions\tfirst\tlast\tgender\tage\tcountry\tregistered"
        )?;
        let mut s = 0usize;
        for u in 0..d.n_users() as u32 {
            let r = d.user_range(u);
            let mut sessions = 0;
            while s + 1 < d.session_start.len() && (d.session_start[s] as usize) < r.end {
                sessions += 1;
                s += 1;
            }
            let p = by_name.get(d.users.get(u));
            let o = |f: Option<&String>| f.cloned().unwrap_or_default();
            writeln!(
                w,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                u + 1,
                d.users.get(u),
                r.len(),
                sessions,
                super::time::format_datetime(d.ts[r.start]),
                super::time::format_datetime(d.ts[r.end - 1]),
                o(p.and_then(|p| p.gender.as_ref())),
                p.and_then(|p| p.age)
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                o(p.and_then(|p| p.country.as_ref())),
                o(p.and_then(|p| p.registered.as_ref())),
            )?;
        }
        Ok(())
    })?;
    write_atomic(&dir.join("sequences.txt"), |w| {
        for u in 0..d.n_users() as u32 {
            write!(w, "{}", u + 1)?;
            for &t in d.sequence(u) {
                write!(w, " {}", t + 1)?;
            }
            writeln!(w)?;
        }
        Ok(())
    })?;
    Ok([
        "dataset.bin",
        "tracks.tsv",
        "users.tsv",
        "sequences.txt",
        "stats.json",
    ]
    .map(String::from)
    .to_vec())
}

/// Loads a processed dataset directory (checks that its manifest exists: the write finished).
pub fn load_dataset(dir: &Path) -> Result<(Dataset, DatasetManifest), DataError> {
    let mp = dir.join("manifest.json");
    let text = std::fs::read_to_string(&mp).map_err(|e| DataError::io(&mp, e))?;
    let m: DatasetManifest = serde_json::from_str(&text).map_err(|e| DataError::Malformed {
        path: mp.clone(),
        line: e.line() as u64,
        reason: e.to_string(),
    })?;
    let d = Dataset::load(&dir.join("dataset.bin"))?;
    if d.n_plays() as u64 != m.plays || d.n_users() as u64 != m.users {
        return Err(DataError::invalid(
            &mp,
            "dataset.bin does not match its manifest",
        ));
    }
    Ok((d, m))
}
