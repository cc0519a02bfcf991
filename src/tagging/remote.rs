//! The MGPHot tagger through any OpenAI-compatible chat-completions server (llama.cpp's
//! `llama-server`, llama-cpp-python, vLLM, Ollama, hosted APIs).
//!
//! A server cannot be driven token by token, so the answer's shape is asked for instead: first as
//! a JSON schema (`response_format: json_schema`, exactly the requested keys, integers 0-5), then,
//! when the server rejects that form, as `json_object` with the schema beside it (llama.cpp and
//! llama-cpp-python turn it into a grammar), and last as plain text. The first form a server
//! accepts is kept for the rest of the run. Whatever comes back is read by the tolerant parser;
//! an answer that lacks keys is asked again.
//!
//! Transport failures, timeouts, 429 and 5xx are retried with exponential back-off; 401, 403 and
//! 404 fail at once with what they mean. The tagger is `Sync`: the caller runs several requests
//! at a time from threads.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::error::TagError;
use super::parse::parse_ratings;
use super::schema::{Gene, genes};
use super::tagger::{PromptMode, SYSTEM, Song, Tagged, Tagger, user_prompt};
use crate::llm::generate::Counts;

/// Where and how to ask.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The server's base URL (`http://127.0.0.1:8080`, `.../v1`) or its full
    /// `.../chat/completions` address.
    pub endpoint: String,
    /// The model name the server knows.
    pub model: String,
    /// Sent as `Authorization: Bearer KEY` when set.
    pub api_key: Option<String>,
    /// Limit for one request, connection to last byte.
    pub timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Wait before the first retry; doubled each time, at most 30 s.
    pub backoff: Duration,
}

impl ServerConfig {
    pub fn new(endpoint: &str, model: &str) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            model: model.to_string(),
            api_key: None,
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// How the answer's shape is requested, most to least specific.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AnswerFormat {
    JsonSchema = 0,
    JsonObject = 1,
    Text = 2,
}

impl AnswerFormat {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::JsonSchema,
            1 => Self::JsonObject,
            _ => Self::Text,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::JsonObject => "json_object + schema",
            Self::Text => "text",
        }
    }
}

/// The JSON schema of an answer: exactly `keys`, each an integer 0-5.
pub fn answer_schema(keys: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| {
            (
                k.to_string(),
                json!({"type": "integer", "enum": [0, 1, 2, 3, 4, 5]}),
            )
        })
        .collect();
    json!({"type": "object", "properties": props, "required": keys, "additionalProperties": false})
}

/// The chat-completions URL for an endpoint given as a base, a `/v1` base or the full address.
pub fn completions_url(endpoint: &str) -> Result<String, TagError> {
    let e = endpoint.trim().trim_end_matches('/');
    if !(e.starts_with("http://") || e.starts_with("https://")) {
        return Err(TagError::Endpoint {
            endpoint: endpoint.to_string(),
        });
    }
    Ok(if e.ends_with("/chat/completions") {
        e.to_string()
    } else if e.ends_with("/v1") {
        format!("{e}/chat/completions")
    } else {
        format!("{e}/v1/chat/completions")
    })
}

/// Why a request failed.
#[derive(Debug)]
enum Failure {
    /// Worth another try (transport, timeout, 429, 5xx, an incomplete answer).
    Transient(TagError),
    /// The server refused the request's form (400, 422, or an error naming `response_format`):
    /// try a plainer answer format.
    Rejected(TagError),
    /// Another try would not help (401, 403, 404, a reply that is not chat completions).
    Fatal(TagError),
}

/// Tags songs through a chat-completions server.
pub struct RemoteTagger {
    cfg: ServerConfig,
    url: String,
    agent: ureq::Agent,
    mode: PromptMode,
    format: AtomicU8,
}

