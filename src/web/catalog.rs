//! "Catalog": every track the page can play (the bundle's, then the listener's own), searchable,
//! the one playing marked, each own track with its place in the last ranking.

use leptos::prelude::*;

use super::page::Page;
use super::state::{PageState, format_time, own_rank_text, rank_of, search};
use crate::catalog::Track;

/// What the rows show of the page's state.
#[derive(Clone, Copy)]
struct Marks {
    page: Page,
    now: Memo<Option<usize>>,
    own_ranks: Memo<Vec<(usize, usize)>>,
    n_tracks: Memo<usize>,
    accepts_new: Memo<bool>,
}

#[component]
pub fn CatalogCard(page: Page) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let catalog = page.watch(|s| s.catalog().cloned());
    let marks = Marks {
        page,
        now: page.watch(PageState::now),
        own_ranks: page.watch(|s| s.own_ranks().to_vec()),
        n_tracks: page.watch(PageState::n_tracks),
        accepts_new: page.watch(PageState::accepts_new_tracks),
    };
    let visible = move || {
        let q = query.get();
        catalog.with(|c| search(c.as_ref(), &q))
    };
    view! {
        <section class="card catalog-card" aria-labelledby="catalog-heading">
            <h2 id="catalog-heading">"Catalog"</h2>
            <input
                type="search"
                class="search"
                placeholder="Search title, artist or tag"
                aria-label="Search the catalog"
                data-testid="search"
                on:input=move |ev| query.set(event_target_value(&ev))
            />
            <ul data-testid="catalog" class="catalog">
                <For
                    each=visible
                    key=|(i, t)| (*i, t.audio.is_empty())
                    children=move |(i, t)| row(marks, i, t)
                />
            </ul>
        </section>
    }
}

/// Catalog track `i`: a play button, its title, credits and, for an own track, its place.
fn row(marks: Marks, i: usize, t: Track) -> impl IntoView {
    let Marks { page, now, .. } = marks;
    let label = format!("Play {} by {}", t.title, t.artist);
    let info = format!(
        "{} · {} · {}",
        t.artist,
        format_time(t.duration_s),
        t.tags.join(", ")
    );
    view! {
        <li data-testid="track" data-track-id=t.id.clone() class:current=move || now.get() == Some(i)>
            <button data-testid="play" on:click=move |_| page.play(i) aria-label=label disabled=t.audio.is_empty() title=if t.audio.is_empty() { "Pick the file again under Your own track to play it" } else { "" }>"▶"</button>
            <div>
                <strong>{t.title.clone()}</strong>
                <div class="muted small">{info}</div>
                <div class="muted tiny">{format!("{} · {}", t.licence, t.attribution)}</div>
                {t.id.starts_with("own/").then(|| own_rank(marks, i))}
            </div>
        </li>
    }
}

/// Where own track `i` ranks now.
fn own_rank(marks: Marks, i: usize) -> impl IntoView {
    let rank = move || marks.own_ranks.with(|r| rank_of(r, i));
    let text = move || own_rank_text(rank(), marks.n_tracks.get(), marks.accepts_new.get());
    view! {
        <div class="muted tiny" data-testid="own-rank" data-rank=move || rank().map(|r| r.to_string()).unwrap_or_default()>
            {text}
        </div>
    }
}
