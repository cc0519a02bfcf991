//! The page's state as plain data: the catalog it plays from (the loaded bundle's, then the
//! listener's own tracks), the listening history and the play in progress, and what the last
//! ranking showed. The rules live here too: how a play is recorded (completion, skip, session),
//! what the recommender is asked after each event, and which rows "up next" shows.
//!
//! No leptos and no browser: the components keep a [`PageState`] in a signal and change it only
//! through its methods, and the native unit tests below check them.

use serde::{Deserialize, Serialize};

use crate::bundle::{Affinity, NewTrack};
use crate::catalog::{Catalog, Track};
use crate::data::history::{self, Play, Started, Tracker};

/// How many recommendations the app shows.
pub const UP_NEXT: usize = 10;
/// Recently played tracks are not recommended again.
pub const NO_REPEAT: usize = 5;

/// A listener's own track: its catalog entry (the audio URL lives only as long as the page that
/// read the file) and its content as musicnn heard it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnTrack {
    pub track: Track,
    pub content: NewTrack,
}

/// One row of "up next".
#[derive(Clone, Debug, PartialEq)]
pub struct Rec {
    pub track: usize,
    pub why: String,
}

/// What the page needs of the loaded bundle.
#[derive(Clone, Debug)]
struct Bundle {
    /// URL prefix of the bundle's files (its catalog's audio paths are relative to it).
    base: String,
    catalog: Catalog,
    /// The model reads content alone, so the listener's own tracks can take part.
    accepts_new_tracks: bool,
}

/// The play in progress: the track (catalog index), its record so far, and the seconds heard.
#[derive(Clone, Debug)]
struct Current {
    track: usize,
    started: Started,
    tracker: Tracker,
}

/// What [`PageState::start`] asks of the player.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    /// The audio to play.
    pub src: String,
    /// The play the new one interrupts, to store.
    pub finished: Option<Play>,
}

/// What the recommender is asked after an event ([`Recommender::recommend_new`] with every
/// candidate ranked). Indices past the bundle's catalog are own tracks, in `new`'s order.
///
/// [`Recommender::recommend_new`]: crate::bundle::Recommender::recommend_new
#[derive(Clone, Debug)]
pub struct RankRequest {
    /// Each finished play the model can read, oldest first, then the track playing now.
    pub history: Vec<usize>,
    /// How much of each play in `history` was heard (NaN for the track playing now: the
    /// model's "unknown").
    pub completions: Vec<f32>,
    /// The last few tracks of `history` (sorted, once each): not recommended again.
    pub exclude: Vec<usize>,
    /// The own tracks' content, when the model reads content alone (else none).
    pub new: Vec<NewTrack>,
    /// The size of the bundle's catalog when the request was made.
    pub n_catalog: usize,
}

/// Everything the page shows and records, outside the device and model panel.
#[derive(Clone, Debug, Default)]
pub struct PageState {
    bundle: Option<Bundle>,
    own: Vec<OwnTrack>,
    /// The bundle's catalog followed by the own tracks (indices past the bundle's catalog are
    /// own tracks, as [`RankRequest`] numbers them); none until a bundle is loaded.
    catalog: Option<Catalog>,
    plays: Vec<Play>,
    current: Option<Current>,
    up_next: Vec<Rec>,
    /// Where each own track ranks (1 = first) among every candidate after the last ranking.
    own_rank: Vec<(usize, usize)>,
    latency: Option<f64>,
    /// How many rankings were shown (tests and benchmarks wait on it).
    computed: u32,
    rec_error: Option<String>,
}

impl PageState {
    /// The state of a fresh page: the own tracks kept from earlier visits, nothing else yet.
    pub fn new(own: Vec<OwnTrack>) -> Self {
        Self {
            own,
            ..Self::default()
        }
    }

    // The catalog.

    /// A bundle has loaded: its files are under `base`, its catalog leads the page's.
    pub fn set_bundle(&mut self, base: String, catalog: Catalog, accepts_new_tracks: bool) {
        self.bundle = Some(Bundle {
            base,
            catalog,
            accepts_new_tracks,
        });
        self.sync_catalog();
    }

