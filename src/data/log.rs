//! The one event model every reader produces: a play of a track by a user at a time, with
//! artist and names, optional track duration and seconds played, all interned to dense ids.

use super::intern::Interner;

/// Append-only strings without a hash table (display names that are never looked up).
#[derive(Clone, Debug, Default)]
pub struct TextColumn {
    arena: String,
    ends: Vec<u32>,
}

impl TextColumn {
    pub fn push(&mut self, s: &str) {
        self.arena.push_str(s);
        self.ends
            .push(u32::try_from(self.arena.len()).expect("text column exceeds 4 GiB"));
    }

    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn raw_parts(&self) -> (&str, &[u32]) {
        (&self.arena, &self.ends)
    }

    pub fn from_raw_parts(
        arena: String,
        ends: Vec<u32>,
    ) -> Result<Self, crate::data::error::DataError> {
        use crate::data::error::DataError;
        let mut prev = 0;
        for &e in &ends {
            if e < prev || e as usize > arena.len() || !arena.is_char_boundary(e as usize) {
                return Err(DataError::Corrupt(
                    "text column offsets are out of order or out of range".into(),
                ));
            }
            prev = e;
        }
        if prev as usize != arena.len() {
            return Err(DataError::Corrupt(
                "text column length does not match its offsets".into(),
            ));
        }
        Ok(Self { arena, ends })
    }
}

/// One play as a reader sees it, borrowed from the input line.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawEvent<'a> {
    pub user: &'a str,
    /// Start of the play, Unix seconds (UTC).
    pub ts: i64,
    /// Stable artist identity: an MBID or other id, else the artist name.
    pub artist_key: &'a str,
    pub artist_name: &'a str,
    /// Stable track identity: an MBID, a Spotify URI, an item token, else `artist\ttitle`.
    pub track_key: &'a str,
    pub track_name: &'a str,
    pub duration_s: Option<f32>,
    pub played_s: Option<f32>,
}

/// The track identity used when a log has no track id: artist name and title joined by a tab
/// (a tab never occurs inside a field of any supported format).
pub fn name_key(buf: &mut String, artist: &str, title: &str) {
    buf.clear();
    buf.push_str(artist);
    buf.push('\t');
    buf.push_str(title);
}

/// A raw listening log in input order. Columns are parallel; unknown floats are NaN.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    pub users: Interner,
    pub artists: Interner,
    pub artist_name: TextColumn,
    pub tracks: Interner,
    pub track_name: TextColumn,
    pub track_artist: Vec<u32>,
    /// Track duration in seconds, NaN when unknown.
    pub track_duration: Vec<f32>,
    pub user: Vec<u32>,
    pub ts: Vec<i64>,
    pub track: Vec<u32>,
    /// Seconds played per event (NaN when unknown); empty when no event in the log has it.
    pub played: Vec<f32>,
}

impl EventLog {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn push(&mut self, e: &RawEvent<'_>) {
        let user = self.users.id(e.user);
        self.push_with_user(user, e);
    }

    /// Like [`EventLog::push`] with the user already interned (readers cache the last user).
    pub fn push_with_user(&mut self, user: u32, e: &RawEvent<'_>) {
        let (track, new) = self.tracks.intern(e.track_key);
        if new {
            let (artist, new_artist) = self.artists.intern(e.artist_key);
            if new_artist {
                self.artist_name.push(e.artist_name);
            }
            self.track_name.push(e.track_name);
            self.track_artist.push(artist);
            self.track_duration.push(f32::NAN);
        }
        if let Some(d) = e.duration_s.filter(|d| d.is_finite() && *d > 0.0) {
            self.track_duration[track as usize] = d;
        }
        if let Some(p) = e.played_s {
            if self.played.is_empty() {
                self.played = vec![f32::NAN; self.ts.len()];
            }
            self.played.push(p);
        } else if !self.played.is_empty() {
            self.played.push(f32::NAN);
        }
        self.user.push(user);
        self.ts.push(e.ts);
        self.track.push(track);
    }

    pub fn played(&self, i: usize) -> Option<f32> {
        self.played.get(i).copied().filter(|p| p.is_finite())
    }

    pub fn duration(&self, track: u32) -> Option<f32> {
        Some(self.track_duration[track as usize]).filter(|d| d.is_finite())
    }

