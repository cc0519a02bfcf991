//! `encore llm`: run a GGUF model directly: `bench` (prompt-processing and generation speed)
//! and `chat` (one greedy answer).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};

use crate::device::DeviceChoice;
use crate::llm::generate::{ChatTemplate, Sampling, Session};
use crate::llm::gguf::Gguf;
use crate::llm::llama::Llama;
use crate::llm::tokenizer::BpeTokenizer;

#[derive(Args, Debug)]
pub struct LlmArgs {
    #[command(subcommand)]
    command: LlmCommand,
}

#[derive(Subcommand, Debug)]
enum LlmCommand {
    /// Prompt-processing and generation tokens per second (scripts/bench-llm.sh compares llama.cpp)
    Bench(BenchArgs),
    /// One answer to a user message, greedy or sampled
    Chat(ChatArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[arg(long)]
    model: PathBuf,
    /// Prompt length in tokens (a fixed English text, repeated)
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens generated greedily after the prompt
    #[arg(long, default_value_t = 32)]
    gen_tokens: usize,
    /// Timed repetitions (the best is reported); one untimed run warms up first
    #[arg(long, default_value_t = 2)]
    repeat: usize,
    /// Write the numbers, the prompt's token ids and the greedy ids as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu", value_parser = super::args::parse_device)]
    device: DeviceChoice,
}

#[derive(Args, Debug)]
struct ChatArgs {
    #[arg(long)]
    model: PathBuf,
    /// The user's message
    message: String,
    #[arg(long, default_value = "You are a helpful assistant.")]
    system: String,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 for greedy decoding
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "cpu", value_parser = super::args::parse_device)]
    device: DeviceChoice,
}

struct Loaded {
    model: Llama,
    tok: BpeTokenizer,
    template: Option<ChatTemplate>,
    name: String,
    device: burn::tensor::Device,
}

fn load(path: &std::path::Path, device: DeviceChoice) -> anyhow::Result<Loaded> {
    let g = Gguf::open(path)?;
    let device = crate::device::select(device)?.device;
    let m = crate::llm::ChatModel::from_gguf(&g, &device)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(Loaded {
        model: m.model,
        tok: m.info.tok,
        template: m.info.template,
        name: m.info.name,
        device,
    })
}

pub fn run(a: LlmArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        LlmCommand::Bench(b) => bench(b),
        LlmCommand::Chat(c) => chat(c),
    }
}

const TEXT: &str = "The history of recorded music is a history of machines: the phonograph, the \
magnetic tape recorder, the multitrack console, the sampler and the laptop each changed what \
musicians could imagine and how listeners came to hear it. ";

fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let l = load(&a.model, a.device)?;
    let mut prompt = Vec::new();
    while prompt.len() < a.prompt_tokens {
        prompt.extend(l.tok.encode(TEXT));
    }
    prompt.truncate(a.prompt_tokens);
    let mut best_pp = f64::INFINITY;
    let mut best_tg = f64::INFINITY;
    let mut greedy = Vec::new();
    let mut first_logits_top = Vec::new();
    for rep in 0..=a.repeat {
        let mut s = Session::new(&l.model, &l.tok, &l.device);
        let t0 = Instant::now();
        s.feed(&prompt);
        let pp = t0.elapsed().as_secs_f64();
        if rep == 0 {
            first_logits_top = s.top_logits(10);
        }
        let t1 = Instant::now();
        let out = s.generate(a.gen_tokens, Sampling::Greedy, &[]);
        let tg = t1.elapsed().as_secs_f64();
        if rep > 0 {
            best_pp = best_pp.min(pp);
            best_tg = best_tg.min(tg);
        }
        greedy = out;
    }
    let pp_s = a.prompt_tokens as f64 / best_pp;
    let tg_s = greedy.len() as f64 / best_tg;
    println!(
        "{}: prompt processing {} tokens {:.1} tokens/s; generation {} tokens {:.1} tokens/s (best of {}, {})",
        l.name,
        a.prompt_tokens,
        pp_s,
        greedy.len(),
        tg_s,
        a.repeat,
        crate::device::select(a.device)?.backend.label()
    );
    if let Some(p) = &a.json {
        crate::data::ingest::write_json(
            p,
            &serde_json::json!({
                "engine": "encore (burn)",
                "model": l.name,
                "prompt_tokens": a.prompt_tokens,
                "prompt_tokens_per_s": pp_s,
                "gen_tokens": greedy.len(),
                "gen_tokens_per_s": tg_s,
                "prompt": prompt,
                "greedy": greedy,
                "top_logits": first_logits_top,
            }),
        )
        .with_context(|| p.display().to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn chat(a: ChatArgs) -> anyhow::Result<ExitCode> {
    let l = load(&a.model, a.device)?;
    let template = l
        .template
        .with_context(|| format!("{}: no ChatML or Llama 3 chat template", a.model.display()))?;
    let mut s = Session::new(&l.model, &l.tok, &l.device);
    s.feed_text(&template.render(&[("system", &a.system), ("user", &a.message)]));
    let stop: Vec<u32> = l.tok.id(template.end_token()).into_iter().collect();
    let sampling = if a.temperature > 0.0 {
        Sampling::TopP {
            temperature: a.temperature,
            top_p: a.top_p,
            seed: a.seed,
        }
    } else {
        Sampling::Greedy
    };
    let t0 = Instant::now();
    let out = s.generate(a.max_tokens, sampling, &stop);
    println!("{}", l.tok.decode(&out, false).trim_end());
    eprintln!(
        "{} tokens in {:.1} s ({:.1} tokens/s)",
        out.len(),
        t0.elapsed().as_secs_f64(),
        out.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
