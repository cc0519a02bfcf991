#![cfg(not(target_arch = "wasm32"))]
//! The documentation's links: `README.md` and the book in `docs/src/` (an mdBook).
//!
//! Every relative Markdown link (`[text](path)`, `[text](path#anchor)`, `[text](#anchor)`, and
//! reference definitions `[name]: path`) must reach an existing file, and its anchor a heading
//! of that file under the heading-id rules mdBook and GitHub share (lowercase; whitespace to
//! `-`; punctuation other than `-` and `_` dropped; a repeated id gets `-1`, `-2`, ...). Links
//! from the book must stay inside `docs/src/`, the only folder mdBook publishes. Every chapter
//! is listed in `docs/src/SUMMARY.md` and every entry exists; every include target exists.
//! Standard library only, so it also runs as `rustc --edition 2024 --test tests/docs.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The repository: the crate's folder under cargo, else the current directory.
fn repo_root() -> PathBuf {
    match option_env!("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir().expect("the current directory"),
    }
}

fn book_src(root: &Path) -> PathBuf {
    root.join("docs").join("src")
}

/// A link found in a Markdown file: its 1-based line and its target as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    line: usize,
    target: String,
}

/// The heading id mdBook and GitHub give a heading's text.
fn slug(heading: &str) -> String {
    let mut id = String::new();
    for ch in heading.trim().chars() {
        if ch.is_alphanumeric() || ch == '-' || ch == '_' {
            id.extend(ch.to_lowercase());
        } else if ch.is_whitespace() {
            id.push('-');
        }
    }
    id
}

/// A heading's text with its inline links replaced by their text, as rendered: the id of
/// `## See [the data](data.md)` is `see-the-data`.
fn link_text_only(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(mid) = after.find("](") else { break };
        let Some(close) = after[mid + 2..].find(')') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&after[..mid]);
        rest = &after[mid + 2 + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether a line opens or closes a fenced code block (three or more backticks or tildes).
fn fence(line: &str) -> Option<&'static str> {
    let t = line.trim_start();
    if line.len() - t.len() > 3 {
        return None;
    }
    if t.starts_with("```") {
        Some("```")
    } else if t.starts_with("~~~") {
        Some("~~~")
    } else {
        None
    }
}

/// The lines of a Markdown text outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut open: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match (open, fence(line)) {
            (None, Some(f)) => open = Some(f),
            (Some(o), Some(f)) if o == f => open = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// The ids of a Markdown text's ATX headings, in order, repeated ids numbered as mdBook does.
fn heading_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (_, line) in prose_lines(text) {
        let t = line.trim_start();
        if line.len() - t.len() > 3 {
            continue;
        }
        let level = t.chars().take_while(|&c| c == '#').count();
        if level == 0 || level > 6 {
            continue;
        }
        let rest = &t[level..];
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            continue;
        }
        let title = rest.trim().trim_end_matches('#').trim_end();
        let base = slug(&link_text_only(title));
        let mut id = base.clone();
        let mut n = 1;
        while ids.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        ids.push(id);
    }
    ids
}

/// A line with its inline code spans blanked out, so links shown as code are not checked.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let r = chars[j..].iter().take_while(|&&c| c == '`').count();
                if r == run {
                    close = Some(j + r);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - i));
                i = end;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The link targets of a Markdown text: inline links and images outside code, and reference
/// definitions. An optional title (`"..."`) and angle brackets around the target are removed.
fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (line_no, raw) in prose_lines(text) {
        let line = without_code_spans(raw);
        let t = line.trim_start();
        if t.starts_with('[')
            && let Some(close) = t.find("]:")
            && !t[..close].contains("](")
        {
            let target = t[close + 2..].split_whitespace().next().unwrap_or("");
            out.push(Link {
                line: line_no,
                target: target.trim_matches(['<', '>']).to_string(),
            });
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let mut depth = 0usize;
            let mut end = None;
            for (k, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = Some(k);
                        break;
                    }
                    ')' => depth -= 1,
                    _ => {}
                }
            }
            let Some(end) = end else { break };
            let inner = after[..end].trim();
            let target = if let Some(stripped) = inner.strip_prefix('<') {
                stripped.split('>').next().unwrap_or("")
            } else {
                inner.split_whitespace().next().unwrap_or("")
            };
            out.push(Link {
                line: line_no,
                target: target.to_string(),
            });
            rest = &after[end + 1..];
        }
    }
    out
}

