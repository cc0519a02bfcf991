//! The top-level component: device status, the on-device check, settings and model bundles.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

use super::bundles::{self, BundleEntry};
use super::settings::ComputePreference;
use crate::device::{self, BackendKind};
use crate::smoke::{self, SmokeReport};

/// What the page found out about the device, also published as `window.encoreDiagnostics`
/// (through serde-wasm-bindgen) for developer tools and the end-to-end test.
#[derive(Debug, Clone, serde::Serialize)]
struct Diagnostics {
    backend: BackendKind,
    adapter: String,
    label: String,
    fallback_reason: Option<String>,
    smoke: Option<SmokeReport>,
    smoke_error: Option<String>,
    smoke_millis: f64,
}

fn now_millis() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
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

async fn diagnose(preference: ComputePreference) -> Diagnostics {
    let selected = device::browser_device(preference == ComputePreference::Cpu).await;
    let start = now_millis();
    let result = smoke::run_async(&selected.device).await;
    let smoke_millis = now_millis() - start;
    let (smoke, smoke_error) = match result {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    Diagnostics {
        backend: selected.backend,
        adapter: selected.adapter.clone(),
        label: selected.to_string(),
        fallback_reason: selected.fallback_reason.clone(),
        smoke,
        smoke_error,
        smoke_millis,
    }
}

#[component]
pub fn App() -> impl IntoView {
    let preference = ComputePreference::load();
    let diagnostics = RwSignal::new(None::<Diagnostics>);
    spawn_local(async move {
        let diag = diagnose(preference).await;
        publish(&diag);
        diagnostics.set(Some(diag));
    });
    let bundle_list = LocalResource::new(bundles::list);

    let backend_text = move || {
        diagnostics.with(|d| match d {
            Some(d) => d.label.clone(),
            None => "detecting…".to_string(),
        })
    };
    let fallback_text =
        move || diagnostics.with(|d| d.as_ref().and_then(|d| d.fallback_reason.clone()));
    let smoke_text = move || {
        diagnostics.with(|d| match d {
            None => "running…".to_string(),
            Some(d) => match (&d.smoke, &d.smoke_error) {
                (Some(r), _) => format!("{} in {:.0} ms", r.summary(), d.smoke_millis),
                (None, Some(e)) => format!("failed: {e}"),
                (None, None) => "failed".to_string(),
            },
        })
    };
    let smoke_state = move || {
        diagnostics.with(|d| match d {
            None => "pending",
            Some(d) if d.smoke.as_ref().is_some_and(|r| r.ok) => "ok",
            Some(_) => "failed",
        })
    };
    let smoke_values = move || {
        diagnostics.with(|d| {
            d.as_ref()
                .and_then(|d| d.smoke.as_ref())
                .map(|r| serde_json::to_string(&r.values).unwrap_or_default())
                .unwrap_or_default()
        })
    };

    let on_compute_change = move |ev: leptos::ev::Event| {
        ComputePreference::from_value(&event_target_value(&ev)).save();
        // A page registers its WebGPU device once: switching takes a reload.
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    };

    view! {
        <header class="topbar">
            <h1 class="brand">"Encore"</h1>
            <p class="tagline">"Next-track music recommendation, computed privately on your own device."</p>
        </header>
        <main class="layout">
            <section class="card" aria-labelledby="device-heading">
                <h2 id="device-heading">"This device"</h2>
                <dl class="facts">
                    <dt>"Compute backend"</dt>
                    <dd data-testid="backend">{backend_text}</dd>
                    {move || fallback_text().map(|r| view! { <dd class="note">{r}</dd> })}
                    <dt>"On-device check"</dt>
                    <dd data-testid="smoke-result" data-state=smoke_state data-values=smoke_values>
                        {smoke_text}
                    </dd>
                </dl>
                <label class="setting">
                    "Compute on "
                    <select
                        aria-label="Compute backend preference"
                        data-testid="compute-preference"
                        on:change=on_compute_change
                    >
                        <option value="auto" selected=preference == ComputePreference::Auto>
                            "GPU (WebGPU) when available"
                        </option>
                        <option value="cpu" selected=preference == ComputePreference::Cpu>
                            "CPU only"
                        </option>
                    </select>
                </label>
            </section>
            <section class="card" aria-labelledby="models-heading">
                <h2 id="models-heading">"Models"</h2>
                <Suspense fallback=|| view! { <p>"Looking for model bundles…"</p> }>
                    {move || {
                        bundle_list
                            .get()
                            .map(|found| match found {
                                Ok(list) if list.is_empty() => {
                                    view! { <p data-testid="bundles">"No model bundles are installed yet."</p> }
                                        .into_any()
                                }
                                Ok(list) => view! { <BundleList list=list /> }.into_any(),
                                Err(e) => {
                                    view! { <p class="error" data-testid="bundles">{e}</p> }.into_any()
                                }
                            })
                    }}
                </Suspense>
            </section>
        </main>
        <footer class="footer">
            "Everything runs in this page: no listening data leaves your browser."
        </footer>
    }
}

#[component]
fn BundleList(list: Vec<BundleEntry>) -> impl IntoView {
    view! {
        <ul data-testid="bundles" class="bundles">
            {list
                .into_iter()
                .map(|b| {
                    view! {
                        <li>
                            <strong>{b.name}</strong>
                            " "
                            <span class="muted">{b.description}</span>
                            " "
                            <code>{b.path}</code>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
