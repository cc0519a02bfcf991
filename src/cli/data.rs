//! `encore data`: ingest listening logs, generate synthetic ones, split and inspect datasets.

use crate::data::ingest::{IngestOptions, IngestStats, ingest, load_dataset, write_json};
use crate::data::preprocess::{BUILTIN_PRESETS, Preset, parse_presets};
use crate::data::read::{Format, ReadOptions, TimeRange, write_samples};
use crate::data::split::{self, Candidates, Scheme};
use crate::data::synth::{SynthConfig, catalog, generate, write_npy};
use crate::data::time::format_datetime;
use crate::util::fsio::write_atomic;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Read listening logs, compute completion ratios, run a preprocessing preset, write a dataset
    Ingest(IngestArgs),
    /// Write a synthetic LastFM-1K-format log with track metadata and its latent content vectors
    Synth(SynthArgs),
    /// Make an evaluation split (temporal or leave-one-out) and candidate sets for a dataset
    Split(SplitArgs),
    /// Print the statistics of an ingested dataset
    Stats(StatsArgs),
    /// Print the built-in preprocessing presets (TOML)
    Presets,
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// Input log files (several files of one format are read as one log)
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Input format: lastfm1k, spotify, listenbrainz, recbole, s3rec
    #[arg(long, short)]
    format: Format,
    /// Preprocessing preset: paper or default (or one from --config)
    #[arg(long, default_value = "default")]
    preset: String,
    /// A TOML file of presets (tables of the same keys as `encore data presets` prints)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output directory
    #[arg(long, short)]
    out: PathBuf,
    /// Track metadata with durations (TSV, CSV or JSON) for completion ratios
    #[arg(long)]
    durations: Option<PathBuf>,
    /// LastFM-1K userid-profile.tsv, joined into users.tsv
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// User name for exports that do not name their user
    #[arg(long)]
    user: Option<String>,
    /// Fail on the first malformed line instead of skipping it
    #[arg(long)]
    strict: bool,
    /// Accept plays of any year from 0000 to 9999 (default: 1970 to a day after now; times
    /// outside are skipped as malformed)
    #[arg(long)]
    any_time: bool,
    /// Cache for parsed logs [default: $ENCORE_CACHE/logs or ~/.cache/encore/logs]
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Always parse the inputs; neither read nor write the cache
    #[arg(long)]
    no_cache: bool,
    /// Print stats.json instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    knobs: Knobs,
}

/// Overrides of the preset's knobs.
#[derive(Args, Debug, Default)]
struct Knobs {
    /// A gap longer than this (seconds) starts a new session
    #[arg(long)]
    session_gap_s: Option<i64>,
    /// Keep users with at least this many plays (0: off)
    #[arg(long)]
    min_user_plays: Option<u32>,
    /// Then keep tracks with at least this many plays (0: off)
    #[arg(long)]
    min_track_plays: Option<u32>,
    /// Iterated k-core on users and tracks (0: off)
    #[arg(long)]
    k_core: Option<u32>,
    /// Keep only the first play of a track within a session
    #[arg(long)]
    dedupe_in_session: Option<bool>,
    /// Drop sessions with fewer plays
    #[arg(long)]
    min_session_len: Option<u32>,
    /// Cut sessions to this many plays (0: no cut)
    #[arg(long)]
    max_session_len: Option<u32>,
    /// Keep users with at least this many sessions (0: off)
    #[arg(long)]
    min_user_sessions: Option<u32>,
    /// A completion ratio below this counts as a skip
    #[arg(long)]
    skip_threshold: Option<f32>,
}

impl Knobs {
    fn apply(&self, p: &mut Preset) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { p.$f = v; } )* };
        }
        set!(
            session_gap_s,
            min_user_plays,
            min_track_plays,
            k_core,
            dedupe_in_session,
            min_session_len,
            max_session_len,
            min_user_sessions,
            skip_threshold
        );
    }
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Number of log lines (LastFM-1K has 19150868)
    #[arg(long)]
    lines: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output TSV; FILE.tracks.tsv, FILE.content.npy and FILE.moods.npy are written beside it
    #[arg(long, short)]
    out: PathBuf,
    /// Users [default: scaled from LastFM-1K]
    #[arg(long)]
    users: Option<u32>,
    /// Tracks [default: lines / 12]
    #[arg(long)]
    tracks: Option<u32>,
    /// Artists [default: tracks / 8]
    #[arg(long)]
    artists: Option<u32>,
    /// How much of the preference content explains, 0 (none) to 1
    #[arg(long)]
    content_weight: Option<f64>,
    /// Chance a play repeats the previous track
    #[arg(long)]
    repeat_rate: Option<f64>,
    /// Dimension of the latent content space
    #[arg(long)]
    dim: Option<usize>,
}

