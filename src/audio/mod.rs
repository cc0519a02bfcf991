//! Audio files natively: container probing, tags and duration (symphonia).
//!
//! [`decode`] gives the PCM that content extraction (musicnn) reads.

use std::path::{Path, PathBuf};

use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::{MetadataOptions, RawValue, StandardTag};

/// Extensions of the files Encore reads as audio.
pub const AUDIO_EXTENSIONS: &[&str] = &["ogg", "oga", "mp3", "flac", "wav"];

/// What probing a file found: its tags (empty when absent) and its duration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioInfo {
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
    /// The file's own licence tag (Vorbis `LICENSE`, ID3 `TCOP`/`WCOP`), if any.
    pub licence: String,
    pub duration_s: f64,
    pub sample_rate: u32,
    pub channels: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

fn err(path: &Path, reason: impl ToString) -> AudioError {
    AudioError::Read {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Whether a path has one of [`AUDIO_EXTENSIONS`].
pub fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Opens a file for demuxing.
pub fn open(path: &Path) -> Result<Box<dyn FormatReader>, AudioError> {
    let file = std::fs::File::open(path).map_err(|e| err(path, e))?;
    let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| err(path, format!("not a readable audio file ({e})")))
}

fn text(v: &RawValue) -> Option<String> {
    match v {
        RawValue::String(s) => Some(s.trim().to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// Reads the tags and duration of an audio file without decoding it (a file whose container
/// gives no duration has its packets counted).
pub fn probe(path: &Path) -> Result<AudioInfo, AudioError> {
    let mut reader = open(path)?;
    let mut info = AudioInfo::default();
    {
        let mut meta = reader.metadata();
        if let Some(rev) = meta.skip_to_latest() {
            for tag in &rev.media.tags {
                let value = || text(&tag.raw.value);
                let slot = match &tag.std {
                    Some(StandardTag::TrackTitle(_)) => &mut info.title,
                    Some(StandardTag::Artist(_)) => &mut info.artist,
                    Some(StandardTag::Album(_)) => &mut info.album,
                    Some(StandardTag::Genre(_)) => &mut info.genre,
                    Some(StandardTag::License(_)) | Some(StandardTag::Copyright(_)) => {
                        &mut info.licence
                    }
                    _ if tag.raw.key.eq_ignore_ascii_case("license") => &mut info.licence,
                    _ => continue,
                };
                if slot.is_empty()
                    && let Some(v) = value()
                {
                    *slot = v;
                }
            }
        }
    }
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or_else(|| err(path, "no audio track"))?
        .clone();
    if let Some(audio) = track.codec_params.as_ref().and_then(|c| c.audio()) {
        info.sample_rate = audio.sample_rate.unwrap_or(0);
        info.channels = audio.channels.as_ref().map(|c| c.count()).unwrap_or(0);
    }
    let tb = track.time_base;
    let seconds = |ticks: u64| -> Option<f64> {
        let tb = tb?;
        Some(ticks as f64 * tb.numer.get() as f64 / tb.denom.get() as f64)
    };
    let mut duration = track.duration.and_then(|d| seconds(d.get()));
    if duration.is_none() && info.sample_rate > 0 {
        duration = track.num_frames.map(|n| n as f64 / info.sample_rate as f64);
    }
    if duration.is_none() {
        let mut ticks = 0u64;
        loop {
            match reader.next_packet() {
                Ok(Some(p)) if p.track_id == track.id => ticks += p.dur.get(),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(err(path, format!("corrupt audio data ({e})"))),
            }
        }
        duration = seconds(ticks);
    }
    info.duration_s = duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| err(path, "the duration cannot be determined"))?;
    Ok(info)
}

/// Decoded audio: interleaved f32 samples in [-1, 1].
#[derive(Clone, Debug, Default)]
pub struct Pcm {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    pub channels: usize,
}

impl Pcm {
    pub fn duration_s(&self) -> f64 {
        if self.sample_rate == 0 || self.channels == 0 {
            return 0.0;
        }
        (self.samples.len() / self.channels) as f64 / self.sample_rate as f64
    }
}

/// Decodes a whole file to PCM. A file whose packets mostly fail to decode is corrupt; one that
/// ends well before the duration its container states is truncated: both are errors naming the
/// file. (A few undecodable packets are skipped, as players do.)
pub fn decode(path: &Path) -> Result<Pcm, AudioError> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::errors::Error;
    let mut reader = open(path)?;
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or_else(|| err(path, "no audio track"))?
        .clone();
    let params = track
        .codec_params
        .as_ref()
        .and_then(|c| c.audio())
        .ok_or_else(|| err(path, "no audio codec parameters"))?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| err(path, format!("unsupported codec ({e})")))?;
    let stated = track.duration.and_then(|d| {
        let tb = track.time_base?;
        Some(d.get() as f64 * tb.numer.get() as f64 / tb.denom.get() as f64)
    });
    let mut pcm = Pcm::default();
    let mut chunk: Vec<f32> = Vec::new();
    let (mut packets, mut failed) = (0usize, 0usize);
    let mut stopped: Option<String> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                stopped = Some("unexpected end of file".into());
                break;
            }
            Err(e) => {
                stopped = Some(e.to_string());
                break;
            }
        };
        if packet.track_id != track.id {
            continue;
        }
        packets += 1;
        match decoder.decode(&packet) {
            Ok(buf) => {
                if pcm.channels == 0 {
                    pcm.channels = buf.spec().channels().count();
                    pcm.sample_rate = buf.spec().rate();
                }
                buf.copy_to_vec_interleaved(&mut chunk);
                pcm.samples.extend_from_slice(&chunk);
            }
            Err(Error::DecodeError(_)) => failed += 1,
            Err(e) => {
                stopped = Some(e.to_string());
                break;
            }
        }
    }
    if packets == 0 || pcm.samples.is_empty() {
        return Err(err(
            path,
            format!(
                "corrupt audio data: nothing decodes{}",
                stopped.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
        ));
    }
    if failed * 10 > packets {
        return Err(err(
            path,
            format!("corrupt audio data: {failed} of {packets} packets fail to decode"),
        ));
    }
    let got = pcm.duration_s();
    if let Some(stated) = stated
        && got + 1.0 < stated * 0.98
    {
        return Err(err(
            path,
            format!(
                "truncated: audio ends after {got:.1} s of the {stated:.1} s its header states{}",
                stopped.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
        ));
    }
    if let Some(s) = stopped
        && stated.is_none()
    {
        return Err(err(
            path,
            format!("corrupt or truncated after {got:.1} s ({s})"),
        ));
    }
    Ok(pcm)
}
