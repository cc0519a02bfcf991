//! "Device and model": the compute backend the page chose and its on-device check, the model
//! bundle (chosen, downloaded with a progress bar, verified, loaded) and where it came from, and
//! the listener's choices of both. When the page opens it picks the device, checks it, lists the
//! bundles and loads the chosen one.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

use super::bundles::{self, BundleListing, LoadedBundle};
use super::page::{Diagnostics, Page, now_millis};
use super::settings::ComputePreference;
use crate::bundle::Recommender;
use crate::device::smoke;

/// The model panel's signals.
#[derive(Clone, Copy)]
struct Bundles {
    page: Page,
    list: RwSignal<Option<Result<Vec<BundleListing>, String>>>,
    chosen: RwSignal<Option<String>>,
    status: RwSignal<String>,
    state: RwSignal<&'static str>,
    /// Bytes of a large bundle file received so far, and its size when known.
    download: RwSignal<Option<(u64, Option<u64>)>>,
    loaded: RwSignal<Option<LoadedBundle>>,
}

impl Bundles {
    fn new(page: Page) -> Self {
        Self {
            page,
            list: RwSignal::new(None),
            chosen: RwSignal::new(bundles::chosen()),
            status: RwSignal::new("Looking for model bundles…".to_string()),
            state: RwSignal::new("pending"),
            download: RwSignal::new(None),
            loaded: RwSignal::new(None),
        }
    }

    fn fail(self, message: String) {
        self.status.set(message);
        self.state.set("failed");
    }

    /// The bundles found: the one chosen last (else the first) loads.
    fn listed(self, list: Result<Vec<BundleListing>, String>) {
        self.list.set(Some(list.clone()));
        match list {
            Ok(list) if list.is_empty() => {
                self.fail("No model bundles are installed (see the README: encore export).".into())
            }
            Ok(list) => {
                let want = self.chosen.get_untracked();
                let entry = list
                    .iter()
                    .find(|b| Some(&b.path) == want.as_ref())
                    .unwrap_or(&list[0])
                    .clone();
                self.chosen.set(Some(entry.path.clone()));
                self.load(entry);
            }
            Err(e) => self.fail(e),
        }
    }

    /// Loads a bundle on the device the page computes on.
    fn load(self, entry: BundleListing) {
        let Some(device) = self.page.device.get_value() else {
            return;
        };
        self.state.set("pending");
        self.status
            .set(format!("Loading {} and checking its files…", entry.name));
        spawn_local(async move {
            let download = self.download;
            let progress = move |got: u64, total: Option<u64>| download.set(Some((got, total)));
            let result = bundles::load(&entry, &device, &progress).await;
            self.download.set(None);
            match result {
                Ok((bundle, rec)) => self.ready(bundle, rec),
                Err(e) => self.fail(e.to_string()),
            }
        });
    }

    fn ready(self, bundle: LoadedBundle, rec: Recommender) {
        let rec = Rc::new(rec);
        expose_recommend(rec.clone());
        self.page.set_recommender(bundle.base.clone(), rec);
        self.status.set(format!(
            "{}: {} ({} files verified)",
            bundle.manifest.name,
            bundle.manifest.description,
            bundle.manifest.files.len()
        ));
        self.state.set("ready");
        self.loaded.set(Some(bundle));
        self.page.refresh();
    }

    /// The listener chose another bundle: the play in progress ends and it loads.
    fn choose(self, path: String) {
        bundles::choose(&path);
        let entry = self.list.with_untracked(|l| {
            l.as_ref()
                .and_then(|l| l.as_ref().ok())
                .and_then(|l| l.iter().find(|b| b.path == path).cloned())
        });
        if let Some(entry) = entry {
            self.chosen.set(Some(path));
            self.page.stop();
            self.load(entry);
        }
    }

