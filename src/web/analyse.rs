//! "Your own track": a listener picks an audio file; the page decodes it with WebAudio (resampled
//! to 16 kHz by the browser), computes musicnn's log-mel front end and network on the page's
//! device, and shows the track's top tags. Nothing leaves the page.
//!
//! On a software WebGPU adapter (SwiftShader, a "fallback adapter") musicnn's convolutions are
//! far slower than on the CPU, so the analysis runs on the CPU (flex) there and says so; the
//! localStorage key `encore.analyse` = `"page"` keeps it on the page's device (for measuring).

use gloo::storage::Storage;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::features::dsp::{self, MelFrontEnd};
use crate::features::musicnn::{self, Musicnn, Pooling};

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
fn own_track(
    file: &web_sys::File,
    url: String,
    seconds: f64,
    f: &musicnn::TrackAudioFeatures,
) -> super::settings::OwnTrack {
    let name = file.name();
    let key = format!("{name}\u{0}{}", file.size());
    let id = format!("own/{}", &crate::data::sha256_hex(key.as_bytes())[..12]);
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
    super::settings::OwnTrack {
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

fn now_millis() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

fn js_err(e: wasm_bindgen::JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Decodes a file with WebAudio at 16 kHz and downmixes it to mono.
async fn decode_16k(file: &web_sys::File) -> Result<Vec<f32>, String> {
    let buf = JsFuture::from(file.array_buffer()).await.map_err(js_err)?;
    let buf: js_sys::ArrayBuffer = buf.dyn_into().map_err(js_err)?;
    let ctx = web_sys::OfflineAudioContext::new_with_number_of_channels_and_length_and_sample_rate(
        1,
        dsp::SAMPLE_RATE,
        dsp::SAMPLE_RATE as f32,
    )
    .map_err(js_err)?;
    let decoded = JsFuture::from(ctx.decode_audio_data(&buf).map_err(js_err)?)
        .await
        .map_err(|e| format!("not an audio file the browser can decode ({})", js_err(e)))?;
    let audio: web_sys::AudioBuffer = decoded.dyn_into().map_err(js_err)?;
    let channels = audio.number_of_channels() as usize;
    let mut mono = vec![0f32; audio.length() as usize];
    for c in 0..channels {
        let data = audio.get_channel_data(c as u32).map_err(js_err)?;
        for (m, v) in mono.iter_mut().zip(data) {
            *m += v / channels as f32;
        }
    }
    Ok(mono)
}

/// The device musicnn runs on, and its label: the page's device, except the CPU in place of a
/// software WebGPU adapter.
async fn analysis_device(page: burn::tensor::Device) -> (burn::tensor::Device, String) {
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

async fn fetch_weights() -> Result<Vec<u8>, String> {
    let r = gloo::net::http::Request::get(WEIGHTS_URL)
        .send()
        .await
        .map_err(|e| format!("{WEIGHTS_URL}: {e}"))?;
    if !r.ok() {
        return Err(format!(
            "{WEIGHTS_URL}: HTTP {} (scripts/demo-model.sh installs musicnn's weights)",
            r.status()
        ));
    }
    r.binary().await.map_err(|e| format!("{WEIGHTS_URL}: {e}"))
}

/// The card. `device` is the page's compute device once it is chosen.
#[component]
pub fn AnalyseTrack(
    device: StoredValue<Option<burn::tensor::Device>, LocalStorage>,
    /// Where an analysed file joins the listener's own tracks.
    own: RwSignal<Vec<super::settings::OwnTrack>>,
) -> impl IntoView {
    let model = StoredValue::new_local(None::<(burn::tensor::Device, Rc<Musicnn>)>);
    let status = RwSignal::new(String::new());
    let state = RwSignal::new("idle");
    let progress = RwSignal::new((0usize, 0usize));
    let result = RwSignal::new(None::<Analysis>);
    let elapsed = RwSignal::new(0.0f64);

    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        let Some(page_device) = device.get_value() else {
            status.set("The compute device is not ready yet.".into());
            return;
        };
        state.set("running");
        result.set(None);
        progress.set((0, 0));
        spawn_local(async move {
            let name = file.name();
            let (device, on) = analysis_device(page_device).await;
            let run = async {
                status.set(format!("Decoding {name}…"));
                let audio = decode_16k(&file)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                let m = match model.get_value().filter(|(d, _)| *d == device) {
                    Some((_, m)) => m,
                    None => {
                        status.set("Loading musicnn…".into());
                        let bytes = fetch_weights().await?;
                        let m = Rc::new(Musicnn::from_safetensors(&bytes, &device)?);
                        model.set_value(Some((device.clone(), m.clone())));
                        m
                    }
                };
                status.set(format!("Listening to {name}…"));
                let t0 = now_millis();
                let front = MelFrontEnd::new();
                let batch = if device == burn::tensor::Device::flex() {
                    8
                } else {
                    1
                };
                let f = musicnn::embed_audio_async(
                    &m,
                    &front,
                    &audio,
                    Pooling::Mean,
                    batch,
                    &device,
                    |d, n| {
                        progress.set((d, n));
                        elapsed.set(now_millis() - t0);
                    },
                )
                .await?
                .ok_or_else(|| format!("{name}: no audio"))?;
                let seconds = audio.len() as f64 / dsp::SAMPLE_RATE as f64;
                let url = web_sys::Url::create_object_url_with_blob(&file).map_err(js_err)?;
                let mine = own_track(&file, url, seconds, &f);
                own.update(|o| {
                    o.retain(|x| x.track.id != mine.track.id);
                    o.push(mine);
                });
                own.with_untracked(|o| super::settings::save_own(o));
                Ok::<_, String>(Analysis {
                    file: name.clone(),
                    seconds,
                    patches: f.patches,
                    millis: now_millis() - t0,
                    top: musicnn::top_tags(&f.tags, 5),
                })
            };
            match run.await {
                Ok(a) => {
                    status.set(format!(
                        "{}: {:.0} s of audio in {:.0} ms ({:.1}x real time) on {on}",
                        a.file,
                        a.seconds,
                        a.millis,
                        a.seconds * 1000.0 / a.millis.max(1e-9)
                    ));
                    result.set(Some(a));
                    state.set("done");
                }
                Err(e) => {
                    status.set(e);
                    state.set("failed");
                }
            }
        });
    };

    view! {
        <section class="card" aria-labelledby="analyse-heading">
            <h2 id="analyse-heading">"Your own track"</h2>
            <p class="muted small">
                "Pick an audio file: musicnn listens to it in this page, on your device, and names its style. It joins the catalog as your track, and a content model (one that reads sound, not ids) can recommend it. The file never leaves your browser."
            </p>
            <input type="file" accept="audio/*" data-testid="analyse-file" aria-label="Audio file to analyse" on:change=on_file />
            <p
                data-testid="analyse-status"
                data-state=move || state.get()
                data-done=move || progress.get().0.to_string()
                data-elapsed-ms=move || format!("{:.1}", elapsed.get())
                role="status"
            >{move || status.get()}</p>
            {move || (state.get() == "running" && progress.get().1 > 0).then(|| {
                let (d, n) = progress.get();
                view! { <progress data-testid="analyse-progress" max=n.to_string() value=d.to_string()></progress> }
            })}
            {move || result.get().map(|a| {
                let millis = format!("{:.1}", a.millis);
                let seconds = format!("{:.2}", a.seconds);
                let patches = a.patches.to_string();
                view! {
                    <ol class="tags" data-testid="analyse-tags" data-millis=millis data-seconds=seconds data-patches=patches>
                        {a.top.into_iter().map(|(t, p)| view! {
                            <li data-testid="analyse-tag" data-tag=t>{t}" "<span class="muted">{format!("{:.0} %", p * 100.0)}</span></li>
                        }).collect_view()}
                    </ol>
                }
            })}
        </section>
    }
}
