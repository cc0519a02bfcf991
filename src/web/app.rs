//! The top-level component: the page's shared state, and its parts in order (the player, "up
//! next", the catalog, the listener's own track, the listening history, the device and model).

use leptos::prelude::*;

use super::catalog::CatalogCard;
use super::device::DevicePanel;
use super::history::History;
use super::own_tracks::OwnTracks;
use super::page::Page;
use super::player::Player;
use super::up_next::UpNext;

#[component]
pub fn App() -> impl IntoView {
    let page = Page::new();
    view! {
        <header class="topbar">
            <h1 class="brand">"Encore"</h1>
            <p class="tagline">"Next-track music recommendation, computed privately on your own device."</p>
        </header>
        <main class="app">
            <Player page />
            <UpNext page />
            <CatalogCard page />
            <OwnTracks page />
            <History page />
            <DevicePanel page />
        </main>
        <footer class="footer">
            "Everything runs in this page: no listening data leaves your browser. Music: see each track's licence and credit."
        </footer>
    }
}
