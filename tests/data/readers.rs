//! Readers on small hand-written logs: malformed lines, empty MBIDs, Unicode, CRLF, equal
//! timestamps, users out of order, and every supported format.

use encore::data::read::{self, DataError, Format, ReadOptions};
use encore::data::time::parse_datetime;
use encore::data::{EventLog, preprocess::Preset};
use std::path::{Path, PathBuf};

/// Writes a test input (and saves it as a fuzz seed, see `common::seeds`).
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    crate::common::seeds::log_input(dir, name, bytes)
}

fn ts(s: &str) -> i64 {
    parse_datetime(s.as_bytes()).unwrap()
}

const LASTFM: &[u8] = b"user_000002\t2009-05-04T23:08:57Z\tf1b1cf71-bd35-4e99-8624-24a6e15f133a\tDeep Dish\t\tFuck Me Im Famous (Pacha Ibiza)-09-28-2007\r\n\
user_000002\t2009-05-04T13:54:10Z\ta7f7df4a-77d8-4f12-8acd-5c60c93f4de8\t\xe5\x9d\x82\xe6\x9c\xac\xe9\xbe\x8d\xe4\xb8\x80\t\tComposition 0919 (Live_2009_4_15)\r\n\
user_000002\t2009-05-04T13:54:10Z\t\tBj\xc3\xb6rk\t\tJ\xc3\xb3ga\r\n\
user_000001\t2009-05-04T13:52:04Z\ta7f7df4a-77d8-4f12-8acd-5c60c93f4de8\t\xe5\x9d\x82\xe6\x9c\xac\xe9\xbe\x8d\xe4\xb8\x80\tdb16d0b3-b8ce-4aa8-a11a-e4d53cc7f8a6\tMc2 (Live_2009_4_15)\n\
user_000001\tnot-a-time\ta\tb\tc\td\n\
user_000001\t2009-05-04T13:42:52Z\tonly five\tfields\there\n\
user_000001\t2009-05-04T13:42:52Z\t\tBroken \xff byte\t\tSong\n\
user_000001\t2009-05-04T13:42:52Z\t\t\t\t\n\
user_000001\t2009-05-04T13:42:52Z\ta7f7df4a-77d8-4f12-8acd-5c60c93f4de8\t\xe5\x9d\x82\xe6\x9c\xac\xe9\xbe\x8d\xe4\xb8\x80\tdb16d0b3-b8ce-4aa8-a11a-e4d53cc7f8a6\tMc2 (Live_2009_4_15)";

#[test]
fn lastfm1k_reads_unicode_crlf_empty_mbids_and_skips_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "log.tsv", LASTFM);
    let mut log = EventLog::default();
    let r = read::read_lastfm1k(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.lines, r.events, r.skipped), (9, 5, 4), "{r:?}");
    let lines: Vec<u64> = r.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, vec![5, 6, 7, 8]);
    assert!(
        r.issues[0].reason.contains("not-a-time"),
        "{:?}",
        r.issues[0]
    );
    assert!(r.issues[1].reason.contains("found 5"), "{:?}", r.issues[1]);
    assert!(r.issues[2].reason.contains("UTF-8"), "{:?}", r.issues[2]);
    assert!(
        r.issues[3].reason.contains("no track MBID"),
        "{:?}",
        r.issues[3]
    );
    assert!(
        r.issues[0]
            .to_string()
            .starts_with(&format!("{}:5: ", p.display()))
    );
    assert_eq!(r.sha256, encore::util::sha256_hex(LASTFM));
    // Users in order of appearance; CR stripped; track keys from MBID or artist + title.
    assert_eq!(
        log.users.iter().collect::<Vec<_>>(),
        vec!["user_000002", "user_000001"]
    );
    assert_eq!(
        log.track_name.get(0),
        "Fuck Me Im Famous (Pacha Ibiza)-09-28-2007"
    );
    assert_eq!(
        log.tracks.get(0),
        "Deep Dish\tFuck Me Im Famous (Pacha Ibiza)-09-28-2007"
    );
    assert_eq!(log.tracks.get(2), "Björk\tJóga");
    assert_eq!(log.artists.get(log.track_artist[2]), "Björk");
    assert_eq!(log.artist_name.get(1), "坂本龍一");
    assert_eq!(log.tracks.get(3), "db16d0b3-b8ce-4aa8-a11a-e4d53cc7f8a6");
    assert_eq!(log.tracks.len(), 4, "the repeated MBID track is one track");
    assert_eq!(log.ts[0], ts("2009-05-04T23:08:57Z"));
    // Chronological order: by user (order of appearance), then time; equal times keep file order
    // (file is newest-first, so the tie 1,2 stays 1,2 after the reversal).
    let order = log.chronological();
    assert_eq!(order, vec![1, 2, 0, 4, 3]);
}

