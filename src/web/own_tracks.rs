//! "Your own track": the listener picks an audio file; musicnn listens to it in the page (see
//! `analyse`), the card shows its top tags, and the file joins the catalog as an own track.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::analyse::{self, Analysis, now_millis};
use super::error::WebError;
use super::page::Page;
use crate::features::musicnn::{self, Musicnn};

/// The card's signals, and musicnn once loaded (on the device it was loaded on).
#[derive(Clone, Copy)]
struct Card {
    page: Page,
    model: StoredValue<Option<(burn::tensor::Device, Rc<Musicnn>)>, LocalStorage>,
    status: RwSignal<String>,
    state: RwSignal<&'static str>,
    /// Patches done, of how many.
    progress: RwSignal<(usize, usize)>,
    result: RwSignal<Option<Analysis>>,
    elapsed: RwSignal<f64>,
}

impl Card {
    /// Analyses a picked file on the page's device (or the CPU in place of a software adapter).
    fn pick(self, file: web_sys::File) {
        let Some(page_device) = self.page.device.get_value() else {
            self.status
                .set("The compute device is not ready yet.".into());
            return;
        };
        self.state.set("running");
        self.result.set(None);
        self.progress.set((0, 0));
        spawn_local(async move {
            let (device, on) = analyse::analysis_device(page_device).await;
            match self.analyse(&file, &device).await {
                Ok(a) => {
                    self.status.set(format!(
                        "{}: {:.0} s of audio in {:.0} ms ({:.1}x real time) on {on}",
                        a.file,
                        a.seconds,
                        a.millis,
                        a.seconds * 1000.0 / a.millis.max(1e-9)
                    ));
                    self.result.set(Some(a));
                    self.state.set("done");
                }
                Err(e) => {
                    self.status.set(e.to_string());
                    self.state.set("failed");
                }
            }
        });
    }

    /// Decodes the file, runs musicnn and adds the file to the own tracks.
    async fn analyse(
        self,
        file: &web_sys::File,
        device: &burn::tensor::Device,
    ) -> Result<Analysis, WebError> {
        let name = file.name();
        self.status.set(format!("Decoding {name}…"));
        let audio = analyse::decode_16k(file)
            .await
            .map_err(|e| WebError::within(&name, e))?;
        let m = self.musicnn(device).await?;
        self.status.set(format!("Listening to {name}…"));
        let t0 = now_millis();
        let (progress, elapsed) = (self.progress, self.elapsed);
        let f = analyse::listen(&m, &audio, device, |d, n| {
            progress.set((d, n));
            elapsed.set(now_millis() - t0);
        })
        .await?
        .ok_or_else(|| WebError::within(&name, "no audio"))?;
        let seconds = analyse::seconds(&audio);
        let url = analyse::object_url(file)?;
        self.page
            .add_own(analyse::own_track(file, url, seconds, &f));
        Ok(Analysis {
            file: name,
            seconds,
            patches: f.patches,
            millis: now_millis() - t0,
            top: musicnn::top_tags(&f.tags, 5),
        })
    }

    /// musicnn on `device`, loaded the first time.
    async fn musicnn(self, device: &burn::tensor::Device) -> Result<Rc<Musicnn>, WebError> {
        if let Some((_, m)) = self.model.get_value().filter(|(d, _)| d == device) {
            return Ok(m);
        }
        self.status.set("Loading musicnn…".into());
        let m = Rc::new(analyse::load_musicnn(device).await?);
        self.model.set_value(Some((device.clone(), m.clone())));
        Ok(m)
    }
}

#[component]
pub fn OwnTracks(page: Page) -> impl IntoView {
    let card = Card {
        page,
        model: StoredValue::new_local(None),
        status: RwSignal::new(String::new()),
        state: RwSignal::new("idle"),
        progress: RwSignal::new((0usize, 0usize)),
        result: RwSignal::new(None),
        elapsed: RwSignal::new(0.0f64),
    };
    let Card {
        status,
        state,
        progress,
        result,
        elapsed,
        ..
    } = card;
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            card.pick(file);
        }
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
            {move || result.get().map(tags)}
        </section>
    }
}

/// The analysis's top tags.
fn tags(a: Analysis) -> impl IntoView {
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
}
