//! "Your listening": the history kept in IndexedDB (read when the page opens), newest first,
//! with export to and import from a JSON file.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};

use super::page::Page;
use super::state::format_time;
use super::storage;
use crate::data::history::{self, Play};

#[component]
pub fn History(page: Page) -> impl IntoView {
    open_store(page);
    let import_status = RwSignal::new(None::<(bool, String)>);
    let plays = page.watch(|s| s.plays().to_vec());
    let export_history = move |_| {
        let text = page.state.with_untracked(|s| history::export(s.plays()));
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
            let (ok, message) = match import(page, file).await {
                Ok(m) => (true, m),
                Err(m) => (false, m),
            };
            import_status.set(Some((ok, message)));
        });
    };

    view! {
        <section class="card" aria-labelledby="history-heading">
            <h2 id="history-heading">"Your listening"</h2>
            <p class="muted small">"Stored only in this browser (IndexedDB). A new session starts after 20 minutes without music."</p>
            {move || page.history_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
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
                {move || plays.get().into_iter().rev().map(row).collect_view()}
            </ol>
        </section>
    }
}

/// Reads the history from IndexedDB, then ranks with it; without IndexedDB the plays last only
/// as long as the page.
fn open_store(page: Page) {
    spawn_local(async move {
        match storage::open().await {
            Ok(db) => {
                let db = Rc::new(db);
                match storage::load(&db).await {
                    Ok(p) => page.state.update(|s| s.load_plays(p)),
                    Err(e) => page.history_error.set(Some(e.to_string())),
                }
                page.db.set_value(Some(db));
                page.refresh();
            }
            Err(e) => page.history_error.set(Some(format!(
                "{e}: plays are kept only until the page closes"
            ))),
        }
    });
}

/// Imports a history file: checked, stored, then merged into the page's history and ranked
/// with. The message says what happened; on an error nothing changed.
async fn import(page: Page, file: web_sys::File) -> Result<String, String> {
    let name = file.name();
    let text = match wasm_bindgen_futures::JsFuture::from(file.text()).await {
        Ok(v) => v.as_string().unwrap_or_default(),
        Err(e) => return Err(format!("{name}: unreadable ({e:?})")),
    };
    let imported =
        history::import(&name, &text).map_err(|e| format!("Not imported, nothing changed: {e}"))?;
    let n = imported.len();
    if let Some(db) = page.db.get_value() {
        storage::put_all(&db, &imported)
            .await
            .map_err(|e| format!("Not imported, nothing changed: {e}"))?;
    }
    page.state.update(|s| s.import(imported));
    page.refresh();
    Ok(format!("Imported {n} plays from {name}."))
}

/// One play, with its session, when it started and how much of it was heard.
fn row(p: Play) -> impl IntoView {
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
}

fn format_when(ms: f64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(ms));
    String::from(d.to_locale_string("default", &JsValue::UNDEFINED))
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