#[test]
fn strict_mode_fails_on_the_first_malformed_line_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "log.tsv", LASTFM);
    let mut log = EventLog::default();
    let opts = ReadOptions {
        strict: true,
        ..Default::default()
    };
    let e = read::read_lastfm1k(&p, &mut log, &opts).unwrap_err();
    match &e {
        DataError::Malformed { line, reason, .. } => {
            assert_eq!(*line, 5);
            assert!(reason.contains("ISO-8601"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string().starts_with(&format!("{}:5:", p.display())),
        "{e}"
    );
}

#[test]
fn only_ten_issues_are_listed_but_all_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..25 {
        text.push_str(&format!("user_1\tbad{i}\t\tA\t\tB\n"));
    }
    text.push_str("user_1\t2009-01-01T00:00:00Z\t\tA\t\tB\n");
    let p = write(dir.path(), "log.tsv", text.as_bytes());
    let mut log = EventLog::default();
    let r = read::read_lastfm1k(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.skipped, r.issues.len(), r.events), (25, 10, 1));
    assert_eq!(r.issues[9].line, 10);
}

#[test]
fn parallel_parts_give_exactly_the_single_pass_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for _ in 0..40 {
        text.extend_from_slice(LASTFM);
        text.push(b'\n');
    }
    let p = write(dir.path(), "log.tsv", &text);
    let opts = ReadOptions::default();
    let mut one = EventLog::default();
    let r1 = read::read_lastfm1k_in_parts(&p, &mut one, &opts, 1).unwrap();
    assert_eq!((r1.events, r1.skipped, r1.issues.len()), (200, 160, 10));
    for parts in [2, 3, 7] {
        let mut many = EventLog::default();
        let r = read::read_lastfm1k_in_parts(&p, &mut many, &opts, parts).unwrap();
        assert_eq!(r, r1, "{parts} parts");
        assert_eq!(
            (&many.user, &many.ts, &many.track),
            (&one.user, &one.ts, &one.track)
        );
        assert_eq!(
            many.tracks.iter().collect::<Vec<_>>(),
            one.tracks.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            many.artists.iter().collect::<Vec<_>>(),
            one.artists.iter().collect::<Vec<_>>()
        );
        assert_eq!(many.track_artist, one.track_artist);
    }
    // Strict mode reports the first malformed line of the file, whichever part holds it.
    let strict = ReadOptions {
        strict: true,
        ..Default::default()
    };
    let e = read::read_lastfm1k_in_parts(&p, &mut EventLog::default(), &strict, 4).unwrap_err();
    assert!(e.to_string().contains("log.tsv:5:"), "{e}");
    let mut tail = b"u\t2009-01-01T00:00:00Z\t\tA\t\tB\n".repeat(50);
    tail.extend_from_slice(b"u\tbad\n");
    let p2 = write(dir.path(), "tail.tsv", &tail);
    let e = read::read_lastfm1k_in_parts(&p2, &mut EventLog::default(), &strict, 4).unwrap_err();
    assert!(e.to_string().contains("tail.tsv:51:"), "{e}");
}