    /// Event indices ordered by (user, time), ties kept in input order (a stable sort).
    pub fn chronological(&self) -> Vec<u32> {
        let n_users = self.users.len();
        // Counting sort by user, then a stable sort of each user's run by time. LastFM-1K is
        // newest-first per user, so reversing each run first makes the sort nearly linear
        // without changing the order of ties.
        let mut start = vec![0u32; n_users + 1];
        for &u in &self.user {
            start[u as usize + 1] += 1;
        }
        for i in 0..n_users {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut order = vec![0u32; self.len()];
        for (i, &u) in self.user.iter().enumerate() {
            order[fill[u as usize] as usize] = i as u32;
            fill[u as usize] += 1;
        }
        for u in 0..n_users {
            let run = &mut order[start[u] as usize..start[u + 1] as usize];
            let descending = run
                .windows(2)
                .filter(|w| self.ts[w[0] as usize] > self.ts[w[1] as usize])
                .count();
            if descending * 2 > run.len() {
                // Reverse, then restore input order inside each block of equal timestamps.
                run.reverse();
                let mut i = 0;
                while i < run.len() {
                    let t = self.ts[run[i] as usize];
                    let mut j = i + 1;
                    while j < run.len() && self.ts[run[j] as usize] == t {
                        j += 1;
                    }
                    run[i..j].reverse();
                    i = j;
                }
            }
            run.sort_by_key(|&i| self.ts[i as usize]);
        }
        order
    }

    #[cfg(not(target_arch = "wasm32"))]
    /// Sets track durations from a metadata table; returns how many tracks got one.
    pub fn apply_durations(&mut self, durations: &Durations) -> usize {
        let mut n = 0;
        let mut key = String::new();
        for t in 0..self.tracks.len() as u32 {
            let artist = self.artist_name.get(self.track_artist[t as usize]);
            name_key(&mut key, artist, self.track_name.get(t));
            if let Some(d) = durations
                .get(self.tracks.get(t))
                .or_else(|| durations.get(&key))
            {
                self.track_duration[t as usize] = d;
                n += 1;
            }
        }
        n
    }
}

impl EventLog {
    /// Appends another log, re-interning its users, tracks and artists. Appending the logs of
    /// consecutive parts of a file gives the same ids and order as reading it in one pass.
    pub fn append(&mut self, o: EventLog) {
        if self.is_empty() && self.tracks.is_empty() && self.users.is_empty() {
            *self = o;
            return;
        }
        let umap: Vec<u32> = o.users.iter().map(|u| self.users.id(u)).collect();
        let mut tmap = Vec::with_capacity(o.tracks.len());
        for t in 0..o.tracks.len() as u32 {
            let (id, new) = self.tracks.intern(o.tracks.get(t));
            let oa = o.track_artist[t as usize];
            if new {
                let (artist, new_artist) = self.artists.intern(o.artists.get(oa));
                if new_artist {
                    self.artist_name.push(o.artist_name.get(oa));
                }
                self.track_name.push(o.track_name.get(t));
                self.track_artist.push(artist);
                self.track_duration.push(f32::NAN);
            }
            let d = o.track_duration[t as usize];
            if d.is_finite() {
                self.track_duration[id as usize] = d;
            }
            tmap.push(id);
        }
        match (self.played.is_empty(), o.played.is_empty()) {
            (_, false) => {
                if self.played.is_empty() {
                    self.played = vec![f32::NAN; self.ts.len()];
                }
                self.played.extend_from_slice(&o.played);
            }
            (false, true) => self
                .played
                .extend(std::iter::repeat_n(f32::NAN, o.ts.len())),
            (true, true) => {}
        }
        self.user.extend(o.user.iter().map(|&u| umap[u as usize]));
        self.track.extend(o.track.iter().map(|&t| tmap[t as usize]));
        self.ts.extend_from_slice(&o.ts);
    }
}

/// Track durations (seconds) by track key, and by artist and title.
#[derive(Clone, Debug, Default)]
pub struct Durations {
    map: std::collections::HashMap<String, f32>,
}

impl Durations {
    pub fn get(&self, key: &str) -> Option<f32> {
        self.map.get(key).copied()
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn insert(
        &mut self,
        id: Option<&str>,
        artist: Option<&str>,
        title: Option<&str>,
        seconds: f32,
    ) {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            self.map.insert(id.to_string(), seconds);
        }
        if let (Some(a), Some(t)) = (artist, title) {
            let mut k = String::new();
            name_key(&mut k, a, t);
            self.map.insert(k, seconds);
        }
    }
}
