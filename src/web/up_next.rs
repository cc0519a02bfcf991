//! "Up next, for you": the last ranking, where and how fast it was computed, each row with why.

use leptos::prelude::*;

use super::page::Page;
use super::state::Rec;

#[component]
pub fn UpNext(page: Page) -> impl IntoView {
    let computed = page.watch(|s| s.computed());
    let latency = page.watch(|s| s.latency());
    let rec_error = page.watch(|s| s.rec_error().map(str::to_string));
    let rows = page.watch(|s| s.up_next().to_vec());
    view! {
        <section class="card" aria-labelledby="recs-heading">
            <h2 id="recs-heading">"Up next, for you"</h2>
            <p class="muted small">
                "Computed in this page on "
                <span data-testid="backend">{move || page.backend_text()}</span>
                " in "
                <span data-testid="latency-ms" data-count=move || computed.get().to_string()>{move || latency.get().map(|l| format!("{l:.1}")).unwrap_or_default()}</span>
                " ms"
            </p>
            {move || rec_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <ol data-testid="recommendations" class="recs">
                <For
                    each=move || rows.get()
                    key=|r| (r.track, r.why.clone())
                    children=move |r| row(page, r)
                />
            </ol>
        </section>
    }
}

/// One recommendation: a button that plays it, and why.
fn row(page: Page, r: Rec) -> impl IntoView {
    let t = page.state.with_untracked(|s| s.track(r.track).cloned());
    let title = t.as_ref().map(|t| t.title.clone()).unwrap_or_default();
    let artist = t.as_ref().map(|t| t.artist.clone()).unwrap_or_default();
    let id = t.map(|t| t.id).unwrap_or_default();
    let label = format!("Play {title}");
    view! {
        <li data-testid="rec" data-track-id=id>
            <button class="link" on:click=move |_| page.play(r.track) aria-label=label>
                <strong>{title}</strong>
                " · "
                <span class="muted">{artist}</span>
            </button>
            <span class="why">{r.why.clone()}</span>
        </li>
    }
}