#[test]
fn lastfm1k_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "userid-profile.tsv",
        "#id\tgender\tage\tcountry\tregistered\r\nuser_000001\tm\t\tJapan\tAug 13, 2006\r\nuser_000002\tf\t\tPeru\tFeb 24, 2006\nuser_000003\tm\t22\tUnited States\tOct 30, 2005\nuser_000004\tf\tx\t\t\n"
            .as_bytes(),
    );
    let (profiles, r) = read::read_profiles(&p, &ReadOptions::default()).unwrap();
    assert_eq!(profiles.len(), 3);
    assert_eq!(profiles[0].country.as_deref(), Some("Japan"));
    assert_eq!(profiles[0].age, None);
    assert_eq!(profiles[2].age, Some(22));
    assert_eq!((r.skipped, r.issues[0].line), (1, 5));
}

#[test]
fn spotify_extended_and_account_forms() {
    let dir = tempfile::tempdir().unwrap();
    let extended = r#"[
  {"ts": "2021-03-01T12:05:00Z", "username": "ana", "platform": "android", "ms_played": 300000,
   "master_metadata_track_name": "Song A", "master_metadata_album_artist_name": "Artist",
   "master_metadata_album_album_name": "Album", "spotify_track_uri": "spotify:track:aaa",
   "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": false, "skipped": null},
  {"ts": "2021-03-01T12:06:00Z", "username": "ana", "ms_played": 30000,
   "master_metadata_track_name": "Song B", "master_metadata_album_artist_name": "Artist",
   "spotify_track_uri": "spotify:track:bbb", "reason_end": "fwdbtn", "skipped": true},
  {"ts": "2021-03-01T13:00:00Z", "username": "ana", "ms_played": 1000,
   "master_metadata_track_name": null, "master_metadata_album_artist_name": null,
   "spotify_track_uri": null, "episode_name": "A podcast"},
  {"ts": "yesterday", "ms_played": 1, "master_metadata_track_name": "X",
   "master_metadata_album_artist_name": "Y"},
  {"ts": "2021-03-01T13:10:00Z", "ms_played": "many", "master_metadata_track_name": "X"}
]"#;
    let p = write(
        dir.path(),
        "Streaming_History_Audio_2021.json",
        extended.as_bytes(),
    );
    let mut log = EventLog::default();
    let r = read::read_spotify(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.ignored, r.skipped), (2, 1, 2), "{r:?}");
    assert_eq!(r.issues[0].line, 12, "{:?}", r.issues);
    assert_eq!(r.issues[1].line, 14, "{:?}", r.issues);
    assert_eq!(log.users.get(0), "ana");
    // The stamp is the end of the stream; the event starts ms_played earlier.
    assert_eq!(log.ts[0], ts("2021-03-01T12:00:00Z"));
    assert_eq!(log.ts[1], ts("2021-03-01T12:05:30Z"));
    assert_eq!(log.played(1), Some(30.0));
    assert_eq!(log.tracks.get(1), "spotify:track:bbb");

    let short = r#"[{"endTime": "2019-02-01 10:04", "artistName": "Artist", "trackName": "Song A", "msPlayed": 240000},
{"endTime": "2019-02-01 10:05", "artistName": "Artist", "trackName": "Song C", "msPlayed": 60000}]"#;
    let p2 = write(dir.path(), "StreamingHistory0.json", short.as_bytes());
    let opts = ReadOptions {
        user: Some("me".into()),
        ..Default::default()
    };
    let r = read::read_spotify(&p2, &mut log, &opts).unwrap();
    assert_eq!(r.events, 2);
    assert_eq!(log.users.get(1), "me");
    assert_eq!(log.ts[2], ts("2019-02-01T10:00:00Z"));
    assert_eq!(log.tracks.get(2), "Artist\tSong A");

    // Not JSON at all: a clear error with the line.
    let p3 = write(dir.path(), "broken.json", b"[\n{\"ts\": 1},\n{oops}\n]");
    let e = read::read_spotify(&p3, &mut log, &ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("broken.json:3:"), "{e}");
}

