//! "Now playing": the audio element, the track playing, play/pause, skip, mute and seek. The
//! player's clock feeds the seconds heard of the play in progress.

use leptos::prelude::*;

use super::page::Page;
use super::state::format_time;

#[component]
pub fn Player(page: Page) -> impl IntoView {
    let audio = page.audio;
    let position = RwSignal::new(0.0f64);
    let duration = RwSignal::new(0.0f64);
    let playing = RwSignal::new(false);
    let now = page.watch(|s| s.now_track().cloned());
    let now_title = move || {
        now.get()
            .map(|t| t.title)
            .unwrap_or_else(|| "Nothing playing".to_string())
    };
    let now_detail = move || {
        now.get()
            .map(|t| format!("{} · {} · licence {}", t.artist, t.attribution, t.licence))
    };

    let on_time = move |_| {
        if let Some(a) = audio.get_untracked() {
            let t = a.current_time();
            let rate = a.playback_rate();
            // Untracked: the seconds heard are not shown, so nothing is told of them.
            page.state.update_untracked(|s| s.heard(t, rate));
            position.set(t);
            let d = a.duration();
            if d.is_finite() {
                duration.set(d);
            }
        }
    };
    let on_seeked = move |_| {
        if let Some(a) = audio.get_untracked() {
            page.state.update_untracked(|s| s.seeked(a.current_time()));
        }
    };
    let on_ended = move |_| page.next(true);
    view! {
        <section class="card player" aria-labelledby="player-heading">
            <h2 id="player-heading">"Now playing"</h2>
            <audio
                node_ref=audio
                data-testid="audio"
                preload="auto"
                on:timeupdate=on_time
                on:seeked=on_seeked
                on:ended=on_ended
                on:play=move |_| playing.set(true)
                on:pause=move |_| playing.set(false)
            ></audio>
            <p class="now-title" data-testid="now-playing">{now_title}</p>
            <p class="muted small">{now_detail}</p>
            {controls(page, playing)}
            {seek_bar(page, position, duration)}
        </section>
    }
}

/// Play/pause (or the first recommendation when nothing plays), skip, and mute.
fn controls(page: Page, playing: RwSignal<bool>) -> impl IntoView {
    let audio = page.audio;
    let muted = RwSignal::new(false);
    let toggle = move |_| {
        let Some(a) = audio.get_untracked() else {
            return;
        };
        if page.state.with_untracked(|s| s.now().is_none()) {
            page.next(false);
        } else if a.paused() {
            let _ = a.play();
        } else {
            let _ = a.pause();
        }
    };
    let on_mute = move |ev: leptos::ev::Event| {
        let m = event_target_checked(&ev);
        muted.set(m);
        if let Some(a) = audio.get_untracked() {
            a.set_muted(m);
        }
    };
    view! {
        <div class="controls">
            <button data-testid="toggle" on:click=toggle aria-label=move || if playing.get() { "Pause" } else { "Play" }>
                {move || if playing.get() { "Pause" } else { "Play" }}
            </button>
            <button data-testid="skip" on:click=move |_| page.next(false) aria-label="Skip to the next recommendation">
                "Skip"
            </button>
            <label class="mute">
                <input type="checkbox" data-testid="mute" prop:checked=muted on:change=on_mute />
                " Mute"
            </label>
        </div>
    }
}

/// Where the track is, of how long, and a slider to move there.
fn seek_bar(page: Page, position: RwSignal<f64>, duration: RwSignal<f64>) -> impl IntoView {
    let audio = page.audio;
    let on_seek = move |ev: leptos::ev::Event| {
        if let (Some(a), Ok(v)) = (
            audio.get_untracked(),
            event_target_value(&ev).parse::<f64>(),
        ) {
            a.set_current_time(v);
        }
    };
    view! {
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
    }
}
