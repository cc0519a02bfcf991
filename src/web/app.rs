//! The top-level component: the player, the catalog, on-device recommendations, the listening
//! history, and the device and model status.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};

use super::bundles::{self, BundleEntry, LoadedBundle};
use super::settings::{ComputePreference, OwnTrack};
use super::storage;
use crate::bundle::Recommender;
use crate::catalog::{Catalog, shared_traits};
use crate::device::{self, BackendKind};
use crate::listen::{self, Play, Started, Tracker};
use crate::smoke::{self, SmokeReport};

/// How many recommendations the app shows.
const UP_NEXT: usize = 10;
/// Recently played tracks are not recommended again.
const NO_REPEAT: usize = 5;

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

/// One row of "up next".
#[derive(Clone, Debug, PartialEq)]
struct Rec {
    track: usize,
    why: String,
}

fn format_time(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "0:00".into();
    }
    let s = s.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn format_when(ms: f64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(ms));
    String::from(d.to_locale_string("default", &JsValue::UNDEFINED))
}

/// Everything the app's handlers share.
#[derive(Clone, Copy)]
struct Ctx {
    audio: NodeRef<leptos::html::Audio>,
    rec: StoredValue<Option<Rc<Recommender>>, LocalStorage>,
    base: RwSignal<String>,
    catalog: RwSignal<Option<Catalog>>,
    plays: RwSignal<Vec<Play>>,
    db: StoredValue<Option<Rc<idb::Database>>, LocalStorage>,
    now: RwSignal<Option<usize>>,
    started: StoredValue<Option<Started>>,
    tracker: StoredValue<Tracker>,
    playing: RwSignal<bool>,
    recs: RwSignal<Vec<Rec>>,
    latency: RwSignal<Option<f64>>,
    /// How many recommendation lists were computed (tests and benchmarks wait on it).
    computed: RwSignal<u32>,
    rec_error: RwSignal<Option<String>>,
    history_error: RwSignal<Option<String>>,
    /// The listener's own analysed files, listed after the bundle's catalog.
    own: RwSignal<Vec<OwnTrack>>,
    /// Where each own track ranks (1 = first) among every candidate after the last refresh.
    own_rank: RwSignal<Vec<(usize, usize)>>,
}

impl Ctx {
    fn track_index(&self, id: &str) -> Option<usize> {
        self.catalog
            .with_untracked(|c| c.as_ref().and_then(|c| c.position(id)))
    }

    /// The bundle's catalog followed by the listener's own tracks (indices past the bundle's
    /// catalog are own tracks, as [`Recommender::recommend_new`] numbers them).
    fn sync_catalog(self) {
        let Some(rec) = self.rec.get_value() else {
            return;
        };
        let mut c = rec.catalog.clone();
        self.own
            .with_untracked(|o| c.tracks.extend(o.iter().map(|o| o.track.clone())));
        self.catalog.set(Some(c));
    }