#[test]
fn listenbrainz_array_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let listen = |t: i64, track: &str, extra: &str| {
        format!(
            r#"{{"listened_at": {t}, "user_name": "lb", "track_metadata": {{"artist_name": "Portishead", "track_name": "{track}", "additional_info": {{"duration_ms": 240000{extra}}}}}}}"#
        )
    };
    let jsonl = format!(
        "{}\n{}\n{{\"listened_at\": \"soon\", \"track_metadata\": {{}}}}\n\n{}\n",
        listen(1_600_000_000, "Roads", r#", "recording_mbid": "rec-1""#),
        listen(1_600_000_300, "Glory Box", ""),
        r#"{"listened_at": 1600000600, "track_metadata": {"artist_name": "Portishead"}}"#
    );
    let p = write(dir.path(), "listens.jsonl", jsonl.as_bytes());
    let mut log = EventLog::default();
    let r = read::read_listenbrainz(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (2, 2));
    assert_eq!(
        r.issues.iter().map(|i| i.line).collect::<Vec<_>>(),
        vec![3, 5]
    );
    assert_eq!(log.tracks.get(0), "rec-1");
    assert_eq!(log.tracks.get(1), "Portishead\tGlory Box");
    assert_eq!(log.duration(0), Some(240.0));
    let array = format!(
        "[\n{},\n{}\n]",
        listen(1_600_001_000, "Roads", ""),
        listen(1_600_001_300, "Sour Times", "")
    );
    let p = write(dir.path(), "listens.json", array.as_bytes());
    let r = read::read_listenbrainz(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!(r.events, 2);
    assert_eq!(log.len(), 4);
}

#[test]
fn recbole_inter_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "x.inter",
        b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t5\t100\n1\t11\tfive\t101\n2\t10\t3\n2\t12\t4\t99.5\n",
    );
    let mut log = EventLog::default();
    let r = read::read_recbole(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (2, 2));
    assert!(
        r.issues[0].reason.contains("rating 'five'"),
        "{:?}",
        r.issues
    );
    assert_eq!(r.issues[1].line, 4);
    assert_eq!(log.ts, vec![100, 99]);
    // Without a .item file beside it, a track's name is its id.
    assert_eq!(log.track_name.get(0), "10");

    // A .item file of the same stem names the tracks: title (year) and artist; an item it
    // leaves out keeps its id, and a short line is skipped.
    write(
        dir.path(),
        "y.item",
        b"item_id:token\ttrack_name:token_seq\tyear:token\tartist:token\n10\tHey Jude\t1968\tThe Beatles\n11\tShort\n",
    );
    let p = write(
        dir.path(),
        "y.inter",
        b"user_id:token\titem_id:token\n1\t10\n1\t11\n1\t12\n",
    );
    let mut named = EventLog::default();
    let r = read::read_recbole(&p, &mut named, &ReadOptions::default()).unwrap();
    // The .item file's skipped line is in the report, named by its file and line.
    assert_eq!(r.skipped, 1);
    assert_eq!(r.issues.len(), 1);
    let issue = r.issues[0].to_string();
    assert!(
        issue.contains("y.item:3:") && issue.contains("expected 4 fields"),
        "{issue}"
    );
    let names: Vec<(&str, &str)> = (0..3u32)
        .map(|t| {
            (
                named.track_name.get(t),
                named.artist_name.get(named.track_artist[t as usize]),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![("Hey Jude (1968)", "The Beatles"), ("11", ""), ("12", "")]
    );
    let strict = ReadOptions {
        strict: true,
        ..Default::default()
    };
    let e = read::read_recbole(&p, &mut EventLog::default(), &strict).unwrap_err();
    assert!(
        e.to_string().contains("y.item:3:") && e.to_string().contains("expected 4 fields"),
        "{e}"
    );

    // How much was heard: a `completion` ratio becomes seconds through the .item file's
    // duration (a one-second track where it gives none); `played_s` is read as seconds.
    write(
        dir.path(),
        "z.item",
        b"item_id:token\ttitle:token_seq\tartist:token\tduration_s:float\n10\tA\tX\t200\n11\tB\tX\t\n12\tC\tX\tlong\n",
    );
    let p = write(
        dir.path(),
        "z.inter",
        b"user_id:token\titem_id:token\ttimestamp:float\tcompletion:float\n1\t10\t0\t0.25\n1\t11\t60\t0.5\n1\t10\t99\t\n",
    );
    let mut heard = EventLog::default();
    let r = read::read_recbole(&p, &mut heard, &ReadOptions::default()).unwrap();
    assert_eq!(r.events, 3);
    assert_eq!(heard.duration(0), Some(200.0));
    assert_eq!(heard.played(0), Some(50.0));
    assert_eq!(heard.duration(1), Some(1.0));
    assert_eq!(heard.played(1), Some(0.5));
    assert_eq!(heard.played(2), None);
    let e = read::read_recbole(&p, &mut EventLog::default(), &strict).unwrap_err();
    assert!(
        e.to_string().contains("z.item:4:") && e.to_string().contains("duration 'long'"),
        "{e}"
    );
    let p = write(
        dir.path(),
        "w.inter",
        b"user_id:token\titem_id:token\tplayed_s:float\n1\t10\t30\n",
    );
    let mut secs = EventLog::default();
    read::read_recbole(&p, &mut secs, &ReadOptions::default()).unwrap();
    assert_eq!(secs.played(0), Some(30.0));

    let bad = write(dir.path(), "bad.inter", b"user_id\titem_id\n1\t2\n");
    let e = read::read_recbole(&bad, &mut log, &ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("bad.inter:1:") && e.to_string().contains("name:type"),
        "{e}"
    );
}

/// MovieLens-100K as shipped in the recbole package (fetched by scripts/setup.sh).
#[test]
fn recbole_reads_the_real_movielens_100k() {
    let assets = std::env::var("ENCORE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(&std::env::var("HOME").unwrap()).join(".cache/encore/assets")
        });
    let p = assets.join("ml-100k/recbole/dataset_example/ml-100k/ml-100k.inter");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh",
        p.display()
    );
    let mut log = EventLog::default();
    let r = read::read_recbole(
        &p,
        &mut log,
        &ReadOptions {
            strict: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (r.events, log.users.len(), log.tracks.len()),
        (100_000, 943, 1682)
    );
    // ml-100k.item beside it names the movies.
    let t = log.tracks.lookup("1").expect("item 1");
    assert_eq!(log.track_name.get(t), "Toy Story (1995)");
}

