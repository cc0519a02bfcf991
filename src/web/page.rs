//! What the page's components share: the [`PageState`] in a signal, the loaded recommender, the
//! audio element, the history's store, the compute device and what the page found out about it;
//! and the actions several components take (play, move on, stop, rank again).

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::settings;
use super::state::{OwnTrack, PageState, reason};
use super::storage;
use crate::bundle::{NewTrack, Recommender};
use crate::catalog::shared_traits;
use crate::data::history::Play;
use crate::device::BackendKind;
use crate::device::smoke::SmokeReport;

/// What the page found out about the device, also published as `window.encoreDiagnostics`
/// (through serde-wasm-bindgen) for developer tools and the end-to-end test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostics {
    pub backend: BackendKind,
    pub adapter: String,
    pub label: String,
    pub fallback_reason: Option<String>,
    pub smoke: Option<SmokeReport>,
    pub smoke_error: Option<String>,
    pub smoke_millis: f64,
}

/// The page's clock in ms (for timings).
pub fn now_millis() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// Everything the components share (cheap to copy: handles only).
#[derive(Clone, Copy)]
pub struct Page {
    pub state: RwSignal<PageState>,
    pub audio: NodeRef<leptos::html::Audio>,
    pub rec: StoredValue<Option<Rc<Recommender>>, LocalStorage>,
    pub db: StoredValue<Option<Rc<idb::Database>>, LocalStorage>,
    /// The device the page computes on, once chosen.
    pub device: StoredValue<Option<burn::tensor::Device>, LocalStorage>,
    pub diagnostics: RwSignal<Option<Diagnostics>>,
    pub history_error: RwSignal<Option<String>>,
}

impl Page {
    /// A fresh page, with the own tracks kept from earlier visits.
    pub fn new() -> Self {
        Self {
            state: RwSignal::new(PageState::new(settings::load_own())),
            audio: NodeRef::new(),
            rec: StoredValue::new_local(None),
            db: StoredValue::new_local(None),
            device: StoredValue::new_local(None),
            diagnostics: RwSignal::new(None),
            history_error: RwSignal::new(None),
        }
    }

    /// A part of the state to show: it notifies only when that part changes.
    pub fn watch<T>(self, part: impl Fn(&PageState) -> T + Send + Sync + 'static) -> Memo<T>
    where
        T: Clone + PartialEq + Send + Sync + 'static,
    {
        Memo::new(move |_| self.state.with(&part))
    }

    /// The compute backend's label.
    pub fn backend_text(self) -> String {
        self.diagnostics.with(|d| match d {
            Some(d) => d.label.clone(),
            None => "detecting…".to_string(),
        })
    }

    /// A bundle is loaded: its recommender ranks from now on, its catalog leads the page's.
    pub fn set_recommender(self, base: String, rec: Rc<Recommender>) {
        self.rec.set_value(Some(rec.clone()));
        self.state
            .update(|s| s.set_bundle(base, rec.catalog.clone(), rec.accepts_new_tracks()));
    }

    /// Adds a newly analysed own track and keeps the list; a new one joins the ranking.
    pub fn add_own(self, mine: OwnTrack) {
        let changed = self.state.try_update(|s| s.add_own(mine)).unwrap_or(false);
        self.state.with_untracked(|s| settings::save_own(s.own()));
        if changed {
            self.refresh();
        }
    }

    /// Stores a finished play in IndexedDB (when the page has it).
    pub fn store(self, play: Option<Play>) {
        let (Some(play), Some(db)) = (play, self.db.get_value()) else {
            return;
        };
        spawn_local(async move {
            if let Err(e) = storage::put_all(&db, &[play]).await {
                self.history_error.set(Some(e.to_string()));
            }
        });
    }

    /// Recomputes "up next" on the device from the history and the track playing now.
    pub fn refresh(self) {
        let Some(rec) = self.rec.get_value() else {
            return;
        };
        let Some(req) = self.state.with_untracked(PageState::rank_request) else {
            return;
        };
        spawn_local(async move {
            let start = now_millis();
            // Every candidate is ranked (the catalog is small), so own tracks can show their place.
            let result = rec
                .recommend_new(
                    &req.history,
                    Some(&req.completions),
                    &req.exclude,
                    usize::MAX,
                    &req.new,
                )
                .await;
            let elapsed = now_millis() - start;
            match result {
                Ok(list) => {
                    let ranked: Vec<usize> = list.iter().map(|r| r.track).collect();
                    let why = |last, track| explain(&rec, last, track, &req.new);
                    self.state
                        .update(|s| s.show_ranking(&req, &ranked, elapsed, why));
                }
                Err(e) => self.state.update(|s| s.ranking_failed(e.to_string())),
            }
        });
    }

    /// Starts playing catalog track `t` (recording the play it interrupts).
    pub fn play(self, t: usize) {
        let start = self.state.try_update(|s| s.start(t, js_sys::Date::now()));
        let Some(start) = start.flatten() else {
            return;
        };
        self.store(start.finished);
        let Some(audio) = self.audio.get_untracked() else {
            return;
        };
        audio.set_src(&start.src);
        if let Ok(p) = audio.play() {
            spawn_local(async move {
                if let Err(e) = wasm_bindgen_futures::JsFuture::from(p).await {
                    leptos::logging::warn!("playback did not start: {e:?}");
                }
            });
        }
        self.refresh();
    }

    /// Moves on to the first recommendation (or the next catalog track); `ended`: the track
    /// played to its end.
    pub fn next(self, ended: bool) {
        let (finished, then) = self.state.try_update(|s| s.next(ended)).unwrap_or_default();
        self.store(finished);
        if let Some(t) = then {
            self.play(t);
        }
    }

    /// Ends the play in progress (recorded) and pauses the player.
    pub fn stop(self) {
        let finished = self.state.try_update(|s| s.finish(false)).flatten();
        self.store(finished);
        if let Some(a) = self.audio.get_untracked() {
            let _ = a.pause();
        }
    }
}

/// Why `track` follows `last` (indices as [`Recommender::recommend_new`] numbers them): the
/// artist and tags they share, the tags musicnn hears in both, how alike they sound.
fn explain(rec: &Recommender, last: usize, track: usize, new: &[NewTrack]) -> String {
    let n = rec.catalog.tracks.len();
    let traits = if last < n && track < n {
        shared_traits(&rec.catalog.tracks[last], &rec.catalog.tracks[track])
    } else {
        Vec::new()
    };
    reason(track >= n, &traits, &rec.affinity(last, track, new))
}
