//! The work behind "Your own track" (the card is `own_tracks`): the page decodes a listener's
//! audio file with WebAudio (resampled to 16 kHz by the browser), computes musicnn's log-mel front
//! end and network on the page's device, and makes the file an own track. Nothing leaves the page.
//!
//! On a software WebGPU adapter (SwiftShader, a "fallback adapter") musicnn's convolutions are
//! far slower than on the CPU, so the analysis runs on the CPU (flex) there and says so; the
//! localStorage key `encore.analyse` = `"page"` keeps it on the page's device (for measuring).

use gloo::storage::Storage;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::error::WebError;
use super::state::OwnTrack;
use crate::features::dsp::{self, MelFrontEnd};
use crate::features::musicnn::{self, Musicnn, Pooling, TrackAudioFeatures};

/// Where the app finds musicnn's weights (written by scripts/demo-model.sh).
pub const WEIGHTS_URL: &str = "models/musicnn/msd_musicnn.safetensors";

/// One finished analysis.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub file: String,
    pub seconds: f64,
    pub patches: usize,
    pub millis: f64,
    pub top: Vec<(&'static str, f32)>,
}

/// The catalog entry and content of an analysed file (`url`: the page's object URL for it).
pub fn own_track(
    file: &web_sys::File,
    url: String,
    seconds: f64,
    f: &TrackAudioFeatures,
) -> OwnTrack {
    let name = file.name();
    let key = format!("{name}\u{0}{}", file.size());
    let id = format!("own/{}", &crate::util::sha256_hex(key.as_bytes())[..12]);
    let title = name
        .rsplit_once('.')
        .map_or(name.as_str(), |(stem, _)| stem)
        .replace('_', " ");
    let tags = musicnn::top_tags(&f.tags, 3)
        .into_iter()
        .map(|(t, _)| t.to_string())
        .collect();
    let mut content = std::collections::BTreeMap::new();
    content.insert("audio".to_string(), f.embedding.clone());
    content.insert("audio_tags".to_string(), f.tags.clone());
    OwnTrack {
        track: crate::catalog::Track {
            id,
            title,
            artist: "your file".into(),
            album: String::new(),
            genre: String::new(),
            duration_s: seconds,
            audio: url,
            licence: "yours".into(),
            attribution: format!("{name}, read in this page only"),
            tags,
        },
        content: crate::bundle::NewTrack { content },
    }
}

pub fn now_millis() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

pub fn js_err(e: wasm_bindgen::JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

fn browser(e: wasm_bindgen::JsValue) -> WebError {
    WebError::Browser(js_err(e))
}

/// Decodes a file with WebAudio at 16 kHz and downmixes it to mono.
pub async fn decode_16k(file: &web_sys::File) -> Result<Vec<f32>, WebError> {
    let buf = JsFuture::from(file.array_buffer()).await.map_err(browser)?;
    let buf: js_sys::ArrayBuffer = buf.dyn_into().map_err(browser)?;
    let ctx = web_sys::OfflineAudioContext::new_with_number_of_channels_and_length_and_sample_rate(
        1,
        dsp::SAMPLE_RATE,
        dsp::SAMPLE_RATE as f32,
    )
    .map_err(browser)?;
    let decoded = JsFuture::from(ctx.decode_audio_data(&buf).map_err(browser)?)
        .await
        .map_err(|e| WebError::Undecodable(js_err(e)))?;
    let audio: web_sys::AudioBuffer = decoded.dyn_into().map_err(browser)?;
    let channels = audio.number_of_channels() as usize;
    let mut mono = vec![0f32; audio.length() as usize];
    for c in 0..channels {
        let data = audio.get_channel_data(c as u32).map_err(browser)?;
        for (m, v) in mono.iter_mut().zip(data) {
            *m += v / channels as f32;
        }
    }
    Ok(mono)
}

/// The device musicnn runs on, and its label: the page's device, except the CPU in place of a
/// software WebGPU adapter.
pub async fn analysis_device(page: burn::tensor::Device) -> (burn::tensor::Device, String) {
    let flex = burn::tensor::Device::flex();
    if page == flex {
        return (flex, "the CPU".into());
    }
    let keep =
        gloo::storage::LocalStorage::get::<String>("encore.analyse").is_ok_and(|v| v == "page");
    match crate::device::webgpu_device().await {
        Ok(s) if s.adapter.contains("(fallback adapter)") && !keep => (
            flex,
            format!(
                "the CPU (WebGPU here is {}, a software adapter, slower for musicnn)",
                s.adapter
            ),
        ),
        Ok(s) => (page, format!("WebGPU ({})", s.adapter)),
        Err(_) => (page, "the page's device".into()),
    }
}

/// musicnn's weights, downloaded, on `device`.
pub async fn load_musicnn(device: &burn::tensor::Device) -> Result<Musicnn, WebError> {
    Musicnn::from_safetensors(&fetch_weights().await?, device)
        .map_err(|e| WebError::within(WEIGHTS_URL, e))
}

async fn fetch_weights() -> Result<Vec<u8>, WebError> {
    let r = gloo::net::http::Request::get(WEIGHTS_URL)
        .send()
        .await
        .map_err(|e| WebError::fetch(WEIGHTS_URL, e))?;
    if !r.ok() {
        let why = format!(
            "HTTP {} (scripts/demo-model.sh installs musicnn's weights)",
            r.status()
        );
        return Err(WebError::fetch(WEIGHTS_URL, why));
    }
    r.binary()
        .await
        .map_err(|e| WebError::fetch(WEIGHTS_URL, e))
}

/// musicnn's tags and embedding of 16 kHz `audio` on `device` (none for no audio), with
/// `progress(patches done, patches)` as it goes.
pub async fn listen(
    model: &Musicnn,
    audio: &[f32],
    device: &burn::tensor::Device,
    progress: impl FnMut(usize, usize),
) -> Result<Option<TrackAudioFeatures>, WebError> {
    let front = MelFrontEnd::new();
    let batch = if *device == burn::tensor::Device::flex() {
        8
    } else {
        1
    };
    musicnn::embed_audio_async(model, &front, audio, Pooling::Mean, batch, device, progress)
        .await
        .map_err(|e| WebError::within("musicnn", e))
}

/// Seconds of 16 kHz audio.
pub fn seconds(audio: &[f32]) -> f64 {
    audio.len() as f64 / dsp::SAMPLE_RATE as f64
}

/// The page's URL for a file it holds (valid while the page is open).
pub fn object_url(file: &web_sys::File) -> Result<String, WebError> {
    web_sys::Url::create_object_url_with_blob(file).map_err(|e| WebError::Browser(js_err(e)))
}