#[test]
fn s3rec_sequences_samples_and_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "seq.txt", b"1 5 6 7\n2 6 8\n3 x 9\n4\n");
    let mut log = EventLog::default();
    let (r, s) = read::read_s3rec(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (5, 2));
    assert_eq!(s.users, vec![1, 2]);
    assert_eq!(s.sequences, vec![vec![5, 6, 7], vec![6, 8]]);
    assert_eq!(log.ts, vec![0, 1, 2, 0, 1]);
    let samples = vec![(1, vec![8, 9]), (2, vec![5, 7])];
    let sp = dir.path().join("X_sample.txt");
    read::write_samples(&sp, &samples).unwrap();
    crate::common::seeds::named("logs", "sample.txt", &std::fs::read(&sp).unwrap());
    assert_eq!(std::fs::read_to_string(&sp).unwrap(), "1 8 9\n2 5 7\n");
    assert_eq!(read::read_samples(&sp).unwrap(), samples);
    let ap = write(
        dir.path(),
        "X_item2attributes.json",
        br#"{"5": [1, 2], "6": [3]}"#,
    );
    let a = read::read_item_attributes(&ap).unwrap();
    assert_eq!(a[&5], vec![1, 2]);
}

/// The HetRec Last.fm files in S3-Rec's format, where the workspace has them.
#[test]
fn s3rec_reads_hetrec_lastfm() {
    // $ENCORE_SHARED_DATA, else the workspace's shared/data beside the checkout.
    let candidates = [
        std::env::var_os("ENCORE_SHARED_DATA").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")),
        Some(PathBuf::from("/work/shared/data")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|d| d.join("lastfm-hetrec-s3rec"))
        .find(|d| d.exists());
    let Some(dir) = found else {
        eprintln!("skipped: no shared/data/lastfm-hetrec-s3rec (set ENCORE_SHARED_DATA)");
        return;
    };
    let mut log = EventLog::default();
    let opts = ReadOptions {
        strict: true,
        ..Default::default()
    };
    let (r, s) = read::read_s3rec(&dir.join("LastFM.txt"), &mut log, &opts).unwrap();
    assert_eq!(s.users.len(), 1090);
    assert_eq!(
        r.events as usize,
        s.sequences.iter().map(Vec::len).sum::<usize>()
    );
    let samples = read::read_samples(&dir.join("LastFM_sample.txt")).unwrap();
    assert_eq!(samples.len(), 1090);
    assert!(samples.iter().all(|(_, n)| n.len() == 99));
    for ((u, negs), (su, seq)) in samples.iter().zip(s.users.iter().zip(&s.sequences)) {
        assert_eq!(u, su);
        assert!(
            negs.iter().all(|n| !seq.contains(n)),
            "user {u}: a negative was played"
        );
    }
    let attrs = read::read_item_attributes(&dir.join("LastFM_item2attributes.json")).unwrap();
    assert!(attrs.len() > 3000, "{}", attrs.len());
}

#[test]
fn durations_from_tsv_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = write(dir.path(), "durations.tsv", b"track_id\tartist\ttitle\tduration_s\nmbid-1\t\t\t200\n\tBj\xc3\xb6rk\tJ\xc3\xb3ga\t305.5\n");
    let d = read::read_durations(&tsv).unwrap();
    assert_eq!(d.get("mbid-1"), Some(200.0));
    assert_eq!(d.get("Björk\tJóga"), Some(305.5));
    let csv = write(
        dir.path(),
        "durations.csv",
        b"artist,title,duration_ms\nA,B,180000\n",
    );
    assert_eq!(read::read_durations(&csv).unwrap().get("A\tB"), Some(180.0));
    // Quoted fields as spreadsheets write them: a comma and doubled quotes inside.
    let quoted = write(
        dir.path(),
        "q.csv",
        b"artist,title,duration_s\n\"Crosby, Stills & Nash\",\"Suite: \"\"Judy Blue Eyes\"\"\",442\n",
    );
    assert_eq!(
        read::read_durations(&quoted)
            .unwrap()
            .get("Crosby, Stills & Nash\tSuite: \"Judy Blue Eyes\""),
        Some(442.0)
    );
    let json = write(
        dir.path(),
        "durations.json",
        br#"[{"uri": "spotify:track:x", "duration_ms": 90000}]"#,
    );
    assert_eq!(
        read::read_durations(&json).unwrap().get("spotify:track:x"),
        Some(90.0)
    );
    let bad = write(
        dir.path(),
        "durations-bad.tsv",
        b"track_id\tduration_s\nx\t200\ny\tlong\n",
    );
    let e = read::read_durations(&bad).unwrap_err();
    assert!(e.to_string().contains("durations-bad.tsv:3:"), "{e}");
}

