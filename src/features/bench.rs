//! The content models' speed on the CPU (native): musicnn in seconds of audio per second on one
//! thread and on all cores, the decode-side resampling, and MiniLM in sentences per second; with
//! the numpy reference implementations (`tests/reference`) timed in the same run when asked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::tensor::Device;

use super::dsp::{self, MelFrontEnd};
use super::error::FeatureError;
use super::musicnn::{self, Musicnn, Pooling};
use super::text::{self, Bert, SentenceEncoder, WordPiece};

/// Patches per musicnn forward pass and sentences per MiniLM batch in the measurements.
const MUSICNN_BATCH: usize = 16;
const MINILM_BATCH: usize = 32;
/// Seconds of audio and sentences the numpy references get (they are slow).
const NUMPY_AUDIO_S: usize = 30;
const NUMPY_SENTENCES: usize = 32;

/// What [`bench`] measures on.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// musicnn's weights (safetensors).
    pub musicnn_weights: PathBuf,
    /// An audio file, decoded once and repeated to `minutes`.
    pub audio: PathBuf,
    /// The sentence-transformers model folder (config.json, model.safetensors, tokenizer.json).
    pub minilm: PathBuf,
    /// Minutes of audio per musicnn measurement.
    pub minutes: f64,
    /// Sentences per MiniLM measurement.
    pub sentences: usize,
    /// Also time the numpy reference implementations.
    pub numpy: Option<NumpyReference>,
}

/// The numpy references: a Python with numpy, and the folder of `musicnn_ref.py` and
/// `minilm_ref.py`.
#[derive(Clone, Debug)]
pub struct NumpyReference {
    pub python: PathBuf,
    pub scripts: PathBuf,
}

/// One measurement: what ran, on what input, how long, and its speed in words.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    pub what: String,
    pub input: String,
    pub seconds: f64,
    pub speed: String,
}

/// The measurements, and the headline numbers by name (for JSON).
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub cores: usize,
    pub rows: Vec<BenchRow>,
    pub numbers: serde_json::Map<String, serde_json::Value>,
}

impl BenchReport {
    fn row(&mut self, what: String, input: String, seconds: f64, speed: String) {
        self.rows.push(BenchRow {
            what,
            input,
            seconds,
            speed,
        });
    }
}

/// Times musicnn, resampling and MiniLM on the CPU (burn flex) on one thread and on all cores,
/// and the numpy references when `opts.numpy` names them (a reference that fails is left out).
pub fn bench(opts: &BenchOptions) -> Result<BenchReport, FeatureError> {
    let device = Device::flex();
    let mut report = BenchReport {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..BenchReport::default()
    };
    let pcm = crate::audio::decode(&opts.audio)?;
    let once = dsp::resample(
        &dsp::downmix(&pcm.samples, pcm.channels),
        pcm.sample_rate,
        dsp::SAMPLE_RATE,
    );
    let want = (opts.minutes * 60.0 * dsp::SAMPLE_RATE as f64) as usize;
    let audio: Vec<f32> = once
        .iter()
        .copied()
        .cycle()
        .take(want.max(once.len()))
        .collect();
    bench_musicnn(&mut report, &opts.musicnn_weights, &once, &audio, &device)?;
    bench_resampling(&mut report, &pcm);
    let enc = load_minilm(&opts.minilm, &device)?;
    let texts = bench_sentences(opts.sentences);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    bench_minilm(&mut report, &enc, &refs);
    if let Some(numpy) = &opts.numpy {
        let clip = &audio[..(NUMPY_AUDIO_S * dsp::SAMPLE_RATE as usize).min(audio.len())];
        let ids: Vec<Vec<u32>> = refs
            .iter()
            .take(NUMPY_SENTENCES)
            .map(|t| enc.tokenizer.encode(t, text::MAX_TOKENS))
            .collect();
        bench_numpy(&mut report, numpy, opts, clip, &ids)?;
    }
    Ok(report)
}

/// musicnn over `audio` (16 kHz), after a warm-up on the start of `once`, on 1 thread and on all.
fn bench_musicnn(
    report: &mut BenchReport,
    weights: &Path,
    once: &[f32],
    audio: &[f32],
    device: &Device,
) -> Result<(), FeatureError> {
    let bytes = std::fs::read(weights).map_err(|e| FeatureError::io(weights, e))?;
    let model = Musicnn::from_safetensors(&bytes, device)?;
    let front = MelFrontEnd::new();
    let seconds = audio.len() as f64 / dsp::SAMPLE_RATE as f64;
    // Warm-up (first-call allocations), then the measurements.
    let warm = &once[..(dsp::SAMPLE_RATE as usize * 6).min(once.len())];
    musicnn::embed_audio(&model, &front, warm, Pooling::Mean, MUSICNN_BATCH, device);
    for threads in [1, report.cores] {
        let t0 = Instant::now();
        let _ = on_threads(threads, || {
            musicnn::embed_audio(&model, &front, audio, Pooling::Mean, MUSICNN_BATCH, device)
        });
        let secs = t0.elapsed().as_secs_f64();
        let x = seconds / secs;
        report.row(
            format!("musicnn MSD, Encore (burn flex), {threads} thread(s)"),
            format!("{seconds:.0} s of 16 kHz audio"),
            secs,
            format!("{x:.1}x real time ({:.1}x per core)", x / threads as f64),
        );
        report.numbers.insert(
            format!("musicnn_x_realtime_{threads}_threads"),
            serde_json::json!(x),
        );
    }
    Ok(())
}