impl RemoteTagger {
    pub fn new(cfg: ServerConfig, mode: PromptMode) -> Result<Self, TagError> {
        if mode == PromptMode::PerGene {
            return Err(TagError::PerGeneRemote);
        }
        let url = completions_url(&cfg.endpoint)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            cfg,
            url,
            agent,
            mode,
            format: AtomicU8::new(AnswerFormat::JsonSchema as u8),
        })
    }

    /// The answer format the server accepted last (the one the next request uses).
    pub fn format(&self) -> AnswerFormat {
        AnswerFormat::from_u8(self.format.load(Ordering::Relaxed))
    }

    /// The chat-completions address requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn body(&self, song: &Song, group: &[Gene], format: AnswerFormat, budget: usize) -> Value {
        let keys: Vec<&str> = group.iter().map(|g| g.key).collect();
        let mut body = json!({
            "model": self.cfg.model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": user_prompt(song, group)},
            ],
            "temperature": 0,
            "seed": 0,
            "max_tokens": budget,
            "stream": false,
        });
        let schema = answer_schema(&keys);
        match format {
            AnswerFormat::JsonSchema => {
                body["response_format"] = json!({"type": "json_schema",
                    "json_schema": {"name": "mgphot_ratings", "strict": true, "schema": schema}});
            }
            AnswerFormat::JsonObject => {
                body["response_format"] = json!({"type": "json_object", "schema": schema});
            }
            AnswerFormat::Text => {}
        }
        body
    }

    /// One request: the answer text, whether it was cut by the token limit, and its token usage.
    fn post(&self, body: &Value) -> Result<(String, bool, Counts), Failure> {
        let asks_format = body.get("response_format").is_some();
        let mut req = self
            .agent
            .post(&self.url)
            .header("Accept", "application/json");
        if let Some(k) = &self.cfg.api_key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let server = |reason: String| TagError::Server {
            url: self.url.clone(),
            reason,
        };
        let mut resp = req
            .content_type("application/json")
            .send(body.to_string())
            .map_err(|source| {
                Failure::Transient(TagError::Transport {
                    url: self.url.clone(),
                    what: "",
                    source,
                })
            })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|source| {
            Failure::Transient(TagError::Transport {
                url: self.url.clone(),
                what: "reading the reply: ",
                source,
            })
        })?;
        let brief = || text.chars().take(300).collect::<String>();
        match status {
            200..=299 => {}
            // Some servers (llama-cpp-python) answer a request they cannot validate with a 500.
            400 | 422 | 500 if asks_format && text.contains("response_format") => {
                return Err(Failure::Rejected(server(format!(
                    "HTTP {status}: {}",
                    brief()
                ))));
            }
            400 | 422 => {
                return Err(Failure::Rejected(server(format!(
                    "HTTP {status}: {}",
                    brief()
                ))));
            }
            401 | 403 => {
                return Err(Failure::Fatal(server(format!(
                    "HTTP {status}, the server wants a valid API key (--api-key or ENCORE_API_KEY): {}",
                    brief()
                ))));
            }
            404 => {
                return Err(Failure::Fatal(server(format!(
                    "HTTP 404, no chat-completions endpoint here (or no model '{}'): {}",
                    self.cfg.model,
                    brief()
                ))));
            }
            408 | 429 | 500..=599 => {
                return Err(Failure::Transient(server(format!(
                    "HTTP {status}: {}",
                    brief()
                ))));
            }
            _ => {
                return Err(Failure::Fatal(server(format!(
                    "HTTP {status}: {}",
                    brief()
                ))));
            }
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Failure::Fatal(server(format!("the reply is not JSON ({e}): {}", brief())))
        })?;
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| {
                Failure::Fatal(server(format!(
                    "the reply has no choices[0].message.content: {}",
                    brief()
                )))
            })?;
        let usage = &v["usage"];
        let counts = Counts {
            prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0) as usize,
            generated: usage["completion_tokens"].as_u64().unwrap_or(0) as usize,
        };
        let cut = v["choices"][0]["finish_reason"].as_str() == Some("length");
        Ok((content.to_string(), cut, counts))
    }

    /// Ratings for one group of genes, with format fall-back and retries.
    fn ask(
        &self,
        song: &Song,
        group: &[Gene],
        out: &mut Tagged,
    ) -> Result<Vec<(usize, u8)>, TagError> {
        let keys: Vec<&str> = group.iter().map(|g| g.key).collect();
        let mut attempt = 0u32;
        // A `"key": v, ` pair takes about a dozen tokens, more where a grammar spells out spaces;
        // an answer cut by the limit is asked again with twice the room.
        let mut budget = 32 * keys.len() + 64;
        loop {
            let format = self.format();
            out.requests += 1;
            let failure = match self.post(&self.body(song, group, format, budget)) {
                Ok((text, cut, counts)) => {
                    out.counts.prompt_tokens += counts.prompt_tokens;
                    out.counts.generated += counts.generated;
                    let r = parse_ratings(&text, &keys);
                    if r.missing.is_empty() {
                        out.clamped += r.clamped;
                        return Ok(group.iter().map(|g| (g.index, r.values[g.key])).collect());
                    }
                    if cut {
                        budget *= 2;
                    }
                    Failure::Transient(TagError::Incomplete {
                        cut,
                        missing: r.missing.len(),
                        asked: keys.len(),
                        first: r.missing[0].clone(),
                        answer: text.chars().take(200).collect(),
                    })
                }
                Err(f) => f,
            };
            match failure {
                Failure::Rejected(_) if format != AnswerFormat::Text => {
                    // A plainer form, not counted as a retry; kept for later requests.
                    let next = AnswerFormat::from_u8(format as u8 + 1);
                    let _ = self.format.compare_exchange(
                        format as u8,
                        next as u8,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Failure::Rejected(why) | Failure::Fatal(why) => return Err(why),
                Failure::Transient(why) => {
                    if attempt >= self.cfg.retries {
                        return Err(TagError::GaveUp {
                            attempts: attempt + 1,
                            source: Box::new(why),
                        });
                    }
                    let wait = self.cfg.backoff.saturating_mul(1 << attempt.min(6));
                    std::thread::sleep(wait.min(Duration::from_secs(30)));
                    attempt += 1;
                }
            }
        }
    }
}

impl Tagger for RemoteTagger {
    fn tag(&self, song: &Song) -> Result<Tagged, TagError> {
        let mut out = Tagged {
            values: vec![0.0; genes().len()],
            confidence: Vec::new(),
            counts: Counts::default(),
            clamped: 0,
            requests: 0,
        };
        for group in self.mode.groups() {
            for (i, r) in self.ask(song, &group, &mut out)? {
                out.values[i] = f32::from(r) / 5.0;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_become_chat_completion_urls() {
        for (e, want) in [
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:8080/",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            ("http://h:1/v1", "http://h:1/v1/chat/completions"),
            (
                "https://h/v1/chat/completions",
                "https://h/v1/chat/completions",
            ),
        ] {
            assert_eq!(completions_url(e).unwrap(), want);
        }
        let err = completions_url("127.0.0.1:8080").unwrap_err();
        assert!(err.to_string().contains("not an http"), "{err}");
    }

    #[test]
    fn the_schema_asks_for_exactly_the_keys_as_integers_0_to_5() {
        let s = answer_schema(&["tempo", "drum_set"]);
        assert_eq!(s["required"], json!(["tempo", "drum_set"]));
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(s["properties"]["tempo"]["enum"], json!([0, 1, 2, 3, 4, 5]));
        assert_eq!(s["properties"].as_object().unwrap().len(), 2);
    }
}