/// Every reader skips a play whose time is outside 1970 to a day after now (naming the value,
/// and milliseconds where the value reads as such) instead of crashing or printing garbage
/// years; `TimeRange::ANY` takes years 0000 to 9999.
#[test]
fn times_outside_the_accepted_range_are_skipped_with_the_value_named() {
    let dir = tempfile::tempdir().unwrap();
    let reasons = |r: &read::ReadReport| -> Vec<String> {
        r.issues.iter().map(|i| i.reason.clone()).collect()
    };
    let lb: String = [
        "-62167219201",
        "1e20",
        "9223372036854775807",
        "253402300800",
        "1600000000000",
        "1600000000",
    ]
    .iter()
    .map(|t| {
        format!(
            r#"{{"listened_at": {t}, "track_metadata": {{"artist_name": "A", "track_name": "T"}}}}"#
        ) + "\n"
    })
    .collect();
    let p = write(dir.path(), "listens.jsonl", lb.as_bytes());
    let mut log = EventLog::default();
    let r = read::read_listenbrainz(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (1, 5), "{r:?}");
    let why = reasons(&r);
    assert!(why[0].contains("'listened_at' -62167219201 is not between 1970-01-01T00:00:00Z"));
    assert!(
        why[4].contains("as milliseconds it is 2020-09-13T12:26:40Z"),
        "{why:?}"
    );
    assert!(
        why.iter().all(|w| !w.contains('R') && !w.contains(":000")),
        "{why:?}"
    );

    let spotify = r#"[
  {"ts": "0000-01-01T00:00:00Z", "ms_played": 1000, "master_metadata_track_name": "S", "master_metadata_album_artist_name": "A"},
  {"endTime": "2019-02-01 10:04", "artistName": "A", "trackName": "S", "msPlayed": 1e30},
  {"endTime": "2019-02-01 10:04", "artistName": "A", "trackName": "S", "msPlayed": 64000000000000}
]"#;
    let p = write(dir.path(), "StreamingHistory0.json", spotify.as_bytes());
    let r = read::read_spotify(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (0, 3), "{r:?}");
    assert!(reasons(&r)[1].contains("more than a day"), "{:?}", r.issues);
    let any = ReadOptions {
        times: read::TimeRange::ANY,
        ..Default::default()
    };
    let r = read::read_spotify(&p, &mut log, &any).unwrap();
    assert_eq!((r.events, r.skipped), (1, 2), "{r:?}");

    let inter = "user_id:token\titem_id:token\ttimestamp:float\nu\ti\t-inf\nu\ti\t-1e308\nu\ti\tNaN\nu\ti\t5\n";
    let p = write(dir.path(), "x.inter", inter.as_bytes());
    let r = read::read_recbole(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (1, 3), "{r:?}");
    assert!(
        reasons(&r)[2].contains("NaN is not a time"),
        "{:?}",
        r.issues
    );

    let lastfm = b"u1\t1969-12-31T23:59:59Z\t\tA\t\tT\nu1\t2009-05-04T23:08:57Z\t\tA\t\tT\n";
    let p = write(dir.path(), "lastfm.tsv", lastfm);
    let r = read::read_lastfm1k(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (1, 1), "{r:?}");
}