/// Downmixing and resampling the decoded file to 16 kHz, as decoding for musicnn does.
fn bench_resampling(report: &mut BenchReport, pcm: &crate::audio::Pcm) {
    let t0 = Instant::now();
    let resampled = dsp::resample(
        &dsp::downmix(&pcm.samples, pcm.channels),
        pcm.sample_rate,
        dsp::SAMPLE_RATE,
    );
    let secs = t0.elapsed().as_secs_f64();
    let audio_s = resampled.len() as f64 / dsp::SAMPLE_RATE as f64;
    report.row(
        "decode-side resampling 44.1 -> 16 kHz (kaiser_best)".into(),
        format!("{audio_s:.0} s of audio"),
        secs,
        format!("{:.0}x real time", audio_s / secs),
    );
}

/// MiniLM from a sentence-transformers folder, tokenized by this crate's WordPiece.
fn load_minilm(dir: &Path, device: &Device) -> Result<SentenceEncoder, FeatureError> {
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read(&p).map_err(|e| FeatureError::io(&p, e))
    };
    let bert = Bert::from_files(&read("config.json")?, &read("model.safetensors")?, device)?;
    let wp = WordPiece::from_tokenizer_json(&read("tokenizer.json")?)?;
    Ok(SentenceEncoder::new(wp, bert, device))
}

/// MiniLM over `refs` after a warm-up, on 1 thread and on all.
fn bench_minilm(report: &mut BenchReport, enc: &SentenceEncoder, refs: &[&str]) {
    enc.embed(&refs[..8.min(refs.len())], 8);
    for threads in [1, report.cores] {
        let t0 = Instant::now();
        let _ = on_threads(threads, || enc.embed(refs, MINILM_BATCH));
        let secs = t0.elapsed().as_secs_f64();
        let rate = refs.len() as f64 / secs;
        report.row(
            format!("all-MiniLM-L6-v2, Encore (burn flex), {threads} thread(s)"),
            format!("{} sentences, batch {MINILM_BATCH}", refs.len()),
            secs,
            format!("{rate:.1} sentences/s"),
        );
        report.numbers.insert(
            format!("minilm_sentences_per_s_{threads}_threads"),
            serde_json::json!(rate),
        );
    }
}

/// The numpy references on `clip` (16 kHz) and the token ids `ids`, in a scratch folder that is
/// removed afterwards.
fn bench_numpy(
    report: &mut BenchReport,
    numpy: &NumpyReference,
    opts: &BenchOptions,
    clip: &[f32],
    ids: &[Vec<u32>],
) -> Result<(), FeatureError> {
    let tmp = std::env::temp_dir().join(format!("encore-bench-{}", std::process::id()));
    let result = run_numpy(report, numpy, opts, clip, ids, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn run_numpy(
    report: &mut BenchReport,
    numpy: &NumpyReference,
    opts: &BenchOptions,
    clip: &[f32],
    ids: &[Vec<u32>],
    tmp: &Path,
) -> Result<(), FeatureError> {
    let io = FeatureError::io;
    std::fs::create_dir_all(tmp).map_err(|e| io(tmp, e))?;
    let (audio, tokens, out) = (tmp.join("a.f32"), tmp.join("ids.json"), tmp.join("o.json"));
    let bytes: Vec<u8> = clip.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&audio, bytes).map_err(|e| io(&audio, e))?;
    let py = &numpy.python;
    let secs = time_script(
        py,
        &numpy.scripts.join("musicnn_ref.py"),
        [opts.musicnn_weights.as_path(), &audio, &out],
    )
    .map_err(|source| FeatureError::Python {
        python: py.clone(),
        source,
    })?;
    if let Some(secs) = secs {
        let audio_s = clip.len() as f64 / dsp::SAMPLE_RATE as f64;
        report.row(
            "musicnn MSD, numpy reference (float64)".into(),
            format!("{audio_s:.0} s of 16 kHz audio"),
            secs,
            format!("{:.1}x real time", audio_s / secs),
        );
    }
    let json = serde_json::to_vec(ids)
        .map_err(|e| FeatureError::json(&tokens.display().to_string(), e))?;
    std::fs::write(&tokens, json).map_err(|e| io(&tokens, e))?;
    let script = numpy.scripts.join("minilm_ref.py");
    let secs =
        time_script(py, &script, [opts.minilm.as_path(), &tokens, &out]).map_err(|source| {
            FeatureError::Python {
                python: py.clone(),
                source,
            }
        })?;
    if let Some(secs) = secs {
        report.row(
            "all-MiniLM-L6-v2, numpy reference (float64)".into(),
            format!("{} sentences", ids.len()),
            secs,
            format!("{:.1} sentences/s", ids.len() as f64 / secs),
        );
    }
    Ok(())
}

/// Runs `python script args...`: its seconds when it succeeded, `None` when it failed.
fn time_script<'a>(
    python: &Path,
    script: &Path,
    args: impl IntoIterator<Item = &'a Path>,
) -> std::io::Result<Option<f64>> {
    let t0 = Instant::now();
    let status = Command::new(python).arg(script).args(args).status()?;
    Ok(status.success().then(|| t0.elapsed().as_secs_f64()))
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
pub fn bench_sentences(n: usize) -> Vec<String> {
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