#[derive(Args, Debug)]
struct SplitArgs {
    /// A directory written by `encore data ingest`
    dir: PathBuf,
    /// temporal (the paper's global temporal split) or loo (leave-one-out)
    #[arg(long, default_value = "temporal")]
    scheme: Scheme,
    /// Candidates per case: sampled-N (positive + N-1 unheard tracks) or full
    #[arg(long, default_value = "sampled-200")]
    candidates: Candidates,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Percentile of play times used as the cutoffs (temporal)
    #[arg(long, default_value_t = 0.9)]
    quantile: f64,
    /// Share of users held out for validation (temporal)
    #[arg(long, default_value_t = 0.1)]
    valid_share: f64,
}

#[derive(Args, Debug)]
struct StatsArgs {
    /// A directory written by `encore data ingest`
    dir: PathBuf,
}

pub fn run(args: DataArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DataCommand::Ingest(a) => run_ingest(a),
        DataCommand::Synth(a) => run_synth(a),
        DataCommand::Split(a) => run_split(a),
        DataCommand::Stats(a) => {
            let path = a.dir.join("stats.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let s: IngestStats = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            print_stats(&s);
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Presets => {
            print!("{BUILTIN_PRESETS}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn default_cache() -> PathBuf {
    std::env::var_os("ENCORE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/encore")))
        .unwrap_or_else(|| PathBuf::from(".encore-cache"))
        .join("logs")
}

fn run_ingest(a: IngestArgs) -> anyhow::Result<ExitCode> {
    let mut preset = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let all =
                parse_presets(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            match all.get(&a.preset) {
                Some(p) => p.clone(),
                None => Preset::builtin(&a.preset)?,
            }
        }
        None => Preset::builtin(&a.preset)?,
    };
    a.knobs.apply(&mut preset);
    let opts = IngestOptions {
        format: a.format,
        inputs: a.inputs,
        preset_name: a.preset,
        preset,
        read: ReadOptions {
            strict: a.strict,
            times: if a.any_time {
                TimeRange::ANY
            } else {
                TimeRange::recent()
            },
            user: a.user,
            progress: None,
        },
        durations: a.durations,
        profiles: a.profiles,
        cache_dir: (!a.no_cache).then(|| a.cache_dir.unwrap_or_else(default_cache)),
        out: a.out,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let stats = ingest(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print_stats(&stats);
        println!("wrote {}", opts.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(s: &IngestStats) {
    for r in &s.inputs {
        println!(
            "{}: {} lines, {} plays, {} skipped, {} ignored (sha256 {})",
            r.file,
            r.lines,
            r.events,
            r.skipped,
            r.ignored,
            &r.sha256[..16.min(r.sha256.len())]
        );
        for i in &r.issues {
            println!("  skipped {i}");
        }
        if r.skipped > r.issues.len() as u64 {
            println!("  ... and {} more", r.skipped - r.issues.len() as u64);
        }
    }
    println!(
        "preset '{}'{}",
        s.preset,
        if s.cache_hit {
            " (parsed log from cache)"
        } else {
            ""
        }
    );
    println!(
        "{:<20} {:>8} {:>10} {:>10} {:>12}",
        "step", "users", "tracks", "sessions", "plays"
    );
    for st in &s.steps {
        let sessions = st
            .sessions
            .map(|x| x.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:>8} {:>10} {:>10} {:>12}",
            st.step, st.users, st.tracks, sessions, st.plays
        );
    }
    let c = &s.completion;
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    println!(
        "completion: durations from {}; raw plays with a ratio {} (mean {}); kept plays with a ratio {} (mean {}, skip rate {})",
        c.duration_source,
        c.raw_plays_with_ratio,
        f(c.raw_mean),
        c.plays_with_ratio,
        f(c.mean),
        f(c.skip_rate)
    );
    println!(
        "time: read {:.2} s, preprocess {:.2} s, write {:.2} s",
        s.seconds.read, s.seconds.preprocess, s.seconds.write
    );
}

fn sidecar(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "synth".into());
    out.with_file_name(format!("{stem}{suffix}"))
}

fn run_synth(a: SynthArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = SynthConfig::scaled(a.lines, a.seed);
    if let Some(v) = a.users {
        cfg.users = v;
    }
    if let Some(v) = a.tracks {
        cfg.tracks = v;
        cfg.artists = (v / 8).max(20);
    }
    if let Some(v) = a.artists {
        cfg.artists = v;
    }
    if let Some(v) = a.content_weight {
        cfg.content_weight = v;
    }
    if let Some(v) = a.repeat_rate {
        cfg.repeat_rate = v;
    }
    if let Some(v) = a.dim {
        cfg.dim = v;
    }
    cfg.validate()?;
    let cat = catalog(&cfg);
    let pb = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(cfg.lines);
        b.set_style(indicatif::ProgressStyle::with_template(
            "writing [{bar:40}] {human_pos}/{human_len} lines eta {eta}",
        )?);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    write_atomic(&a.out, |w| {
        let mut err = Ok(());
        let mut n = 0u64;
        generate(&cfg, &cat, |line| {
            if err.is_ok() {
                err = w
                    .write_all(line.as_bytes())
                    .and_then(|()| w.write_all(b"\n"));
            }
            n += 1;
            if n.is_multiple_of(65_536) {
                pb.set_position(n);
            }
        });
        err
    })?;
    pb.finish_and_clear();
    let tracks = sidecar(&a.out, ".tracks.tsv");
    write_atomic(&tracks, |w| {
        writeln!(
            w,
            "index\ttrack_id\tartist_id\tartist\ttitle\tduration_s\ttags\tlyric"
        )?;
        for (i, t) in cat.tracks.iter().enumerate() {
            let (am, an) = &cat.artists[t.artist as usize];
            writeln!(
                w,
                "{i}\t{}\t{}\t{an}\t{}\t{}\t{}\t{}",
                t.mbid.as_deref().unwrap_or(""),
                am.as_deref().unwrap_or(""),
                t.title,
                t.duration_s,
                t.tags.join(","),
                t.lyric
            )?;
        }
        Ok(())
    })?;
    let content = sidecar(&a.out, ".content.npy");
    write_atomic(&content, |w| {
        write_npy(w, &cat.content, &[cat.tracks.len(), cat.dim])
    })?;
    let moods = sidecar(&a.out, ".moods.npy");
    write_atomic(&moods, |w| {
        write_npy(w, &cat.moods, &[cfg.users as usize, cfg.moods, cat.dim])
    })?;
    write_json(&sidecar(&a.out, ".config.json"), &cfg)?;
    println!(
        "wrote {} ({} lines, {} users, {} tracks, {} artists, content weight {}) with {}, {} and {}",
        a.out.display(),
        cfg.lines,
        cfg.users,
        cfg.tracks,
        cfg.artists,
        cfg.content_weight,
        tracks.display(),
        content.display(),
        moods.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct SplitFile<'a> {
    dataset: String,
    candidates: String,
    test_cutoff_utc: Option<String>,
    valid_cutoff_utc: Option<String>,
    #[serde(flatten)]
    split: &'a split::Split,
}

fn run_split(a: SplitArgs) -> anyhow::Result<ExitCode> {
    let (d, _) = load_dataset(&a.dir)?;
    if !(0.0..=1.0).contains(&a.quantile) || !(0.0..1.0).contains(&a.valid_share) {
        bail!("--quantile must be in [0, 1] and --valid-share in [0, 1)");
    }
    let s = match a.scheme {
        Scheme::Temporal => split::temporal(&d, a.quantile, a.valid_share, a.seed),
        Scheme::LeaveOneOut => split::leave_one_out(&d),
    };
    let name = match a.scheme {
        Scheme::Temporal => "temporal",
        Scheme::LeaveOneOut => "loo",
    };
    let dir = a.dir.join(format!("split-{name}"));
    if let Candidates::Sampled(n) = a.candidates {
        for (cases, file) in [(&s.test, "test_sample.txt"), (&s.valid, "valid_sample.txt")] {
            let cands = split::sample_candidates(&d, cases, n, a.seed)?;
            let rows: Vec<(u32, Vec<u32>)> = cases
                .iter()
                .zip(cands)
                .map(|(c, v)| (c.user + 1, v[1..].iter().map(|t| t + 1).collect()))
                .collect();
            write_samples(&dir.join(file), &rows)?;
        }
    }
    let file = SplitFile {
        dataset: a.dir.display().to_string(),
        candidates: a.candidates.to_string(),
        test_cutoff_utc: s.test_cutoff.map(format_datetime),
        valid_cutoff_utc: s.valid_cutoff.map(format_datetime),
        split: &s,
    };
    write_json(&dir.join("split.json"), &file)?;
    println!(
        "{name} split of {}: {} test cases, {} validation cases{}",
        a.dir.display(),
        s.test.len(),
        s.valid.len(),
        match (&file.test_cutoff_utc, &file.valid_cutoff_utc) {
            (Some(t), Some(v)) => format!(
                " (test cutoff {t}, validation cutoff {v}, {} validation users)",
                s.valid_users.len()
            ),
            _ => String::new(),
        }
    );
    println!("candidates: {}; wrote {}", a.candidates, dir.display());
    Ok(ExitCode::SUCCESS)
}
