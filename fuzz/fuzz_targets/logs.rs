//! Every listening-log reader on one file: the first byte picks the format, the rest is the
//! file (readers take paths, so it is written to a temporary file first).
#![no_main]
use encore::data::EventLog;
use encore::data::read::{self, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = match pick % 9 {
        0 => "log.tsv",
        1 => "profile.tsv",
        2 => "StreamingHistory0.json",
        3 => "listens.json",
        4 => "x.inter",
        5 => "seq.txt",
        6 => "sample.txt",
        7 => "attributes.json",
        _ => "durations.csv",
    };
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    let mut log = EventLog::default();
    let o = ReadOptions::default();
    let _ = match pick % 9 {
        0 => read::read_lastfm1k(&path, &mut log, &o).map(drop),
        1 => read::read_profiles(&path, &o).map(drop),
        2 => read::read_spotify(&path, &mut log, &o).map(drop),
        3 => read::read_listenbrainz(&path, &mut log, &o).map(drop),
        4 => read::read_recbole(&path, &mut log, &o).map(drop),
        5 => read::read_s3rec(&path, &mut log, &o).map(drop),
        6 => read::read_samples(&path).map(drop),
        7 => read::read_item_attributes(&path).map(drop),
        _ => read::read_durations(&path).map(drop),
    };
});