    fn sync_catalog(&mut self) {
        let Some(bundle) = &self.bundle else {
            return;
        };
        let mut c = bundle.catalog.clone();
        c.tracks.extend(self.own.iter().map(|o| o.track.clone()));
        self.catalog = Some(c);
    }

    /// Adds (or replaces, by id) an own track. True when the number of own tracks changed: the
    /// catalog then has the track and the ranking should be redone. A replaced track leaves the
    /// catalog as it was (as the page has always done).
    pub fn add_own(&mut self, mine: OwnTrack) -> bool {
        let before = self.own.len();
        self.own.retain(|o| o.track.id != mine.track.id);
        self.own.push(mine);
        let changed = self.own.len() != before;
        if changed {
            self.sync_catalog();
        }
        changed
    }

    pub fn own(&self) -> &[OwnTrack] {
        &self.own
    }

    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
    }

    /// Catalog track `t`.
    pub fn track(&self, t: usize) -> Option<&Track> {
        self.catalog.as_ref()?.tracks.get(t)
    }

    /// How many tracks the catalog lists (own ones included).
    pub fn n_tracks(&self) -> usize {
        self.catalog.as_ref().map_or(0, |c| c.tracks.len())
    }

    pub fn accepts_new_tracks(&self) -> bool {
        self.bundle.as_ref().is_some_and(|b| b.accepts_new_tracks)
    }

    fn track_index(&self, id: &str) -> Option<usize> {
        self.catalog.as_ref()?.position(id)
    }

    // Listening.

    /// The finished plays, oldest first.
    pub fn plays(&self) -> &[Play] {
        &self.plays
    }

    /// The stored history, read when the page opens.
    pub fn load_plays(&mut self, plays: Vec<Play>) {
        self.plays = plays;
    }

    /// Merges imported plays (already checked) into the history.
    pub fn import(&mut self, imported: Vec<Play>) {
        self.plays = history::merge(std::mem::take(&mut self.plays), imported);
    }

    /// The catalog index of the track playing now.
    pub fn now(&self) -> Option<usize> {
        self.current.as_ref().map(|c| c.track)
    }

    pub fn now_track(&self) -> Option<&Track> {
        self.track(self.now()?)
    }

    /// Starts catalog track `t` at `now_ms` (ms since the Unix epoch), finishing the play it
    /// interrupts. None when there is no such track, or when it is an own track whose file this
    /// page no longer holds (then the error says so, and the play in progress goes on).
    pub fn start(&mut self, t: usize, now_ms: f64) -> Option<Start> {
        let track = self.track(t)?.clone();
        if track.audio.is_empty() {
            self.rec_error = Some(format!(
                "Pick \"{}\" again under \"Your own track\" to play it: this page does not keep your files.",
                track.title
            ));
            return None;
        }
        let finished = self.finish(false);
        let src = if track.audio.starts_with("blob:") {
            track.audio.clone()
        } else {
            let base = self.bundle.as_ref().map_or("", |b| b.base.as_str());
            format!("{base}{}", track.audio)
        };
        self.current = Some(Current {
            track: t,
            started: Started {
                track_id: track.id,
                title: track.title,
                artist: track.artist,
                duration_s: track.duration_s,
                started_ms: now_ms,
            },
            tracker: Tracker::default(),
        });
        Some(Start { src, finished })
    }

    /// The player's clock, whenever it moves: `t` seconds into the track at playback `rate`.
    pub fn heard(&mut self, t: f64, rate: f64) {
        if let Some(c) = &mut self.current {
            c.tracker.observe(t, rate);
        }
    }

    /// The listener moved the player to `t` seconds: not heard.
    pub fn seeked(&mut self, t: f64) {
        if let Some(c) = &mut self.current {
            c.tracker.seeked(t);
        }
    }

    /// Ends the play in progress (`ended`: it played to its end) and records it: the returned
    /// play is to be stored. Nothing plays afterwards.
    pub fn finish(&mut self, ended: bool) -> Option<Play> {
        let c = self.current.take()?;
        let play = history::finish_play(self.plays.last(), &c.started, c.tracker.played_s, ended);
        self.plays.push(play.clone());
        Some(play)
    }

    /// Moves on: finishes the play in progress (returned, to store) and names the track to start
    /// next, the first recommendation or else the catalog track after the one that played.
    pub fn next(&mut self, ended: bool) -> (Option<Play>, Option<usize>) {
        let n = self.n_tracks();
        let fallback = self.now().map(|t| (t + 1) % n.max(1));
        let first = self.up_next.first().map(|r| r.track);
        (self.finish(ended), first.or(fallback))
    }

    // Ranking.

    /// What to ask the recommender now; none until a bundle is loaded. Own tracks take part
    /// only when the model reads content alone: otherwise they are left out of the history it
    /// sees and of its candidates. Plays of tracks the catalog does not list are left out.
    pub fn rank_request(&self) -> Option<RankRequest> {
        let bundle = self.bundle.as_ref()?;
        let n_catalog = bundle.catalog.tracks.len();
        let new: Vec<NewTrack> = if bundle.accepts_new_tracks {
            self.own.iter().map(|o| o.content.clone()).collect()
        } else {
            Vec::new()
        };
        let known = n_catalog + new.len();
        let (mut history, mut completions): (Vec<usize>, Vec<f32>) = self
            .plays
            .iter()
            .filter_map(|p| Some((self.track_index(&p.track_id)?, p.completion as f32)))
            .unzip();
        if let Some(t) = self.now() {
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
        Some(RankRequest {
            history,
            completions,
            exclude,
            new,
            n_catalog,
        })
    }

    /// Shows the recommender's answer to `req`: every candidate, best first, computed in
    /// `elapsed_ms`. The own tracks' places are kept; the first [`UP_NEXT`] become "up next",
    /// each with `why(last, track)` after the history's last track (or popularity without one).
    pub fn show_ranking(
        &mut self,
        req: &RankRequest,
        ranked: &[usize],
        elapsed_ms: f64,
        mut why: impl FnMut(usize, usize) -> String,
    ) {
        self.own_rank = ranked
            .iter()
            .enumerate()
            .filter(|(_, t)| **t >= req.n_catalog)
            .map(|(i, t)| (*t, i + 1))
            .collect();
        let last = req.history.last().copied();
        self.up_next = ranked
            .iter()
            .take(UP_NEXT)
            .map(|&track| Rec {
                track,
                why: match last {
                    None => "popular in the training sessions".to_string(),
                    Some(l) => why(l, track),
                },
            })
            .collect();
        self.latency = Some(elapsed_ms);
        self.computed += 1;
        self.rec_error = None;
    }

    /// The recommender failed: the error is shown, the last ranking stays.
    pub fn ranking_failed(&mut self, error: String) {
        self.rec_error = Some(error);
    }

    pub fn up_next(&self) -> &[Rec] {
        &self.up_next
    }

    /// Each own track (catalog index) with its place in the last ranking.
    pub fn own_ranks(&self) -> &[(usize, usize)] {
        &self.own_rank
    }

    /// Milliseconds the last ranking took.
    pub fn latency(&self) -> Option<f64> {
        self.latency
    }

    pub fn computed(&self) -> u32 {
        self.computed
    }

    pub fn rec_error(&self) -> Option<&str> {
        self.rec_error.as_deref()
    }
}

