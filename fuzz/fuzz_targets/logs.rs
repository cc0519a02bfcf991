//! Every listening-log reader: LastFM-1K plays and profiles, Spotify (both forms, podcasts),
//! ListenBrainz (arrays, wrapped forms, JSON lines), RecBole `.inter` and `.item`, S3-Rec
//! sequences, samples and attributes, and durations (TSV, CSV, JSON).
#![no_main]
mod common;
use encore::data::EventLog;
use encore::data::read::{self, ReadOptions};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "log.tsv",
    "profile.tsv",
    "StreamingHistory0.json",
    "StreamingHistory_podcast_0.json",
    "Streaming_History_Audio_2024.json",
    "listens.json",
    "listens.jsonl",
    "x.inter",
    "x.item",
    "seq.txt",
    "sample.txt",
    "attributes.json",
    "durations.tsv",
    "durations.csv",
    "durations.json",
];

/// A `.inter` file for an `.item` body (RecBole reads items only beside interactions).
const INTER: &[u8] = b"user_id:token\titem_id:token\ttimestamp:float\nu\t1\t1300000000\n";

fuzz_target!(|data: &[u8]| {
    let Some((name, body)) = common::named(data, NAMES) else {
        return;
    };
    let (mut log, o) = (EventLog::default(), ReadOptions::default());
    if name == "x.item" {
        let (_dir, inter) = common::files(&[("x.inter", INTER), (name, body)]);
        let _ = read::read_recbole(&inter, &mut log, &o);
        return;
    }
    let (_dir, path) = common::files(&[(name, body)]);
    let _ = match name {
        "log.tsv" => read::read_lastfm1k(&path, &mut log, &o).map(drop),
        "profile.tsv" => read::read_profiles(&path, &o).map(drop),
        "x.inter" => read::read_recbole(&path, &mut log, &o).map(drop),
        "seq.txt" => read::read_s3rec(&path, &mut log, &o).map(drop),
        "sample.txt" => read::read_samples(&path).map(drop),
        "attributes.json" => read::read_item_attributes(&path).map(drop),
        n if n.starts_with("durations") => read::read_durations(&path).map(drop),
        n if n.starts_with("listens") => read::read_listenbrainz(&path, &mut log, &o).map(drop),
        _ => read::read_spotify(&path, &mut log, &o).map(drop),
    };
});