/// The paths of mdBook include directives (`{{#include PATH}}`, optionally `PATH:ANCHOR` or
/// `PATH:START:END`), with their lines. Escaped directives (`\{{#...}}`) are skipped; code
/// blocks are searched too, since that is where includes usually sit.
fn includes(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("{{#") {
            let escaped = rest[..at].ends_with('\\');
            let after = &rest[at + 3..];
            let Some(end) = after.find("}}") else { break };
            let body = after[..end].trim();
            let (kind, arg) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
            if !escaped && (kind == "include" || kind == "rustdoc_include") {
                let path = arg.trim().split(':').next().unwrap_or("");
                out.push(Link {
                    line: i + 1,
                    target: path.to_string(),
                });
            }
            rest = &after[end + 2..];
        }
    }
    out
}

/// A path with `.` and `..` resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `%XX` escapes decoded (a link to a file with spaces in its name writes them as `%20`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every `.md` file under a folder, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).unwrap_or_else(|e| panic!("listing {}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The files whose links are checked: the README and every chapter of the book.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![root.join("README.md")];
    docs.extend(markdown_files(&book_src(root)));
    docs
}

/// The problems with one file's links, one line each.
fn check_links(root: &Path, file: &Path) -> Vec<String> {
    let text = read(file);
    let dir = file.parent().expect("a file's folder");
    let src = normalize(&book_src(root));
    let in_book = normalize(file).starts_with(&src);
    let mut problems = Vec::new();
    for link in links(&text) {
        let at = format!("{}:{}: `{}`", rel(root, file), link.line, link.target);
        if is_external(&link.target) {
            continue;
        }
        if link.target.is_empty() {
            problems.push(format!("{at}: an empty link target"));
            continue;
        }
        let (path_part, anchor) = match link.target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (link.target.as_str(), None),
        };
        let target = if path_part.is_empty() {
            file.to_path_buf()
        } else {
            normalize(&dir.join(percent_decode(path_part)))
        };
        if !target.exists() {
            problems.push(format!("{at}: no file {}", rel(root, &target)));
            continue;
        }
        if in_book && !target.starts_with(&src) {
            problems.push(format!(
                "{at}: leaves docs/src/, which is all mdBook publishes (link to a chapter, or use a full URL)"
            ));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if target.is_dir() || target.extension().is_none_or(|e| e != "md") {
            problems.push(format!(
                "{at}: an anchor into {}, which is not a Markdown file",
                rel(root, &target)
            ));
            continue;
        }
        let ids = heading_ids(&read(&target));
        if !ids.iter().any(|id| id == anchor) {
            problems.push(format!(
                "{at}: no heading `{anchor}` in {} (its headings: {})",
                rel(root, &target),
                ids.join(", ")
            ));
        }
    }
    problems
}

fn report(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s)\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn readme_and_book_links_resolve() {
    let root = repo_root();
    assert!(
        root.join("README.md").is_file(),
        "no README.md in {}",
        root.display()
    );
    let docs = documents(&root);
    assert!(docs.len() > 1, "no chapters under docs/src/");
    let problems: Vec<String> = docs.iter().flat_map(|f| check_links(&root, f)).collect();
    report("broken documentation links", &problems);
}

#[test]
fn summary_lists_every_chapter_and_only_existing_ones() {
    let root = repo_root();
    let src = book_src(&root);
    let summary_path = src.join("SUMMARY.md");
    let summary = read(&summary_path);
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for link in links(&summary) {
        // An empty target is an mdBook draft chapter: listed, with no file yet.
        if link.target.is_empty() || is_external(&link.target) {
            continue;
        }
        let path = normalize(&src.join(percent_decode(&link.target)));
        if !path.is_file() {
            problems.push(format!(
                "docs/src/SUMMARY.md:{}: `{}` does not exist",
                link.line, link.target
            ));
        }
        listed.insert(path);
    }
    for chapter in markdown_files(&src) {
        let chapter = normalize(&chapter);
        if chapter != normalize(&summary_path) && !listed.contains(&chapter) {
            problems.push(format!(
                "{} is not listed in docs/src/SUMMARY.md",
                rel(&root, &chapter)
            ));
        }
    }
    report("the book's table of contents", &problems);
}