/// The catalog tracks a search shows, with their indices: the query (any case) in the title or
/// the artist, or in a tag (tags are lower case); every track for an empty query.
pub fn search(catalog: Option<&Catalog>, query: &str) -> Vec<(usize, Track)> {
    let q = query.to_lowercase();
    let Some(c) = catalog else {
        return Vec::new();
    };
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
        .collect()
}

/// Own track `t`'s place among `ranks` (as [`PageState::own_ranks`] lists them).
pub fn rank_of(ranks: &[(usize, usize)], t: usize) -> Option<usize> {
    ranks.iter().find(|(x, _)| *x == t).map(|(_, k)| *k)
}

/// What an own track's row says about its place (`rank`) among `n` tracks; `accepts`: the model
/// reads content alone.
pub fn own_rank_text(rank: Option<usize>, n: usize, accepts: bool) -> String {
    match rank {
        Some(k) => format!("your track: #{k} of {n} for you right now"),
        None if !accepts => {
            "this model knows tracks by id: choose a content model to have your tracks recommended"
                .to_string()
        }
        None => String::new(),
    }
}

/// Why a track follows the last one: `own` (it is the listener's own track), the artist and
/// tags the two share in the catalog (`traits`), the labels the model's content gives both and
/// how alike they sound (`affinity`).
pub fn reason(own: bool, traits: &[String], affinity: &Affinity) -> String {
    let mut parts = Vec::new();
    if own {
        parts.push("your own track".to_string());
    }
    if !traits.is_empty() {
        parts.push(format!("shares {} with your last track", traits.join(", ")));
    }
    for (modality, labels) in &affinity.shared {
        let labels = labels.join(", ").to_lowercase();
        parts.push(match modality.as_str() {
            "audio_tags" => format!("both sound {labels}"),
            "mgphot" => format!("both rated high on {labels} (MGPHot)"),
            other => format!("both high on {labels} ({other})"),
        });
    }
    if let Some(s) = affinity.sound {
        parts.push(format!("sound similarity {:.0} %", 100.0 * s.max(0.0)));
    }
    if parts.is_empty() || (parts.len() == 1 && own) {
        parts.push("often follows your recent tracks in listening sessions".to_string());
    }
    parts.join("; ")
}