    /// Recomputes "up next" on the device from the history and the track playing now.
    fn refresh(self) {
        let Some(rec) = self.rec.get_value() else {
            return;
        };
        // Own tracks take part only when the model reads content alone; otherwise they are left
        // out of the history it sees and of its candidates.
        let n_catalog = rec.catalog.tracks.len();
        let new: Vec<crate::bundle::NewTrack> = if rec.accepts_new_tracks() {
            self.own
                .with_untracked(|o| o.iter().map(|o| o.content.clone()).collect())
        } else {
            Vec::new()
        };
        let known = n_catalog + new.len();
        // Each finished play with how much of it was heard; the track playing now has no
        // ratio yet (NaN: the model's "unknown" input).
        let (mut history, mut completions): (Vec<usize>, Vec<f32>) =
            self.plays.with_untracked(|p| {
                p.iter()
                    .filter_map(|p| Some((self.track_index(&p.track_id)?, p.completion as f32)))
                    .unzip()
            });
        if let Some(t) = self.now.get_untracked() {
            history.push(t);
            completions.push(f32::NAN);
        }
        let (history, completions): (Vec<usize>, Vec<f32>) = history
            .into_iter()
            .zip(completions)
            .filter(|(t, _)| *t < known)
            .unzip();
        let mut exclude: Vec<usize> = history.iter().rev().take(NO_REPEAT + 1).copied().collect();
        exclude.sort_unstable();
        exclude.dedup();
        spawn_local(async move {
            let start = now_millis();
            // Every candidate is ranked (the catalog is small), so own tracks can show their place.
            let result = rec
                .recommend_new(&history, Some(&completions), &exclude, usize::MAX, &new)
                .await;
            let elapsed = now_millis() - start;
            match result {
                Ok(mut list) => {
                    let ranks = list
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.track >= n_catalog)
                        .map(|(i, r)| (r.track, i + 1))
                        .collect();
                    self.own_rank.set(ranks);
                    list.truncate(UP_NEXT);
                    let last = history.last().copied();
                    let rows = list
                        .into_iter()
                        .map(|r| {
                            let why = match last {
                                None => "popular in the training sessions".to_string(),
                                Some(l) => explain(&rec, l, r.track, &new),
                            };
                            Rec {
                                track: r.track,
                                why,
                            }
                        })
                        .collect();
                    self.recs.set(rows);
                    self.latency.set(Some(elapsed));
                    self.computed.update(|n| *n += 1);
                    self.rec_error.set(None);
                }
                Err(e) => self.rec_error.set(Some(e)),
            }
        });
    }

    /// Ends the current play (if any) and records it.
    fn finish(self, ended: bool) {
        let Some(started) = self.started.get_value() else {
            return;
        };
        self.started.set_value(None);
        let played = self.tracker.with_value(|t| t.played_s);
        let play = self
            .plays
            .with_untracked(|p| listen::finish_play(p.last(), &started, played, ended));
        self.plays.update(|p| p.push(play.clone()));
        if let Some(db) = self.db.get_value() {
            spawn_local(async move {
                if let Err(e) = storage::put_all(&db, &[play]).await {
                    self.history_error.set(Some(e));
                }
            });
        }
    }

    /// Starts playing catalog track `t` (recording the play it interrupts).
    fn play(self, t: usize) {
        let Some(track) = self
            .catalog
            .with_untracked(|c| c.as_ref().and_then(|c| c.tracks.get(t).cloned()))
        else {
            return;
        };
        if track.audio.is_empty() {
            // An own track after a reload: the page no longer holds its file.
            self.rec_error.set(Some(format!(
                "Pick \"{}\" again under \"Your own track\" to play it: this page does not keep your files.",
                track.title
            )));
            return;
        }
        self.finish(false);
        let Some(audio) = self.audio.get_untracked() else {
            return;
        };
        if track.audio.starts_with("blob:") {
            audio.set_src(&track.audio);
        } else {
            audio.set_src(&format!("{}{}", self.base.get_untracked(), track.audio));
        }
        self.tracker.set_value(Tracker::default());
        self.started.set_value(Some(Started {
            track_id: track.id.clone(),
            title: track.title.clone(),
            artist: track.artist.clone(),
            duration_s: track.duration_s,
            started_ms: js_sys::Date::now(),
        }));
        self.now.set(Some(t));
        if let Ok(p) = audio.play() {
            spawn_local(async move {
                if let Err(e) = wasm_bindgen_futures::JsFuture::from(p).await {
                    leptos::logging::warn!("playback did not start: {e:?}");
                }
            });
        }
        self.refresh();
    }

    /// Moves on to the first recommendation (or the next catalog track).
    fn next(self, ended: bool) {
        self.finish(ended);
        let first = self.recs.with_untracked(|r| r.first().map(|r| r.track));
        let n = self
            .catalog
            .with_untracked(|c| c.as_ref().map_or(0, |c| c.tracks.len()));
        let fallback = self.now.get_untracked().map(|t| (t + 1) % n.max(1));
        self.now.set(None);
        if let Some(t) = first.or(fallback) {
            self.play(t);
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    let preference = ComputePreference::load();
    let diagnostics = RwSignal::new(None::<Diagnostics>);
    let bundle_list = RwSignal::new(None::<Result<Vec<BundleEntry>, String>>);
    let chosen = RwSignal::new(bundles::chosen());
    let bundle_status = RwSignal::new("Looking for model bundles…".to_string());
    let bundle_state = RwSignal::new("pending");
    // Bytes of a large bundle file received so far, and its size when known.
    let llm_download = RwSignal::new(None::<(u64, Option<u64>)>);
    let loaded = RwSignal::new(None::<LoadedBundle>);
    let backend_ready = StoredValue::new_local(None::<burn::tensor::Device>);
    let ctx = Ctx {
        audio: NodeRef::new(),
        rec: StoredValue::new_local(None),
        base: RwSignal::new(String::new()),
        catalog: RwSignal::new(None),
        plays: RwSignal::new(Vec::new()),
        db: StoredValue::new_local(None),
        now: RwSignal::new(None),
        started: StoredValue::new(None),
        tracker: StoredValue::new(Tracker::default()),
        playing: RwSignal::new(false),
        recs: RwSignal::new(Vec::new()),
        latency: RwSignal::new(None),
        computed: RwSignal::new(0),
        rec_error: RwSignal::new(None),
        history_error: RwSignal::new(None),
        own: RwSignal::new(super::settings::load_own()),
        own_rank: RwSignal::new(Vec::new()),
    };
    // A newly analysed own track joins the catalog and the candidates.
    Effect::new(move |prev: Option<usize>| {
        let n = ctx.own.with(Vec::len);
        if prev.is_some_and(|p| p != n) {
            ctx.sync_catalog();
            ctx.refresh();
        }
        n
    });
    let position = RwSignal::new(0.0f64);
    let duration = RwSignal::new(0.0f64);
    let search = RwSignal::new(String::new());
    let import_status = RwSignal::new(None::<(bool, String)>);

    // The listening history from IndexedDB.
    spawn_local(async move {
        match storage::open().await {
            Ok(db) => {
                let db = Rc::new(db);
                match storage::load(&db).await {
                    Ok(p) => ctx.plays.set(p),
                    Err(e) => ctx.history_error.set(Some(e)),
                }
                ctx.db.set_value(Some(db));
                ctx.refresh();
            }
            Err(e) => ctx.history_error.set(Some(format!(
                "{e}: plays are kept only until the page closes"
            ))),
        }
    });

    // Loads the chosen bundle on the device the page computes on.
    let load_bundle = move |entry: BundleEntry| {
        let Some(device) = backend_ready.get_value() else {
            return;
        };
        bundle_state.set("pending");
        bundle_status.set(format!("Loading {} and checking its files…", entry.name));
        spawn_local(async move {
            let progress = move |got: u64, total: Option<u64>| llm_download.set(Some((got, total)));
            let result = bundles::load(&entry, &device, &progress).await;
            llm_download.set(None);
            match result {
                Ok((bundle, rec)) => {
                    ctx.base.set(bundle.base.clone());
                    let rec = Rc::new(rec);
                    expose_recommend(rec.clone());
                    ctx.rec.set_value(Some(rec));
                    ctx.sync_catalog();
                    bundle_status.set(format!(
                        "{}: {} ({} files verified)",
                        bundle.manifest.name,
                        bundle.manifest.description,
                        bundle.manifest.files.len()
                    ));
                    bundle_state.set("ready");
                    loaded.set(Some(bundle));
                    ctx.refresh();
                }
                Err(e) => {
                    bundle_status.set(e);
                    bundle_state.set("failed");
                }
            }
        });
    };

    spawn_local(async move {
        let selected = device::browser_device(preference == ComputePreference::Cpu).await;
        let start = now_millis();
        let result = smoke::run_async(&selected.device).await;
        let smoke_millis = now_millis() - start;
        let (smoke, smoke_error) = match result {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
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
        diagnostics.set(Some(diag));
        backend_ready.set_value(Some(selected.device.clone()));
        let list = bundles::list().await;
        bundle_list.set(Some(list.clone()));
        match list {
            Ok(list) if list.is_empty() => {
                bundle_status
                    .set("No model bundles are installed (see the README: encore export).".into());
                bundle_state.set("failed");
            }
            Ok(list) => {
                let want = chosen.get_untracked();
                let entry = list
                    .iter()
                    .find(|b| Some(&b.path) == want.as_ref())
                    .unwrap_or(&list[0])
                    .clone();
                chosen.set(Some(entry.path.clone()));
                load_bundle(entry);
            }
            Err(e) => {
                bundle_status.set(e);
                bundle_state.set("failed");
            }
        }
    });

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
    let on_bundle_change = move |ev: leptos::ev::Event| {
        let path = event_target_value(&ev);
        bundles::choose(&path);
        let entry = bundle_list.with_untracked(|l| {
            l.as_ref()
                .and_then(|l| l.as_ref().ok())
                .and_then(|l| l.iter().find(|b| b.path == path).cloned())
        });
        if let Some(entry) = entry {
            chosen.set(Some(path));
            ctx.finish(false);
            ctx.now.set(None);
            if let Some(a) = ctx.audio.get_untracked() {
                let _ = a.pause();
            }
            load_bundle(entry);
        }
    };

    let track_of = move |t: usize| {
        ctx.catalog
            .with(|c| c.as_ref().map(|c| c.tracks[t].clone()))
    };
    let now_title = move || {
        ctx.now
            .get()
            .and_then(track_of)
            .map(|t| t.title)
            .unwrap_or_else(|| "Nothing playing".to_string())
    };
    let now_detail = move || {
        ctx.now
            .get()
            .and_then(track_of)
            .map(|t| format!("{} · {} · licence {}", t.artist, t.attribution, t.licence))
    };

    let on_time = move |_| {
        if let Some(a) = ctx.audio.get_untracked() {
            let t = a.current_time();
            let rate = a.playback_rate();
            ctx.tracker.update_value(|tr| tr.observe(t, rate));
            position.set(t);
            let d = a.duration();
            if d.is_finite() {
                duration.set(d);
            }
        }
    };
    let on_seeked = move |_| {
        if let Some(a) = ctx.audio.get_untracked() {
            ctx.tracker.update_value(|tr| tr.seeked(a.current_time()));
        }
    };
    let on_ended = move |_| ctx.next(true);
    let toggle = move |_| {
        let Some(a) = ctx.audio.get_untracked() else {
            return;
        };
        if ctx.now.get_untracked().is_none() {
            ctx.next(false);
        } else if a.paused() {
            let _ = a.play();
        } else {
            let _ = a.pause();
        }
    };
    let on_seek = move |ev: leptos::ev::Event| {
        if let (Some(a), Ok(v)) = (
            ctx.audio.get_untracked(),
            event_target_value(&ev).parse::<f64>(),
        ) {
            a.set_current_time(v);
        }
    };
    let muted = RwSignal::new(false);
    let on_mute = move |ev: leptos::ev::Event| {
        let m = event_target_checked(&ev);
        muted.set(m);
        if let Some(a) = ctx.audio.get_untracked() {
            a.set_muted(m);
        }
    };

    let own_rank_of = move |i: usize| {
        ctx.own_rank
            .with(|r| r.iter().find(|(t, _)| *t == i).map(|(_, k)| *k))
    };
    let own_rank_text = move |i: usize| {
        let accepts = ctx
            .rec
            .with_value(|r| r.as_ref().is_some_and(|r| r.accepts_new_tracks()));
        let n = ctx
            .catalog
            .with(|c| c.as_ref().map_or(0, |c| c.tracks.len()));
        match own_rank_of(i) {
            Some(k) => format!("your track: #{k} of {n} for you right now"),
            None if !accepts => "this model knows tracks by id: choose a content model to have your tracks recommended".to_string(),
            None => String::new(),
        }
    };
    let visible = move || {
        let q = search.get().to_lowercase();
        ctx.catalog.with(|c| {
            c.as_ref()
                .map(|c| {
                    c.tracks
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| {
                            q.is_empty()
                                || t.title.to_lowercase().contains(&q)
                                || t.artist.to_lowercase().contains(&q)
                                || t.tags.iter().any(|g| g.contains(&q))
                        })
                        .map(|(i, t)| (i, t.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };

    let export_history = move |_| {
        let text = ctx.plays.with_untracked(|p| listen::export(p));
        if let Err(e) = download("encore-history.json", &text) {
            import_status.set(Some((false, format!("export failed: {e:?}"))));
        }
    };
    let import_history = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        input.set_value("");
        spawn_local(async move {
            let name = file.name();
            let text = match wasm_bindgen_futures::JsFuture::from(file.text()).await {
                Ok(v) => v.as_string().unwrap_or_default(),
                Err(e) => {
                    import_status.set(Some((false, format!("{name}: unreadable ({e:?})"))));
                    return;
                }
            };
            let imported = match listen::import(&name, &text) {
                Ok(p) => p,
                Err(e) => {
                    import_status.set(Some((false, format!("Not imported, nothing changed: {e}"))));
                    return;
                }
            };
            let n = imported.len();
            if let Some(db) = ctx.db.get_value()
                && let Err(e) = storage::put_all(&db, &imported).await
            {
                import_status.set(Some((false, format!("Not imported, nothing changed: {e}"))));
                return;
            }
            ctx.plays
                .update(|p| *p = listen::merge(std::mem::take(p), imported));
            import_status.set(Some((true, format!("Imported {n} plays from {name}."))));
            ctx.refresh();
        });
    };

    let provenance = move || {
        loaded.with(|b| {
            b.as_ref().map(|b| {
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
                s
            })
        })
    };
    let simulated =
        move || loaded.with(|b| b.as_ref().is_some_and(|b| b.config.provenance.simulated));

    view! {
        <header class="topbar">
            <h1 class="brand">"Encore"</h1>
            <p class="tagline">"Next-track music recommendation, computed privately on your own device."</p>
        </header>
        <main class="app">
            <section class="card player" aria-labelledby="player-heading">
                <h2 id="player-heading">"Now playing"</h2>
                <audio
                    node_ref=ctx.audio
                    data-testid="audio"
                    preload="auto"
                    on:timeupdate=on_time
                    on:seeked=on_seeked
                    on:ended=on_ended
                    on:play=move |_| ctx.playing.set(true)
                    on:pause=move |_| ctx.playing.set(false)
                ></audio>
                <p class="now-title" data-testid="now-playing">{now_title}</p>
                <p class="muted small">{now_detail}</p>
                <div class="controls">
                    <button data-testid="toggle" on:click=toggle aria-label=move || if ctx.playing.get() { "Pause" } else { "Play" }>
                        {move || if ctx.playing.get() { "Pause" } else { "Play" }}
                    </button>
                    <button data-testid="skip" on:click=move |_| ctx.next(false) aria-label="Skip to the next recommendation">
                        "Skip"
                    </button>
                    <label class="mute">
                        <input type="checkbox" data-testid="mute" prop:checked=muted on:change=on_mute />
                        " Mute"
                    </label>
                </div>
                <div class="seek">
                    <span>{move || format_time(position.get())}</span>
                    <input
                        type="range"
                        aria-label="Seek"
                        data-testid="seek"
                        min="0"
                        step="1"
                        prop:max=move || duration.get()
                        prop:value=move || position.get()
                        on:change=on_seek
                    />
                    <span>{move || format_time(duration.get())}</span>
                </div>
            </section>
            <section class="card" aria-labelledby="recs-heading">
                <h2 id="recs-heading">"Up next, for you"</h2>
                <p class="muted small">
                    "Computed in this page on "
                    <span data-testid="backend">{backend_text}</span>
                    " in "
                    <span data-testid="latency-ms" data-count=move || ctx.computed.get().to_string()>{move || ctx.latency.get().map(|l| format!("{l:.1}")).unwrap_or_default()}</span>
                    " ms"
                </p>
                {move || ctx.rec_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <ol data-testid="recommendations" class="recs">
                    <For
                        each=move || ctx.recs.get()
                        key=|r| (r.track, r.why.clone())
                        children=move |r| {
                            let t = track_of(r.track);
                            let title = t.as_ref().map(|t| t.title.clone()).unwrap_or_default();
                            let artist = t.as_ref().map(|t| t.artist.clone()).unwrap_or_default();
                            let id = t.map(|t| t.id).unwrap_or_default();
                            let label = format!("Play {title}");
                            view! {
                                <li data-testid="rec" data-track-id=id>
                                    <button class="link" on:click=move |_| ctx.play(r.track) aria-label=label>
                                        <strong>{title}</strong>
                                        " · "
                                        <span class="muted">{artist}</span>
                                    </button>
                                    <span class="why">{r.why.clone()}</span>
                                </li>
                            }
                        }
                    />
                </ol>
            </section>
            <section class="card catalog-card" aria-labelledby="catalog-heading">
                <h2 id="catalog-heading">"Catalog"</h2>
                <input
                    type="search"
                    class="search"
                    placeholder="Search title, artist or tag"
                    aria-label="Search the catalog"
                    data-testid="search"
                    on:input=move |ev| search.set(event_target_value(&ev))
                />
                <ul data-testid="catalog" class="catalog">
                    <For
                        each=visible
                        key=|(i, t)| (*i, t.audio.is_empty())
                        children=move |(i, t)| {
                            let label = format!("Play {} by {}", t.title, t.artist);
                            let info = format!("{} · {} · {}", t.artist, format_time(t.duration_s), t.tags.join(", "));
                            view! {
                                <li data-testid="track" data-track-id=t.id.clone() class:current=move || ctx.now.get() == Some(i)>
                                    <button data-testid="play" on:click=move |_| ctx.play(i) aria-label=label disabled=t.audio.is_empty() title=if t.audio.is_empty() { "Pick the file again under Your own track to play it" } else { "" }>"▶"</button>
                                    <div>
                                        <strong>{t.title.clone()}</strong>
                                        <div class="muted small">{info}</div>
                                        <div class="muted tiny">{format!("{} · {}", t.licence, t.attribution)}</div>
                                        {t.id.starts_with("own/").then(|| view! {
                                            <div class="muted tiny" data-testid="own-rank" data-rank=move || own_rank_of(i).map(|r| r.to_string()).unwrap_or_default()>
                                                {move || own_rank_text(i)}
                                            </div>
                                        })}
                                    </div>
                                </li>
                            }
                        }
                    />
                </ul>
            </section>
            <super::analyse::AnalyseTrack device=backend_ready own=ctx.own />
            <section class="card" aria-labelledby="history-heading">
                <h2 id="history-heading">"Your listening"</h2>
                <p class="muted small">"Stored only in this browser (IndexedDB). A new session starts after 20 minutes without music."</p>
                {move || ctx.history_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <div class="controls">
                    <button data-testid="history-export" on:click=export_history>"Export history"</button>
                    <label class="file">
                        "Import history "
                        <input type="file" accept="application/json,.json" data-testid="history-import" on:change=import_history />
                    </label>
                </div>
                {move || import_status.get().map(|(ok, m)| view! {
                    <p role="status" data-testid="import-status" data-state=if ok { "ok" } else { "error" } class:error=!ok>{m}</p>
                })}
                <ol data-testid="history" class="history" reversed>
                    {move || {
                        ctx.plays.get().into_iter().rev().map(|p| {
                            let pct = format!("{:.0} %", 100.0 * p.completion);
                            view! {
                                <li
                                    data-testid="history-play"
                                    data-track-id=p.track_id.clone()
                                    data-completion=p.completion.to_string()
                                    data-skipped=p.skipped.to_string()
                                    data-session=p.session.to_string()
                                >
                                    <strong>{p.title.clone()}</strong>
                                    " · "
                                    <span class="muted">{p.artist.clone()}</span>
                                    <div class="muted small">
                                        {format!("session {} · {} · heard {} of {} ({pct})", p.session + 1, format_when(p.started_ms), format_time(p.played_s), format_time(p.duration_s))}
                                        {if p.skipped { " · skipped" } else { "" }}
                                    </div>
                                </li>
                            }
                        }).collect_view()
                    }}
                </ol>
            </section>
            <section class="card" aria-labelledby="device-heading">
                <h2 id="device-heading">"Device and model"</h2>
                <dl class="facts">
                    <dt>"Compute backend"</dt>
                    <dd>{backend_text}</dd>
                    {move || fallback_text().map(|r| view! { <dd class="note">{r}</dd> })}
                    <dt>"On-device check"</dt>
                    <dd data-testid="smoke-result" data-state=smoke_state data-values=smoke_values>
                        {smoke_text}
                    </dd>
                    <dt>"Model"</dt>
                    <dd data-testid="bundle-status" data-state=move || bundle_state.get()>{move || bundle_status.get()}</dd>
                    {move || llm_download.get().map(|(got, total)| {
                        let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
                        let text = match total {
                            Some(t) => format!("Downloading the language model: {} of {}", mb(got), mb(t)),
                            None => format!("Downloading the language model: {}", mb(got)),
                        };
                        view! {
                            <dd>
                                // Without a known size the bar is indeterminate.
                                <progress
                                    data-testid="bundle-progress"
                                    max=total.map(|t| t.to_string())
                                    value=total.map(|_| got.to_string())
                                ></progress>
                                " " {text}
                            </dd>
                        }
                    })}
                    {move || provenance().map(|p| view! { <dd class="note">{p}</dd> })}
                    {move || simulated().then(|| view! {
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
                        {move || bundle_list.get().and_then(|l| l.ok()).unwrap_or_default().into_iter().map(|b| {
                            let selected = chosen.get().as_ref() == Some(&b.path);
                            view! { <option value=b.path.clone() selected=selected title=b.description.clone()>{b.name.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </section>
        </main>
        <footer class="footer">
            "Everything runs in this page: no listening data leaves your browser. Music: see each track's licence and credit."
        </footer>
    }
}

/// Why `track` follows `last` (indices as [`Recommender::recommend_new`] numbers them): the
/// artist and tags they share, the tags musicnn hears in both, how alike they sound.
fn explain(
    rec: &Recommender,
    last: usize,
    track: usize,
    new: &[crate::bundle::NewTrack],
) -> String {
    let n = rec.catalog.tracks.len();
    let mut parts = Vec::new();
    if track >= n {
        parts.push("your own track".to_string());
    }
    if last < n && track < n {
        let traits = shared_traits(&rec.catalog.tracks[last], &rec.catalog.tracks[track]);
        if !traits.is_empty() {
            parts.push(format!("shares {} with your last track", traits.join(", ")));
        }
    }
    let a = rec.affinity(last, track, new);
    for (modality, labels) in &a.shared {
        let labels = labels.join(", ").to_lowercase();
        parts.push(match modality.as_str() {
            "audio_tags" => format!("both sound {labels}"),
            "mgphot" => format!("both rated high on {labels} (MGPHot)"),
            other => format!("both high on {labels} ({other})"),
        });
    }
    if let Some(s) = a.sound {
        parts.push(format!("sound similarity {:.0} %", 100.0 * s.max(0.0)));
    }
    if parts.is_empty() || (parts.len() == 1 && track >= n) {
        parts.push("often follows your recent tracks in listening sessions".to_string());
    }
    parts.join("; ")
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
                    .map_err(|e| JsValue::from_str(&e))?;
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

/// Offers `text` as a file download.
fn download(name: &str, text: &str) -> Result<(), JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url)?;
    Ok(())
}