/// The forms people have: ListenBrainz listens wrapped as the API and the submission format
/// give them, a byte-order mark, invalid UTF-8 in one record (that record is skipped), lines of
/// a pretty-printed Spotify array, and podcasts in account data.
#[test]
fn wrapped_listens_byte_order_marks_bad_bytes_and_podcasts() {
    let dir = tempfile::tempdir().unwrap();
    let listen = |t: i64, title: &str| {
        format!(
            r#"{{"listened_at": {t}, "track_metadata": {{"artist_name": "Portishead", "track_name": "{title}"}}}}"#
        )
    };
    let two = format!(
        "[\n{},\n{}\n]",
        listen(1_600_000_000, "Roads"),
        listen(1_600_000_300, "Sour Times")
    );
    for (name, text) in [
        (
            "api.json",
            format!("{{\"payload\": {{\"count\": 2, \"user_id\": \"lb\", \"listens\": {two}}}}}"),
        ),
        (
            "submit.json",
            format!("{{\"listen_type\": \"import\",\n\"payload\": {two}}}"),
        ),
        ("listens.json", format!("{{\"listens\": {two}}}")),
        (
            "bom.jsonl",
            format!(
                "\u{FEFF}{}\n{}\n",
                listen(1_600_000_000, "Roads"),
                listen(1_600_000_300, "Sour Times")
            ),
        ),
    ] {
        let p = write(dir.path(), name, text.as_bytes());
        let mut log = EventLog::default();
        let r = read::read_listenbrainz(&p, &mut log, &ReadOptions::default()).unwrap();
        assert_eq!((r.events, r.skipped), (2, 0), "{name}: {r:?}");
        assert_eq!(log.track_name.get(1), "Sour Times", "{name}");
    }
    // A bad byte in the second listen: only that listen is skipped, at its line.
    let mut bytes = format!(
        "[\n{},\n{},\n{}\n]",
        listen(1_600_000_000, "Roads"),
        listen(1_600_000_100, "Glory XX"),
        listen(1_600_000_300, "Sour Times")
    )
    .into_bytes();
    let at = bytes.windows(2).position(|w| w == b"XX").unwrap();
    bytes[at] = 0xff;
    let p = write(dir.path(), "bad.json", &bytes);
    let mut log = EventLog::default();
    let r = read::read_listenbrainz(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (2, 1), "{r:?}");
    assert_eq!(
        (r.issues[0].line, r.issues[0].reason.as_str()),
        (3, "not valid UTF-8")
    );

    let record = |end: &str, track: &str| {
        format!(
            "  {{\n    \"endTime\": \"{end}\",\n    \"artistName\": \"A\",\n    \"trackName\": \"{track}\",\n    \"msPlayed\": 1000\n  }}"
        )
    };
    let pretty = format!(
        "\u{FEFF}[\n{},\n{},\n{}\n]",
        record("2019-02-01 10:04", "S1"),
        record("yesterday", "S2"),
        record("2019-02-01 10:09", "S\u{FFFD}3")
    );
    let mut bytes = pretty.into_bytes();
    let at = bytes
        .windows(3)
        .position(|w| w == "\u{FFFD}".as_bytes())
        .unwrap();
    bytes.splice(at..at + 3, [0xc3, 0x28, b'x']);
    let p = write(dir.path(), "StreamingHistory0.json", &bytes);
    let r = read::read_spotify(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (1, 2), "{r:?}");
    let lines: Vec<u64> = r.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, [8, 14], "{:?}", r.issues);
    assert_eq!(r.issues[1].reason, "not valid UTF-8");
    let podcast = r#"[{"endTime": "2019-02-01 10:04", "podcastName": "The Daily", "episodeName": "E1", "msPlayed": 1000},
{"endTime": "2019-02-01 10:04", "artistName": "The Daily", "trackName": "E2", "msPlayed": 1000}]"#;
    let p = write(
        dir.path(),
        "StreamingHistory_podcast_0.json",
        podcast.as_bytes(),
    );
    let r = read::read_spotify(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.ignored), (0, 2), "{r:?}");

    let p = write(
        dir.path(),
        "bom.tsv",
        b"\xEF\xBB\xBFu1\t2009-05-04T23:08:57Z\t\tA\t\tT\n",
    );
    let r = read::read_lastfm1k(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!((r.events, r.skipped), (1, 0), "{r:?}");
}