    /// The loaded model, what it was trained on, and how well it did.
    fn provenance(self) -> Option<String> {
        self.loaded.with(|b| {
            let b = b.as_ref()?;
            let p = &b.config.provenance;
            let model = match &b.config.e4srec {
                Some(e) => format!("E4SRec ({} over {})", e.llm_name, b.config.model.name()),
                None => b.config.model.name().to_string(),
            };
            let mut s = format!(
                "{model} trained on {} (seed {}), protocol {}",
                p.dataset, p.seed, p.protocol
            );
            if let Some(n) = p.metrics.get("NDCG@10") {
                s.push_str(&format!(", test NDCG@10 {n:.3}"));
            }
            Some(s)
        })
    }

    fn simulated(self) -> bool {
        self.loaded
            .with(|b| b.as_ref().is_some_and(|b| b.config.provenance.simulated))
    }
}

/// Picks the device (WebGPU unless the listener chose the CPU), checks it, publishes what it
/// found, then lists the bundles and loads one.
fn start(b: Bundles, preference: ComputePreference) {
    spawn_local(async move {
        let selected = crate::device::browser_device(preference == ComputePreference::Cpu).await;
        let start = now_millis();
        let result = smoke::run_async(&selected.device).await;
        let smoke_millis = now_millis() - start;
        let (smoke, smoke_error) = match result {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let diag = Diagnostics {
            backend: selected.backend,
            adapter: selected.adapter.clone(),
            label: selected.to_string(),
            fallback_reason: selected.fallback_reason.clone(),
            smoke,
            smoke_error,
            smoke_millis,
        };
        publish(&diag);
        b.page.diagnostics.set(Some(diag));
        b.page.device.set_value(Some(selected.device.clone()));
        b.listed(bundles::list().await.map_err(|e| e.to_string()));
    });
}

#[component]
pub fn DevicePanel(page: Page) -> impl IntoView {
    let preference = ComputePreference::load();
    let b = Bundles::new(page);
    start(b, preference);
    let diagnostics = page.diagnostics;
    let fallback_text =
        move || diagnostics.with(|d| d.as_ref().and_then(|d| d.fallback_reason.clone()));
    let smoke_text = move || diagnostics.with(|d| check_text(d.as_ref()));
    let smoke_state = move || diagnostics.with(|d| check_state(d.as_ref()));
    let smoke_values = move || diagnostics.with(|d| check_values(d.as_ref()));
    let on_compute_change = move |ev: leptos::ev::Event| {
        ComputePreference::from_value(&event_target_value(&ev)).save();
        // A page registers its WebGPU device once: switching takes a reload.
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    };
    let on_bundle_change = move |ev: leptos::ev::Event| b.choose(event_target_value(&ev));

    view! {
        <section class="card" aria-labelledby="device-heading">
            <h2 id="device-heading">"Device and model"</h2>
            <dl class="facts">
                <dt>"Compute backend"</dt>
                <dd>{move || page.backend_text()}</dd>
                {move || fallback_text().map(|r| view! { <dd class="note">{r}</dd> })}
                <dt>"On-device check"</dt>
                <dd data-testid="smoke-result" data-state=smoke_state data-values=smoke_values>
                    {smoke_text}
                </dd>
                <dt>"Model"</dt>
                <dd data-testid="bundle-status" data-state=move || b.state.get()>{move || b.status.get()}</dd>
                {move || b.download.get().map(|(got, total)| download_progress(got, total))}
                {move || b.provenance().map(|p| view! { <dd class="note">{p}</dd> })}
                {move || b.simulated().then(|| view! {
                    <dd class="note" data-testid="simulated-note">
                        "No real listening log exists for this catalog: this model learned from listening sessions simulated from the tracks' genres and artists."
                    </dd>
                })}
            </dl>
            <label class="setting">
                "Compute on "
                <select aria-label="Compute backend preference" data-testid="compute-preference" on:change=on_compute_change>
                    <option value="auto" selected=preference == ComputePreference::Auto>"GPU (WebGPU) when available"</option>
                    <option value="cpu" selected=preference == ComputePreference::Cpu>"CPU only"</option>
                </select>
            </label>
            " "
            <label class="setting">
                "Model "
                <select aria-label="Model bundle" data-testid="bundles" on:change=on_bundle_change>
                    {move || b.list.get().and_then(|l| l.ok()).unwrap_or_default().into_iter().map(|e| {
                        let selected = b.chosen.get().as_ref() == Some(&e.path);
                        view! { <option value=e.path.clone() selected=selected title=e.description.clone()>{e.name.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
        </section>
    }
}

/// The language model's download: a bar (indeterminate without a known size) and the bytes.
fn download_progress(got: u64, total: Option<u64>) -> impl IntoView {
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let text = match total {
        Some(t) => format!("Downloading the language model: {} of {}", mb(got), mb(t)),
        None => format!("Downloading the language model: {}", mb(got)),
    };
    view! {
        <dd>
            <progress
                data-testid="bundle-progress"
                max=total.map(|t| t.to_string())
                value=total.map(|_| got.to_string())
            ></progress>
            " " {text}
        </dd>
    }
}

/// The on-device check's result, or that it runs.
fn check_text(d: Option<&Diagnostics>) -> String {
    match d {
        None => "running…".to_string(),
        Some(d) => match (&d.smoke, &d.smoke_error) {
            (Some(r), _) => format!("{} in {:.0} ms", r.summary(), d.smoke_millis),
            (None, Some(e)) => format!("failed: {e}"),
            (None, None) => "failed".to_string(),
        },
    }
}

fn check_state(d: Option<&Diagnostics>) -> &'static str {
    match d {
        None => "pending",
        Some(d) if d.smoke.as_ref().is_some_and(|r| r.ok) => "ok",
        Some(_) => "failed",
    }
}

/// The check's numbers as JSON (the end-to-end test compares them with its own).
fn check_values(d: Option<&Diagnostics>) -> String {
    d.and_then(|d| d.smoke.as_ref())
        .map(|r| serde_json::to_string(&r.values).unwrap_or_default())
        .unwrap_or_default()
}

fn publish(diag: &Diagnostics) {
    match serde_wasm_bindgen::to_value(diag) {
        Ok(value) => {
            if let Some(window) = web_sys::window() {
                let _ =
                    js_sys::Reflect::set(&window, &JsValue::from_str("encoreDiagnostics"), &value);
            }
        }
        Err(e) => leptos::logging::warn!("could not publish diagnostics: {e}"),
    }
}

/// What `window.encoreRecommend` answers.
#[derive(serde::Serialize)]
struct Timed {
    ms: f64,
    tracks: Vec<usize>,
    scores: Vec<f32>,
}

/// `window.encoreRecommend(history, completions, k)`: one recommendation by the loaded bundle
/// on the page's device, timed (catalog indices in and out; NaN completions are unknown). The
/// latency benchmark (scripts/bench/onnx-latency.mjs) calls it; nothing in the page does.
fn expose_recommend(rec: Rc<Recommender>) {
    use wasm_bindgen::closure::Closure;
    let f = Closure::<dyn Fn(JsValue, JsValue, u32) -> js_sys::Promise>::new(
        move |history: JsValue, completions: JsValue, k: u32| {
            let rec = rec.clone();
            wasm_bindgen_futures::future_to_promise(async move {
                let history: Vec<usize> = serde_wasm_bindgen::from_value(history)?;
                let completions: Vec<f32> = serde_wasm_bindgen::from_value(completions)?;
                let start = now_millis();
                let list = rec
                    .recommend_with(&history, Some(&completions), &[], k as usize)
                    .await
                    .map_err(|e| JsValue::from_str(&e.to_string()))?;
                let out = Timed {
                    ms: now_millis() - start,
                    tracks: list.iter().map(|r| r.track).collect(),
                    scores: list.iter().map(|r| r.score).collect(),
                };
                Ok(serde_wasm_bindgen::to_value(&out)?)
            })
        },
    );
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &JsValue::from_str("encoreRecommend"), f.as_ref());
    }
    f.forget();
}