#[test]
fn include_targets_exist() {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in markdown_files(&book_src(&root)) {
        let dir = file.parent().expect("a file's folder");
        for inc in includes(&read(&file)) {
            let path = normalize(&dir.join(&inc.target));
            if inc.target.is_empty() || !path.is_file() {
                problems.push(format!(
                    "{}:{}: include `{}`: no such file",
                    rel(&root, &file),
                    inc.line,
                    inc.target
                ));
            }
        }
    }
    report("the book's includes", &problems);
}

#[test]
fn book_config_names_the_source_folder() {
    let root = repo_root();
    let config = read(&root.join("docs").join("book.toml"));
    assert!(
        config.lines().any(|l| l.replace(' ', "") == "src=\"src\""),
        "docs/book.toml should set src = \"src\""
    );
}

#[test]
fn slugs_follow_mdbook_and_github() {
    assert_eq!(slug("Presets"), "presets");
    assert_eq!(
        slug("Measured on HetRec Last.fm"),
        "measured-on-hetrec-lastfm"
    );
    assert_eq!(
        slug("What `scripts/setup.sh` installs"),
        "what-scriptssetupsh-installs"
    );
    assert_eq!(
        slug("E4SRec: an LLM over the item tokens"),
        "e4srec-an-llm-over-the-item-tokens"
    );
    assert_eq!(slug("snake_case and-dash"), "snake_case-and-dash");
    assert_eq!(slug("  Two  spaces "), "two--spaces");
    assert_eq!(slug("Speed against llama.cpp"), "speed-against-llamacpp");
}

#[test]
fn heading_ids_skip_code_and_number_repeats() {
    let text = "# Title\n\n```sh\n# a comment, not a heading\n```\n\n## Speed\n\
                ### Speed\n#not-a-heading\n    # indented code\n## Closing ##\n\
                ## See [the data](data.md#presets)\n";
    assert_eq!(
        heading_ids(text),
        vec!["title", "speed", "speed-1", "closing", "see-the-data"]
    );
}

#[test]
fn links_are_found_outside_code() {
    let text = "See [a](data.md#presets) and ![img](pic.png \"title\").\n\
                `[not](a-link.md)` but [b](<with space.md>) and [c](#local).\n\
                ```\n[in](fence.md)\n```\n\
                [ref]: other.md#x\n\
                [d](https://example.com/x_(y)) [e](f.md)";
    let targets: Vec<String> = links(text).into_iter().map(|l| l.target).collect();
    assert_eq!(
        targets,
        vec![
            "data.md#presets",
            "pic.png",
            "with space.md",
            "#local",
            "other.md#x",
            "https://example.com/x_(y)",
            "f.md",
        ]
    );
    let lines: Vec<usize> = links(text).into_iter().map(|l| l.line).collect();
    assert_eq!(lines, vec![1, 1, 2, 2, 6, 7, 7]);
}

#[test]
fn includes_are_found_and_escapes_skipped() {
    let text = "```text\n{{#include ../../src/layers.txt}}\n```\n\
                \\{{#include not/this.txt}} {{#include part.rs:anchor}} {{#title T}}";
    let targets: Vec<String> = includes(text).into_iter().map(|l| l.target).collect();
    assert_eq!(targets, vec!["../../src/layers.txt", "part.rs"]);
}

#[test]
fn paths_and_escapes_normalize() {
    assert_eq!(
        normalize(Path::new("/r/docs/src/../../src/layers.txt")),
        PathBuf::from("/r/src/layers.txt")
    );
    assert_eq!(percent_decode("with%20space.md"), "with space.md");
    assert_eq!(percent_decode("100%"), "100%");
    assert!(is_external("HTTPS://x") && is_external("mailto:a@b") && !is_external("data.md"));
}