/// A malformed field of megabytes, or one holding terminal escapes, is quoted in the report as
/// one short printable line.
#[test]
fn long_and_control_character_fields_are_quoted_short_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("u1\t{}\ta\tb\tc\td\n", "9".repeat(5_000_000)).into_bytes();
    text.extend_from_slice(b"u1\t\x1b[2Jnow\ta\tb\tc\td\n");
    let p = write(dir.path(), "big.tsv", &text);
    let mut log = EventLog::default();
    let r = read::read_lastfm1k(&p, &mut log, &ReadOptions::default()).unwrap();
    assert_eq!(r.skipped, 2);
    assert!(
        r.issues[0].reason.len() < 400,
        "{}",
        r.issues[0].reason.len()
    );
    assert!(
        r.issues[0].reason.contains("more bytes"),
        "{}",
        &r.issues[0].reason[..100]
    );
    assert!(r.issues[1].reason.contains("\\u{1b}[2Jnow") && !r.issues[1].reason.contains('\x1b'));
}

#[test]
fn formats_parse_by_name() {
    assert_eq!("lastfm1k".parse::<Format>().unwrap(), Format::Lastfm1k);
    assert!("csv".parse::<Format>().unwrap_err().contains("lastfm1k"));
    assert!(
        Preset::builtin("nope")
            .unwrap_err()
            .to_string()
            .contains("paper")
    );
}
