//! A tolerant reader of a model's JSON ratings: it finds the object inside fenced code or prose,
//! repairs trailing commas and single quotes, matches keys whatever their case, spacing or
//! separators, reads integers, decimals and quoted numbers, and clamps values outside 0-5
//! (counting them). Keys it cannot find are reported so the caller can ask again.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ratings {
    /// Requested key -> rating 0-5.
    pub values: BTreeMap<String, u8>,
    /// Requested keys the answer lacks.
    pub missing: Vec<String>,
    /// Values outside 0-5 that were clamped.
    pub clamped: usize,
}

/// Lower case, separators (space, hyphen, slash, dot) as underscores, trimmed.
pub fn normalise_key(k: &str) -> String {
    let mut s = String::with_capacity(k.len());
    for c in k.trim().chars() {
        match c {
            ' ' | '-' | '/' | '.' | '_' => {
                if !s.ends_with('_') && !s.is_empty() {
                    s.push('_');
                }
            }
            c => s.extend(c.to_lowercase()),
        }
    }
    s.trim_end_matches('_').to_string()
}

/// The first balanced `{...}` of `text` (strings respected), if any.
fn first_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut quote = '"';
    for (i, c) in text[start..].char_indices() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == quote {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                in_str = true;
                quote = c;
            }
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    // Unclosed: take the rest and let the repair close it.
    Some(&text[start..])
}

/// Trailing commas removed, single-quoted strings double-quoted, an unclosed object closed.
fn repair(obj: &str) -> String {
    let mut s: String = obj
        .chars()
        .map(|c| if c == '\'' { '"' } else { c })
        .collect();
    let open = s.matches('{').count();
    let close = s.matches('}').count();
    for _ in close..open {
        s.push('}');
    }
    // ",}" and ", }" (any whitespace) -> "}".
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']') | None) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads the ratings of `keys` from a model's answer.
pub fn parse_ratings(text: &str, keys: &[&str]) -> Ratings {
    let mut found: BTreeMap<String, f64> = BTreeMap::new();
    if let Some(obj) = first_object(text)
        && let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&repair(obj))
    {
        for (k, v) in m {
            if let Some(x) = number(&v) {
                found.entry(normalise_key(&k)).or_insert(x);
            }
        }
    }
    // Fallback for what JSON parsing missed: `key: value` pairs anywhere in the text.
    for line in text.split([',', '\n', '{', '}']) {
        if let Some((k, v)) = line.split_once(':') {
            let k = normalise_key(k.trim().trim_matches(['"', '\'', '`', '*', '-', ' ']));
            let v = v.trim().trim_matches(['"', '\'', '`', '*', ' ']);
            let num: String = v
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                .collect();
            if let Ok(x) = num.parse::<f64>() {
                found.entry(k).or_insert(x);
            }
        }
    }
    let mut r = Ratings::default();
    for &key in keys {
        match found.get(&normalise_key(key)) {
            Some(&x) if x.is_finite() => {
                let clamped = x.round().clamp(0.0, 5.0);
                if clamped != x.round() {
                    r.clamped += 1;
                }
                r.values.insert(key.to_string(), clamped as u8);
            }
            _ => r.missing.push(key.to_string()),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 3] = ["drum_set", "tempo", "sad_lyrics"];

    fn ok(text: &str) -> BTreeMap<String, u8> {
        let r = parse_ratings(text, &KEYS);
        assert!(r.missing.is_empty(), "{text:?}: missing {:?}", r.missing);
        r.values
    }

    #[test]
    fn messy_answers_are_read() {
        let want: BTreeMap<String, u8> = [("drum_set", 4), ("tempo", 2), ("sad_lyrics", 0)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        for text in [
            r#"{"drum_set": 4, "tempo": 2, "sad_lyrics": 0}"#,
            "```json\n{\"drum_set\": 4, \"tempo\": 2, \"sad_lyrics\": 0}\n```",
            "Sure! Here are the ratings:\n{\"drum_set\": 4, \"tempo\": 2, \"sad_lyrics\": 0,}\nHope it helps.",
            "{'Drum Set': 4, 'TEMPO': '2', 'Sad-Lyrics': 0.2}",
            "{ \"drum set\" : 4 ,\n  \"tempo\" : 2.4 ,\n  \"sad lyrics\" : 0 ,\n}",
            "{\"drum_set\": 4, \"tempo\": 2, \"sad_lyrics\": 0",
            "drum_set: 4\ntempo: 2\nsad_lyrics: 0",
            "- **Drum Set**: 4\n- **Tempo**: 2\n- **Sad Lyrics**: 0 (none)",
            "{\"note\": \"a {brace} in a string\", \"drum_set\": 4, \"tempo\": 2, \"sad_lyrics\": 0}",
        ] {
            assert_eq!(ok(text), want, "{text:?}");
        }
    }

    #[test]
    fn out_of_range_values_are_clamped_and_counted_missing_keys_reported() {
        let r = parse_ratings(r#"{"drum_set": 9, "tempo": -1}"#, &KEYS);
        assert_eq!(r.values["drum_set"], 5);
        assert_eq!(r.values["tempo"], 0);
        assert_eq!(r.clamped, 2);
        assert_eq!(r.missing, vec!["sad_lyrics"]);
        let r = parse_ratings("I cannot rate this song.", &KEYS);
        assert_eq!(r.missing.len(), 3);
        let r = parse_ratings(
            r#"{"drum_set": "loud", "tempo": null, "sad_lyrics": 3}"#,
            &KEYS,
        );
        assert_eq!(r.missing, vec!["drum_set", "tempo"]);
        assert_eq!(
            normalise_key("  Happy/Joyful  Lyrics "),
            "happy_joyful_lyrics"
        );
    }
}