/// `m:ss` for a number of seconds (`0:00` for none).
pub fn format_time(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "0:00".into();
    }
    let s = s.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::history::{SESSION_GAP_MS, SKIP_BELOW};

    const T0: f64 = 1.7e12;

    fn track(i: usize) -> Track {
        Track {
            id: format!("src/t{i}"),
            title: format!("Title {i}"),
            artist: format!("Artist {}", i % 3),
            album: String::new(),
            genre: String::new(),
            duration_s: 100.0,
            audio: format!("audio/t{i}.ogg"),
            licence: "CC0".into(),
            attribution: String::new(),
            tags: vec![if i.is_multiple_of(2) { "jazz" } else { "rock" }.to_string()],
        }
    }

    fn catalog(n: usize) -> Catalog {
        Catalog {
            name: "test".into(),
            description: String::new(),
            tracks: (0..n).map(track).collect(),
        }
    }

    fn own(name: &str, audio: &str) -> OwnTrack {
        let mut t = track(0);
        t.id = format!("own/{name}");
        t.title = name.into();
        t.audio = audio.into();
        OwnTrack {
            track: t,
            content: NewTrack {
                content: [("audio".to_string(), vec![1.0, 0.0])].into(),
            },
        }
    }

    /// A page with a bundle of `n` tracks loaded.
    fn page(n: usize, accepts: bool) -> PageState {
        let mut s = PageState::default();
        s.set_bundle("models/demo/".into(), catalog(n), accepts);
        s
    }

    /// Plays track `t` from `at_ms`, hearing `heard_s` seconds of it in quarter-second steps.
    fn listen(s: &mut PageState, t: usize, at_ms: f64, heard_s: f64) -> Start {
        let start = s.start(t, at_ms).expect("the track starts");
        let steps = (heard_s * 4.0).round() as usize;
        for k in 0..=steps {
            s.heard(k as f64 * 0.25, 1.0);
        }
        start
    }

    #[test]
    fn a_play_finished_early_is_a_skip_with_its_ratio() {
        let mut s = page(10, false);
        let first = listen(&mut s, 2, T0, 30.0);
        assert_eq!(first.src, "models/demo/audio/t2.ogg");
        assert_eq!(first.finished, None);
        assert_eq!(s.now(), Some(2));
        assert_eq!(s.now_track().map(|t| t.id.as_str()), Some("src/t2"));
        // Another track interrupts it.
        let second = s.start(5, T0 + 31_000.0).unwrap();
        let play = second.finished.expect("the interrupted play is recorded");
        assert_eq!(play.track_id, "src/t2");
        assert!((play.played_s - 30.0).abs() < 1e-9, "{}", play.played_s);
        assert!((play.completion - 0.3).abs() < 1e-9, "{}", play.completion);
        assert!(play.completion < SKIP_BELOW && play.skipped);
        assert_eq!((play.session, play.started_ms), (0, T0));
        assert_eq!(s.plays(), &[play]);
        assert_eq!(s.now(), Some(5));
    }

    #[test]
    fn a_play_heard_to_its_end_is_complete_and_seeks_do_not_count() {
        let mut s = page(10, false);
        listen(&mut s, 1, T0, 60.0);
        s.seeked(90.0); // jumped ahead: the last 10 s are not heard
        s.heard(90.25, 1.0);
        let play = s.finish(true).unwrap();
        assert!((play.played_s - 60.25).abs() < 1e-9, "{}", play.played_s);
        assert!((play.completion - 0.6025).abs() < 1e-9);
        assert!(!play.skipped, "a track that ended is never skipped");
        // Nearly all of it, to its end: a full listen.
        listen(&mut s, 2, T0 + 100_000.0, 96.0);
        let play = s.finish(true).unwrap();
        assert_eq!((play.completion, play.skipped), (1.0, false));
        assert_eq!(s.now(), None);
        assert_eq!(s.finish(false), None, "nothing plays any more");
        assert_eq!(s.plays().len(), 2);
    }

    #[test]
    fn a_play_after_a_twenty_minute_gap_starts_a_new_session() {
        let mut s = page(10, false);
        listen(&mut s, 0, T0, 100.0);
        let ended_ms = T0 + 100_000.0;
        let a = listen(&mut s, 1, ended_ms + SESSION_GAP_MS, 10.0);
        let later = ended_ms + SESSION_GAP_MS + 10_000.0 + SESSION_GAP_MS + 1.0;
        let b = listen(&mut s, 2, later, 1.0);
        let (a, b) = (a.finished.unwrap(), b.finished.unwrap());
        let c = s.finish(false).unwrap();
        assert_eq!(a.session, 0);
        assert_eq!(
            b.session, 0,
            "exactly 20 minutes later is still the same session"
        );
        assert_eq!(c.session, 1, "a longer gap starts a new session");
        assert_eq!(
            s.plays().iter().map(|p| p.session).collect::<Vec<_>>(),
            [0, 0, 1]
        );
        // Ids stay unique even when plays start in the same millisecond.
        listen(&mut s, 3, c.started_ms, 1.0);
        let d = s.finish(false).unwrap();
        assert!(d.id > c.id);
    }

    #[test]
    fn the_ranking_request_excludes_recent_tracks_and_aligns_completions() {
        let mut s = page(20, false);
        assert!(s.rank_request().unwrap().history.is_empty());
        // Eight plays of tracks 0..8, track 3 twice, each heard 10 s more than the last.
        let order = [0, 1, 3, 2, 3, 4, 5, 6];
        for (k, &t) in order.iter().enumerate() {
            listen(&mut s, t, T0 + k as f64 * 200_000.0, 10.0 * (k + 1) as f64);
        }
        // The last one (track 6) plays now.
        let req = s.rank_request().unwrap();
        assert_eq!(req.history, [0, 1, 3, 2, 3, 4, 5, 6]);
        assert_eq!(req.n_catalog, 20);
        assert!(req.new.is_empty());
        assert_eq!(req.completions.len(), req.history.len());
        for (k, c) in req.completions[..7].iter().enumerate() {
            let expected = 0.1 * (k + 1) as f32;
            assert!((c - expected).abs() < 1e-6, "play {k}: {c}");
        }
        assert!(
            req.completions[7].is_nan(),
            "the track playing now has no ratio yet"
        );
        // The last six tracks of the history, the one playing included, sorted, once each.
        assert_eq!(req.exclude, [2, 3, 4, 5, 6]);
        // Once it is finished, its ratio is known and nothing plays.
        s.finish(true);
        let req = s.rank_request().unwrap();
        assert_eq!(req.history, order);
        assert!((req.completions[7] - 0.8).abs() < 1e-6);
        assert_eq!(req.exclude, [2, 3, 4, 5, 6]);
    }

    #[test]
    fn no_bundle_no_request_and_unknown_plays_are_left_out() {
        let mut s = PageState::default();
        assert!(s.rank_request().is_none());
        assert!(s.start(0, T0).is_none(), "no catalog yet");
        let mut stored = page(5, false);
        listen(&mut stored, 4, T0, 50.0);
        stored.start(1, T0 + 60_000.0);
        // A history from another catalog: its tracks are not in this one.
        let mut other = stored.plays()[0].clone();
        other.track_id = "elsewhere/x".into();
        other.id += 1.0;
        let mut plays = stored.plays().to_vec();
        plays.insert(0, other);
        s.load_plays(plays);
        s.set_bundle(String::new(), catalog(5), false);
        let req = s.rank_request().unwrap();
        assert_eq!(req.history, [4]);
        assert!((req.completions[0] - 0.5).abs() < 1e-6);
        assert_eq!(req.exclude, [4]);
    }

    #[test]
    fn own_tracks_take_part_only_with_a_content_model() {
        let mut s = PageState::new(vec![own("mine", "")]);
        assert_eq!(s.n_tracks(), 0, "no catalog before a bundle");
        s.set_bundle("b/".into(), catalog(4), false);
        assert_eq!(s.n_tracks(), 5);
        assert_eq!(s.track(4).unwrap().id, "own/mine");
        // After a reload the page holds no file: the track cannot play, and says why.
        listen(&mut s, 1, T0, 5.0);
        assert!(s.start(4, T0 + 6_000.0).is_none());
        assert!(s.rec_error().unwrap().starts_with("Pick \"mine\" again"));
        assert_eq!(s.now(), Some(1), "the play in progress goes on");
        // Picked again: a new file, played from its object URL.
        assert!(s.add_own(own("new", "blob:http://127.0.0.1/42")));
        assert_eq!(s.n_tracks(), 6);
        let start = s.start(5, T0 + 10_000.0).unwrap();
        assert_eq!(start.src, "blob:http://127.0.0.1/42");
        assert_eq!(start.finished.unwrap().track_id, "src/t1");
        // An id model sees neither the own track's play nor any own candidate.
        let req = s.rank_request().unwrap();
        assert_eq!((req.history.as_slice(), req.new.len()), (&[1][..], 0));
        // A content model does.
        s.set_bundle("b/".into(), catalog(4), true);
        let req = s.rank_request().unwrap();
        assert_eq!(req.history, [1, 5]);
        assert_eq!(req.new.len(), 2);
        assert_eq!(req.exclude, [1, 5]);
        // The same file again replaces its entry and leaves the catalog alone.
        assert!(!s.add_own(own("new", "blob:http://127.0.0.1/43")));
        assert_eq!(s.own().len(), 2);
        assert_eq!(s.track(5).unwrap().audio, "blob:http://127.0.0.1/42");
    }

    #[test]
    fn the_ranking_shows_ten_rows_with_reasons_and_own_places() {
        let mut s = PageState::new(vec![own("mine", "blob:x")]);
        s.set_bundle(String::new(), catalog(20), true);
        // No history: popularity speaks.
        let req = s.rank_request().unwrap();
        let ranked: Vec<usize> = (0..21).rev().collect();
        s.show_ranking(&req, &ranked, 2.5, |_, _| unreachable!());
        assert_eq!(s.up_next().len(), UP_NEXT);
        assert_eq!(s.up_next()[0].track, 20);
        assert!(
            s.up_next()
                .iter()
                .all(|r| r.why == "popular in the training sessions")
        );
        assert_eq!(s.own_ranks(), &[(20, 1)]);
        assert_eq!((s.latency(), s.computed()), (Some(2.5), 1));
        // After a play the reason speaks of the last track.
        listen(&mut s, 7, T0, 3.0);
        s.ranking_failed("out of memory".into());
        assert_eq!(s.rec_error(), Some("out of memory"));
        let req = s.rank_request().unwrap();
        let ranked: Vec<usize> = (0..21).filter(|t| *t != 7).collect();
        s.show_ranking(&req, &ranked, 1.0, |last, t| format!("{last}->{t}"));
        assert_eq!(
            s.up_next()[0],
            Rec {
                track: 0,
                why: "7->0".into()
            }
        );
        assert_eq!(s.own_ranks(), &[(20, 20)]);
        assert_eq!((s.computed(), s.rec_error()), (2, None));
        assert_eq!(rank_of(s.own_ranks(), 20), Some(20));
        assert_eq!(rank_of(s.own_ranks(), 3), None);
    }

    #[test]
    fn next_goes_to_the_first_recommendation_else_the_following_track() {
        let mut s = page(3, false);
        assert_eq!(s.next(false), (None, None), "nothing played, nothing shown");
        listen(&mut s, 2, T0, 100.0);
        let (done, then) = s.next(true);
        assert_eq!(done.unwrap().completion, 1.0);
        assert_eq!(then, Some(0), "after the last track, the first");
        assert_eq!(s.now(), None);
        listen(&mut s, 0, T0 + 200_000.0, 4.0);
        let req = s.rank_request().unwrap();
        s.show_ranking(&req, &[1, 2], 1.0, |_, _| String::new());
        let (done, then) = s.next(false);
        assert!(done.unwrap().skipped);
        assert_eq!(then, Some(1));
    }

    #[test]
    fn an_import_merges_by_id_in_time_order() {
        let mut s = page(5, false);
        listen(&mut s, 0, T0, 10.0);
        s.finish(false);
        let mut a = s.plays()[0].clone();
        a.completion = 0.5;
        let mut b = a.clone();
        b.id -= 3_600_000.0;
        b.started_ms -= 3_600_000.0;
        s.import(vec![a.clone(), b.clone()]);
        assert_eq!(s.plays(), &[b, a]);
    }

    #[test]
    fn search_matches_title_artist_or_tag() {
        let s = page(6, false);
        let ids = |q: &str| -> Vec<usize> {
            search(s.catalog(), q).into_iter().map(|(i, _)| i).collect()
        };
        assert_eq!(ids(""), [0, 1, 2, 3, 4, 5]);
        assert_eq!(ids("TITLE 4"), [4]);
        assert_eq!(ids("artist 1"), [1, 4]);
        assert_eq!(ids("ROCK"), [1, 3, 5]);
        assert!(search(None, "").is_empty());
    }

    #[test]
    fn texts() {
        assert_eq!(format_time(0.0), "0:00");
        assert_eq!(format_time(61.46), "1:01");
        assert_eq!(format_time(f64::NAN), "0:00");
        assert_eq!(format_time(-3.0), "0:00");
        assert_eq!(
            own_rank_text(Some(3), 41, true),
            "your track: #3 of 41 for you right now"
        );
        assert!(own_rank_text(None, 41, false).starts_with("this model knows tracks by id"));
        assert_eq!(own_rank_text(None, 41, true), "");
        let none = Affinity::default();
        assert_eq!(
            reason(false, &[], &none),
            "often follows your recent tracks in listening sessions"
        );
        assert_eq!(
            reason(true, &[], &none),
            "your own track; often follows your recent tracks in listening sessions"
        );
        let a = Affinity {
            sound: Some(0.8),
            shared: vec![
                ("audio_tags".into(), vec!["Jazz".into(), "Piano".into()]),
                ("mgphot".into(), vec!["Swing".into()]),
                ("other".into(), vec!["x".into()]),
            ],
        };
        assert_eq!(
            reason(false, &["same artist (A)".into()], &a),
            "shares same artist (A) with your last track; both sound jazz, piano; \
             both rated high on swing (MGPHot); both high on x (other); sound similarity 80 %"
        );
        let negative = Affinity {
            sound: Some(-0.2),
            shared: vec![],
        };
        assert_eq!(
            reason(true, &[], &negative),
            "your own track; sound similarity 0 %"
        );
    }
}
