//! Zero-shot scoring by a language model: the log-likelihood it gives each candidate's text as
//! the continuation of a prompt, and the prompt and scoring settings of a zero-shot run.

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::llama::{KvCache, Llama};
use super::tokenizer::BpeTokenizer;

/// How candidates' log-likelihoods become scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// Summed over the candidate's tokens (the text's log-probability).
    Sum,
    /// Per token (long titles are not penalised for their length).
    Mean,
}

impl std::str::FromStr for Likelihood {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sum" => Ok(Self::Sum),
            "mean" => Ok(Self::Mean),
            _ => Err(format!("unknown likelihood '{s}' (sum, mean)")),
        }
    }
}

/// The prompt and scoring of a zero-shot run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZeroShotConfig {
    /// Most recent history plays written into the prompt.
    pub history: usize,
    pub likelihood: Likelihood,
    /// Test cases scored (a seeded sample of the users); `None`: all.
    pub max_users: Option<usize>,
    /// The user message; `{items}` becomes the history, one play per line.
    pub instruction: String,
    /// Text the assistant's turn starts with; each candidate continues it after a space.
    pub response: String,
}

impl Default for ZeroShotConfig {
    fn default() -> Self {
        Self {
            history: 20,
            likelihood: Likelihood::Sum,
            max_users: None,
            instruction: "A user enjoyed these, in order:\n{items}\nWhat did they pick next?"
                .into(),
            response: "Next they picked".into(),
        }
    }
}

/// Zero-shot ranking without any trained part: the log-likelihood the LLM gives each candidate
/// text (say "Title by Artist") as the continuation of `prompt` (a text rendering of the
/// history), summed over the candidate's tokens, with the token count. The prompt is run once;
/// the candidates continue copies of its KV cache, [`CONTINUATION_BATCH`] at a time (right-padded:
/// under the causal mask the padding after a candidate's last token changes none of its scores).
pub fn continuation_log_likelihood(
    llm: &Llama,
    tok: &BpeTokenizer,
    prompt: &str,
    candidates: &[&str],
    device: &Device,
) -> Vec<(f64, usize)> {
    use burn::tensor::activation::log_softmax;
    let p = tok.encode(prompt);
    let mut cache = KvCache::default();
    let hidden = llm.forward_tokens(int_rows(&[&p], p.len(), device), &mut cache);
    let [_, n, d] = hidden.dims();
    let first: Vec<f32> = log_softmax(llm.logits(hidden.narrow(1, n - 1, 1).reshape([1, d])), 1)
        .into_data()
        .try_to_vec::<f32>()
        .expect("float logits");
    let toks: Vec<Vec<u32>> = candidates.iter().map(|c| tok.encode(c)).collect();
    let mut out: Vec<(f64, usize)> = toks
        .iter()
        .map(|c| {
            c.first()
                .map_or((0.0, 0), |&c0| (f64::from(first[c0 as usize]), c.len()))
        })
        .collect();
    // Candidates of two or more tokens: the rest of their tokens, each predicted from the ones
    // before it.
    let longer: Vec<usize> = (0..toks.len()).filter(|&i| toks[i].len() > 1).collect();
    for group in longer.chunks(CONTINUATION_BATCH) {
        let b = group.len();
        let len = group.iter().map(|&i| toks[i].len() - 1).max().unwrap_or(1);
        let inputs: Vec<&[u32]> = group
            .iter()
            .map(|&i| &toks[i][..toks[i].len() - 1])
            .collect();
        let targets: Vec<&[u32]> = group.iter().map(|&i| &toks[i][1..]).collect();
        let mut cc = KvCache {
            layers: cache
                .layers
                .iter()
                .map(|l| {
                    l.as_ref()
                        .map(|(k, v)| (k.clone().repeat_dim(0, b), v.clone().repeat_dim(0, b)))
                })
                .collect(),
        };
        let h = llm.forward_tokens(int_rows(&inputs, len, device), &mut cc);
        let lp = log_softmax(llm.logits(h.reshape([b * len, d])), 1)
            .gather(1, int_rows(&targets, len, device).reshape([b * len, 1]));
        let lp: Vec<f32> = lp.into_data().try_to_vec::<f32>().expect("float log-probs");
        for (j, &i) in group.iter().enumerate() {
            out[i].0 += lp[j * len..j * len + targets[j].len()]
                .iter()
                .map(|&x| f64::from(x))
                .sum::<f64>();
        }
    }
    out
}

/// How many candidates [`continuation_log_likelihood`] continues at once.
pub const CONTINUATION_BATCH: usize = 16;

/// Token rows right-padded with 0 to `len`, as `[rows, len]`.
fn int_rows(rows: &[&[u32]], len: usize, device: &Device) -> Tensor<2, Int> {
    let mut v = vec![0i64; rows.len() * len];
    for (r, row) in rows.iter().enumerate() {
        for (j, &t) in row.iter().enumerate() {
            v[r * len + j] = i64::from(t);
        }
    }
    Tensor::from_data(TensorData::new(v, [rows.len(), len]), device)
}
