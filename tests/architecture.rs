#![cfg(not(target_arch = "wasm32"))]
//! The crate's architecture, checked: `src/layers.txt` lists the top-level modules of `src/` in
//! layers, bottom first, and this test reads every source file under `src/` and fails, listing
//! every problem at once, when
//!
//! - a top-level module (`src/X/` or `src/X.rs`) is missing from the map, listed twice, or listed
//!   without existing;
//! - a file imports a file of another module whose layer is not strictly below its own;
//! - files import each other, directly or round a longer loop;
//! - an external crate with a home (`CRATE_HOMES`) is named outside that home.
//!
//! It needs only std. Each file loses its comments, literals and the items under a `#[cfg]` that
//! needs `test` (`#[cfg(test)]`, `#[cfg(all(test, ..))]`; files of such modules are left out),
//! then its tokens give `use` trees and paths that start with `crate`, `super`, `self` or a
//! child module.
//! A path goes to the file of the longest module prefix it names; where that module re-exports
//! the next name (`pub use child::Name`, `pub use child::*`), it goes on to the file that defines
//! the name. Paths that a macro builds, `#[path]` attributes and names brought in by a plain `use`
//! and then used as the start of a path are not seen.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The layer map, relative to the crate root.
const LAYERS_FILE: &str = "src/layers.txt";

/// External crates that only some top-level modules may name: (crate, the modules allowed).
const CRATE_HOMES: &[(&str, &[&str])] = &[
    ("leptos", &["web"]),
    ("clap", &["cli"]),
    ("anyhow", &["cli"]),
    ("safetensors", &["util"]),
];

/// Words after `const` or `static` that are not the item's name.
const NOT_NAMES: &[&str] = &["fn", "unsafe", "async", "extern", "mut", "_"];

#[test]
fn src_follows_the_layer_map() {
    let root = crate_root();
    let map = root.join(LAYERS_FILE);
    let layers = fs::read_to_string(&map)
        .unwrap_or_else(|e| panic!("cannot read the layer map {}: {e}", map.display()));
    let sources = read_sources(&root);
    assert!(
        !sources.is_empty(),
        "no .rs files under {}",
        root.join("src").display()
    );
    let report = check(&sources, &layers);
    println!("{}", report.summary);
    if !report.failures.is_empty() {
        let list: Vec<String> = report.failures.iter().map(|f| format!("  - {f}")).collect();
        panic!(
            "src/ does not follow {LAYERS_FILE}: {} problem(s)\n{}\n",
            report.failures.len(),
            list.join("\n")
        );
    }
}

/// The crate root: cargo's manifest folder, or the current directory when built by bare rustc.
fn crate_root() -> PathBuf {
    match option_env!("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir().expect("the current directory is readable"),
    }
}

/// Every `.rs` file under `root/src`, keyed by its path from the root (`src/a/b.rs`). Files that
/// vanish while being read (others may be moving them) are left out.
fn read_sources(root: &Path) -> BTreeMap<String, String> {
    let mut sources = BTreeMap::new();
    collect_rs(root, &root.join("src"), &mut sources);
    sources
}

fn collect_rs(root: &Path, dir: &Path, sources: &mut BTreeMap<String, String>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return,
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(root, &path, sources);
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        };
        let rel = path
            .strip_prefix(root)
            .expect("a file found under the root");
        sources.insert(rel.to_string_lossy().replace('\\', "/"), text);
    }
}

/// What `check` finds: the problems, and a summary of the graph for `--nocapture`.
struct Report {
    failures: Vec<String>,
    summary: String,
}

/// Checks `sources` (path from the crate root to text) against the layer map's text.
fn check(sources: &BTreeMap<String, String>, layers_text: &str) -> Report {
    let layers = Layers::parse(layers_text);
    let krate = Crate::parse(sources);
    let edges = krate.edges();
    let mut failures = layers.check_modules(&krate.top_modules());
    failures.extend(layer_failures(&layers, &krate, &edges));
    failures.extend(cycle_failures(&krate, &edges));
    failures.extend(crate_failures(&krate));
    let summary = summary(&layers, &krate, &edges);
    Report { failures, summary }
}

// ---------------------------------------------------------------------------------------------
// The layer map

/// One line of the map: its line number and its modules (peers).
#[derive(Debug)]
struct Layer {
    line: usize,
    modules: Vec<String>,
}

/// The map's layers, bottom first.
#[derive(Debug)]
struct Layers {
    layers: Vec<Layer>,
}

impl Layers {
    fn parse(text: &str) -> Self {
        let layers = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(n, l)| {
                let names = l.split_once(':').map_or(l, |(names, _)| names);
                let modules = names.split_whitespace().map(str::to_owned).collect();
                Layer {
                    line: n + 1,
                    modules,
                }
            })
            .collect();
        Self { layers }
    }

    /// The layer (0 = bottom) that lists `module`.
    fn index(&self, module: &str) -> Option<usize> {
        self.layers
            .iter()
            .position(|l| l.modules.iter().any(|m| m == module))
    }

    fn name(&self, index: usize) -> String {
        self.layers[index].modules.join(" ")
    }

    /// Every module listed once, every listed module existing; `existing` maps each top-level
    /// module to where it lives (`src/x/` or `src/x.rs`).
    fn check_modules(&self, existing: &BTreeMap<String, String>) -> Vec<String> {
        let mut failures = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for layer in &self.layers {
            let at = format!("{LAYERS_FILE}:{}", layer.line);
            if layer.modules.is_empty() {
                failures.push(format!("{at}: a layer with no modules"));
            }
            for m in &layer.modules {
                if let Some(first) = seen.get(m.as_str()) {
                    failures.push(format!(
                        "{at}: module '{m}' is listed again (first on line {first})"
                    ));
                    continue;
                }
                seen.insert(m, layer.line);
                if !existing.contains_key(m) {
                    failures.push(format!(
                        "{at}: module '{m}' does not exist (no src/{m}/, no src/{m}.rs)"
                    ));
                }
            }
        }
        for (m, place) in existing {
            if !seen.contains_key(m.as_str()) {
                failures.push(format!("module '{m}' ({place}) is not in {LAYERS_FILE}"));
            }
        }
        failures
    }
}

// ---------------------------------------------------------------------------------------------
// Reading one file

/// Blanks comments and string, byte-string, raw-string and char literals, keeping every newline
/// (so line numbers hold) and lifetimes (`'a`).
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        if let Some(end) = literal_or_comment_end(&c, i) {
            out.extend(
                c[i..end]
                    .iter()
                    .map(|&ch| if ch == '\n' { '\n' } else { ' ' }),
            );
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

fn find(c: &[char], from: usize, target: char) -> Option<usize> {
    c.get(from..)?
        .iter()
        .position(|&ch| ch == target)
        .map(|p| from + p)
}

/// Where the comment or literal starting at `c[i]` ends, if one starts there.
fn literal_or_comment_end(c: &[char], i: usize) -> Option<usize> {
    let next = c.get(i + 1).copied();
    match c[i] {
        '/' if next == Some('/') => Some(find(c, i, '\n').unwrap_or(c.len())),
        '/' if next == Some('*') => Some(block_comment_end(c, i)),
        '"' => Some(string_end(c, i + 1)),
        '\'' => char_literal_end(c, i),
        'r' | 'b' | 'c' if i == 0 || !is_ident_char(c[i - 1]) => raw_string_end(c, i),
        _ => None,
    }
}

fn block_comment_end(c: &[char], start: usize) -> usize {
    let (mut depth, mut j) = (0usize, start);
    while j < c.len() {
        let pair = (c[j], c.get(j + 1).copied());
        if pair == ('/', Some('*')) {
            depth += 1;
            j += 2;
        } else if pair == ('*', Some('/')) {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    c.len()
}

/// The end of a `"` string whose text starts at `j`.
fn string_end(c: &[char], mut j: usize) -> usize {
    while j < c.len() {
        match c[j] {
            '\\' => j += 2,
            '"' => return j + 1,
            _ => j += 1,
        }
    }
    c.len()
}

/// A char literal (`'x'`, `'\n'`, `'\u{1F600}'`), not a lifetime or label (`'a`).
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    match (c.get(i + 1), c.get(i + 2)) {
        (Some('\\'), _) => find(c, i + 3, '\'').map(|end| end + 1),
        (Some(&ch), Some('\'')) if ch != '\'' => Some(i + 3),
        _ => None,
    }
}

/// A raw string `r"..."`, `r#"..."#`, `br##"..."##`, `cr"..."`.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let mut j = i + match (c[i], c.get(i + 1)) {
        ('r', _) => 1,
        ('b' | 'c', Some('r')) => 2,
        _ => return None,
    };
    let hashes = c[j..].iter().take_while(|&&ch| ch == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    for k in j + 1..c.len() {
        let closes = c
            .get(k + 1..k + 1 + hashes)
            .is_some_and(|h| h.iter().all(|&ch| ch == '#'));
        if c[k] == '"' && closes {
            return Some(k + 1 + hashes);
        }
    }
    Some(c.len())
}

/// Blanks every item, statement or field under a `#[cfg]` that needs `test` (`test`,
/// `all(test, ...)`), run after stripping literals; also names the `mod x;` files so gated.
fn remove_cfg_test(src: &str) -> (String, Vec<String>) {
    let mut c: Vec<char> = src.chars().collect();
    let (mut i, mut test_modules) = (0, Vec::new());
    while i < c.len() {
        let Some(attr_end) = (c[i] == '#').then(|| cfg_test_attribute(&c, i)).flatten() else {
            i += 1;
            continue;
        };
        let end = item_end(&c, attr_end);
        let item: String = c[attr_end..end].iter().collect();
        if let [.., module, name, semicolon] = tokenize(&item).as_slice()
            && (module.text.as_str(), semicolon.text.as_str()) == ("mod", ";")
        {
            test_modules.push(name.text.clone());
        }
        for ch in &mut c[i..end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = end;
    }
    (c.into_iter().collect(), test_modules)
}

/// The end of a `#[cfg(...)]` starting at `c[i]` (any spacing) whose predicate needs `test`.
fn cfg_test_attribute(c: &[char], i: usize) -> Option<usize> {
    let open = expect_pieces(c, i, &["#", "[", "cfg", "("])?;
    let close = matching(c, open - 1, ('(', ')'));
    let end = expect_pieces(c, close, &["]"])?;
    let predicate: String = c[open..close - 1].iter().collect();
    needs_test(&tokenize(&predicate), &mut 0).then_some(end)
}

/// Just after `pieces` (words or punctuation, any spacing between) at `c[i]`.
fn expect_pieces(c: &[char], i: usize, pieces: &[&str]) -> Option<usize> {
    let mut j = i;
    for piece in pieces {
        while c.get(j).is_some_and(|ch| ch.is_whitespace()) {
            j += 1;
        }
        if !piece
            .chars()
            .enumerate()
            .all(|(k, p)| c.get(j + k) == Some(&p))
        {
            return None;
        }
        j += piece.len();
        if piece.len() > 1 && c.get(j).is_some_and(|&ch| is_ident_char(ch)) {
            return None;
        }
    }
    Some(j)
}

/// Whether the cfg predicate at `t[*i]` holds only in tests: `test`, `all(.., test, ..)`, or
/// `any(..)` of such; `not(..)` and options such as `feature = ".."` do not.
fn needs_test(t: &[Token], i: &mut usize) -> bool {
    let word = at(t, *i).to_owned();
    *i += 1;
    if at(t, *i) == "=" {
        *i += 1;
        if !matches!(at(t, *i), "," | ")" | "") {
            *i += 1;
        }
        return false;
    }
    if at(t, *i) != "(" {
        return word == "test";
    }
    *i += 1;
    let mut parts = Vec::new();
    while !matches!(at(t, *i), ")" | "") {
        parts.push(needs_test(t, i));
        if at(t, *i) == "," {
            *i += 1;
        }
    }
    *i += 1;
    match word.as_str() {
        "all" => parts.contains(&true),
        "any" => !parts.is_empty() && !parts.contains(&false),
        _ => false,
    }
}

/// The end of the item after an attribute: its `;` or `,`, its braced body, or the `}` that
/// closes what holds it.
fn item_end(c: &[char], from: usize) -> usize {
    let mut depth = 0usize;
    for j in from..c.len() {
        let arrow = j > 0 && matches!(c[j - 1], '-' | '=');
        match c[j] {
            '(' | '[' | '<' => depth += 1,
            '>' if arrow => {}
            ')' | ']' | '>' => depth = depth.saturating_sub(1),
            ';' | ',' if depth == 0 => return j + 1,
            '}' if depth == 0 => return j,
            '{' if depth == 0 => return matching(c, j, ('{', '}')),
            _ => {}
        }
    }
    c.len()
}

/// Just after the closing bracket that matches the opening one at `c[open]`.
fn matching(c: &[char], open: usize, (opening, closing): (char, char)) -> usize {
    let mut depth = 0usize;
    for (j, &ch) in c.iter().enumerate().skip(open) {
        if ch == opening {
            depth += 1;
        } else if ch == closing {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    c.len()
}

/// An identifier or keyword, `::`, a lifetime, or one punctuation character.
#[derive(Clone, Debug, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let (mut tokens, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        if c[i] == '\n' {
            line += 1;
        }
        if c[i].is_whitespace() {
            i += 1;
            continue;
        }
        let raw_ident = c[i] == 'r' && c.get(i + 1) == Some(&'#');
        if raw_ident && c.get(i + 2).is_some_and(|&ch| is_ident_char(ch)) {
            i += 2;
        }
        let start = i;
        let word = is_ident_char(c[i])
            || (c[i] == '\'' && c.get(i + 1).is_some_and(|&ch| is_ident_char(ch)));
        if word {
            i += 1;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            i += 1;
        }
        tokens.push(Token {
            text: c[start..i].iter().collect(),
            line,
        });
    }
    tokens
}

fn at(t: &[Token], i: usize) -> &str {
    t.get(i).map_or("", |t| t.text.as_str())
}

fn before(t: &[Token], i: usize, back: usize) -> &str {
    i.checked_sub(back).map_or("", |k| at(t, k))
}

fn line_of(t: &[Token], i: usize) -> usize {
    t.get(i).map_or(0, |t| t.line)
}

fn is_ident(tok: &str) -> bool {
    tok.chars()
        .next()
        .is_some_and(|ch| ch.is_alphabetic() || ch == '_')
}

/// One leaf of a `use` tree: its full path, its rename, whether it is a glob.
#[derive(Debug, PartialEq)]
struct Leaf {
    segs: Vec<String>,
    alias: Option<String>,
    glob: bool,
    line: usize,
}

/// Expands the use tree at `t[*i]` under `prefix` into leaves, leaving `*i` after it.
fn use_tree(t: &[Token], i: &mut usize, prefix: &[String], leaves: &mut Vec<Leaf>) {
    let mut segs = prefix.to_vec();
    if at(t, *i) == "::" {
        *i += 1;
    }
    loop {
        let tok = at(t, *i);
        if tok == "*" || tok == "{" {
            *i += 1;
            if tok == "{" {
                use_group(t, i, &segs, leaves);
            } else {
                let line = line_of(t, *i - 1);
                leaves.push(Leaf {
                    segs,
                    alias: None,
                    glob: true,
                    line,
                });
            }
            return;
        }
        if !is_ident(tok) {
            return;
        }
        segs.push(tok.to_owned());
        *i += 1;
        if at(t, *i) != "::" {
            break;
        }
        *i += 1;
    }
    let line = line_of(t, *i - 1);
    let alias = (at(t, *i) == "as").then(|| at(t, *i + 1).to_owned());
    if alias.is_some() {
        *i += 2;
    }
    if segs.len() > 1 && segs.last().is_some_and(|s| s == "self") {
        segs.pop();
    }
    leaves.push(Leaf {
        segs,
        alias,
        glob: false,
        line,
    });
}

/// The trees of a `{ ... }` group, after its `{`.
fn use_group(t: &[Token], i: &mut usize, prefix: &[String], leaves: &mut Vec<Leaf>) {
    while *i < t.len() {
        match at(t, *i) {
            "}" => {
                *i += 1;
                return;
            }
            ";" => return,
            "," => *i += 1,
            _ => {
                let start = *i;
                use_tree(t, i, prefix, leaves);
                if *i == start {
                    *i += 1;
                }
            }
        }
    }
}

/// A path in a file: the module it is written in (the file's, or an inline `mod` in it), its
/// segments, its line, and whether it is a `use` leaf.
#[derive(Clone, Debug, PartialEq)]
struct Ref {
    scope: Vec<String>,
    segs: Vec<String>,
    line: usize,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Path,
    Use {
        public: bool,
        alias: Option<String>,
        glob: bool,
    },
}

impl Ref {
    fn display(&self) -> String {
        let mut text = self.segs.join("::");
        if matches!(self.kind, Kind::Use { glob: true, .. }) {
            text.push_str("::*");
        }
        text
    }
}

/// What one file holds: child modules declared `mod x;` (and those only for tests), names it
/// defines at its top level, and its paths.
#[derive(Debug, Default)]
struct Parsed {
    children: BTreeSet<String>,
    test_children: Vec<String>,
    defines: BTreeSet<String>,
    refs: Vec<Ref>,
}

fn parse_source(module: &[String], src: &str) -> Parsed {
    let (code, test_children) = remove_cfg_test(&strip_comments_and_literals(src));
    let tokens = tokenize(&code);
    let mut scanner = Scanner {
        t: &tokens,
        i: 0,
        depth: 0,
        module,
        inline: Vec::new(),
        pending_mod: None,
        out: Parsed::default(),
    };
    while scanner.i < tokens.len() {
        scanner.step();
    }
    Parsed {
        test_children,
        ..scanner.out
    }
}

/// Walks a file's tokens, tracking brace depth and inline modules.
struct Scanner<'a> {
    t: &'a [Token],
    i: usize,
    depth: usize,
    module: &'a [String],
    /// Inline modules open here: name and the brace depth inside them.
    inline: Vec<(String, usize)>,
    pending_mod: Option<String>,
    out: Parsed,
}

impl Scanner<'_> {
    fn step(&mut self) {
        let tok = at(self.t, self.i);
        if tok == "use" {
            self.use_decl();
            return;
        }
        if self.path_starts_here() {
            self.path();
            return;
        }
        match tok {
            "{" => self.open(),
            "}" => self.close(),
            ";" => self.pending_mod = None,
            "mod" => self.mod_decl(),
            "extern" if at(self.t, self.i + 1) == "crate" => self.extern_crate(),
            _ => self.definition(tok),
        }
        self.i += 1;
    }

    fn scope(&self) -> Vec<String> {
        let mut scope = self.module.to_vec();
        scope.extend(self.inline.iter().map(|(name, _)| name.clone()));
        scope
    }

    fn open(&mut self) {
        self.depth += 1;
        if let Some(name) = self.pending_mod.take() {
            self.inline.push((name, self.depth));
        }
    }

    fn close(&mut self) {
        if self
            .inline
            .last()
            .is_some_and(|(_, depth)| *depth == self.depth)
        {
            self.inline.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn mod_decl(&mut self) {
        let name = at(self.t, self.i + 1);
        if !is_ident(name) {
            return;
        }
        match at(self.t, self.i + 2) {
            ";" if self.inline.is_empty() => {
                self.out.children.insert(name.to_owned());
            }
            "{" => self.pending_mod = Some(name.to_owned()),
            _ => {}
        }
        if self.depth == 0 {
            self.out.defines.insert(name.to_owned());
        }
    }

    /// Names of top-level items, for following glob re-exports.
    fn definition(&mut self, tok: &str) {
        if self.depth != 0 {
            return;
        }
        let next = at(self.t, self.i + 1);
        let name = match tok {
            "struct" | "enum" | "fn" | "trait" | "type" | "union" => next,
            "const" | "static" if !NOT_NAMES.contains(&next) => next,
            "static" if next == "mut" => at(self.t, self.i + 2),
            "macro_rules" if next == "!" => at(self.t, self.i + 2),
            _ => return,
        };
        if is_ident(name) {
            self.out.defines.insert(name.to_owned());
        }
    }

    fn is_public(&self) -> bool {
        let mut k = self.i;
        if before(self.t, k, 1) == ")" {
            while k > 0 && at(self.t, k) != "(" {
                k -= 1;
            }
        }
        before(self.t, k, 1) == "pub"
    }

    fn use_decl(&mut self) {
        let (public, scope) = (self.is_public(), self.scope());
        let mut leaves = Vec::new();
        self.i += 1;
        use_tree(self.t, &mut self.i, &[], &mut leaves);
        while self.i < self.t.len() && at(self.t, self.i) != ";" {
            self.i += 1;
        }
        self.i += 1;
        for Leaf {
            segs,
            alias,
            glob,
            line,
        } in leaves
        {
            let kind = Kind::Use {
                public,
                alias,
                glob,
            };
            self.out.refs.push(Ref {
                scope: scope.clone(),
                segs,
                line,
                kind,
            });
        }
    }

    fn path_starts_here(&self) -> bool {
        let (t, i) = (self.t, self.i);
        is_ident(at(t, i))
            && at(t, i + 1) == "::"
            && is_ident(at(t, i + 2))
            && before(t, i, 1) != "::"
    }

    /// A path in code or types; `pub(in path)` visibilities are not imports.
    fn path(&mut self) {
        let restriction = (
            before(self.t, self.i, 3),
            before(self.t, self.i, 2),
            before(self.t, self.i, 1),
        ) == ("pub", "(", "in");
        let line = line_of(self.t, self.i);
        let mut segs = vec![at(self.t, self.i).to_owned()];
        self.i += 1;
        while at(self.t, self.i) == "::" && is_ident(at(self.t, self.i + 1)) {
            segs.push(at(self.t, self.i + 1).to_owned());
            self.i += 2;
        }
        if !restriction {
            self.out.refs.push(Ref {
                scope: self.scope(),
                segs,
                line,
                kind: Kind::Path,
            });
        }
    }

    fn extern_crate(&mut self) {
        let name = at(self.t, self.i + 2);
        if is_ident(name) {
            let (line, segs) = (line_of(self.t, self.i), vec![name.to_owned()]);
            self.out.refs.push(Ref {
                scope: self.scope(),
                segs,
                line,
                kind: Kind::Path,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The crate: files, modules, re-exports, the import graph

/// `src/a/b.rs` and `src/a/b/mod.rs` are module `a::b`, `src/lib.rs` the root; `src/main.rs`
/// and `src/bin/` are other crates.
fn module_path(file: &str) -> Option<Vec<String>> {
    let rel = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut segs: Vec<String> = rel.split('/').map(str::to_owned).collect();
    match segs.first().map(String::as_str) {
        Some("lib") if segs.len() == 1 => return Some(Vec::new()),
        Some("main") if segs.len() == 1 => return None,
        Some("bin") if segs.len() > 1 => return None,
        _ => {}
    }
    if segs.len() > 1 && segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    Some(segs)
}

#[derive(Debug)]
struct SourceFile {
    path: String,
    module: Vec<String>,
    parsed: Parsed,
    /// `pub use` by name: the name's absolute path.
    exports: BTreeMap<String, Vec<String>>,
    /// `pub use module::*`: the module's absolute path.
    globs: Vec<Vec<String>>,
}

/// One import, first place per pair of files.
#[derive(Clone, Debug)]
struct Edge {
    from: usize,
    to: usize,
    line: usize,
    path: String,
}

#[derive(Debug)]
struct Crate {
    files: Vec<SourceFile>,
    modules: HashMap<Vec<String>, usize>,
}

impl Crate {
    fn parse(sources: &BTreeMap<String, String>) -> Self {
        let mut files: Vec<SourceFile> = sources
            .iter()
            .filter_map(|(path, text)| {
                let module = module_path(path)?;
                let parsed = parse_source(&module, text);
                let (exports, globs) = (BTreeMap::new(), Vec::new());
                Some(SourceFile {
                    path: path.clone(),
                    module,
                    parsed,
                    exports,
                    globs,
                })
            })
            .collect();
        let test_only: Vec<Vec<String>> = files
            .iter()
            .flat_map(|f| {
                f.parsed
                    .test_children
                    .iter()
                    .map(|c| [&f.module[..], std::slice::from_ref(c)].concat())
            })
            .collect();
        files.retain(|f| !test_only.iter().any(|t| f.module.starts_with(t)));
        let modules = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        let mut krate = Self { files, modules };
        krate.collect_exports();
        krate
    }

    /// Files of the graph: every one but the crate root.
    fn is_node(&self, file: usize) -> bool {
        !self.files[file].module.is_empty()
    }

    /// Top-level modules and where they live (`src/x/` or `src/x.rs`).
    fn top_modules(&self) -> BTreeMap<String, String> {
        let mut tops = BTreeMap::new();
        for f in &self.files {
            let Some(top) = f.module.first() else {
                continue;
            };
            let folder = format!("src/{top}/");
            let place = if f.path.starts_with(&folder) {
                folder
            } else {
                f.path.clone()
            };
            if tops
                .get(top)
                .is_none_or(|known: &String| !known.ends_with('/'))
            {
                tops.insert(top.clone(), place);
            }
        }
        tops
    }

    fn collect_exports(&mut self) {
        for i in 0..self.files.len() {
            let (mut exports, mut globs) = (BTreeMap::new(), Vec::new());
            let f = &self.files[i];
            for r in f.parsed.refs.iter().filter(|r| r.scope == f.module) {
                let Kind::Use {
                    public: true,
                    alias,
                    glob,
                } = &r.kind
                else {
                    continue;
                };
                let Some(abs) = self.absolute(i, r) else {
                    continue;
                };
                if *glob {
                    globs.push(abs);
                    continue;
                }
                let name = alias.as_ref().or(r.segs.last()).filter(|n| *n != "_");
                if let Some(name) = name {
                    exports.insert(name.clone(), abs);
                }
            }
            self.files[i].exports = exports;
            self.files[i].globs = globs;
        }
    }

    /// The absolute module path a path in `file` names, if it names one in this crate.
    fn absolute(&self, file: usize, r: &Ref) -> Option<Vec<String>> {
        let f = &self.files[file];
        let (first, mut rest) = r.segs.split_first()?;
        let mut base = r.scope.clone();
        match first.as_str() {
            "crate" => base.clear(),
            "self" => {}
            "super" => {
                base.pop()?;
            }
            child if r.scope == f.module && f.parsed.children.contains(child) => {
                base.push(child.to_owned());
            }
            _ => return None,
        }
        while rest.first().is_some_and(|s| s == "super") {
            base.pop()?;
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file an absolute path lands in: its longest module prefix, or, where that module
    /// re-exports the next name, the file that defines it.
    fn resolve(&self, abs: &[String], seen: &mut BTreeSet<(usize, String)>) -> Option<usize> {
        let (len, module) = (0..=abs.len())
            .rev()
            .find_map(|len| self.modules.get(&abs[..len]).map(|&m| (len, m)))?;
        match abs.get(len) {
            None => Some(module),
            Some(name) => Some(self.find_name(module, name, seen).unwrap_or(module)),
        }
    }

    /// The file that defines `name` as seen from module file `module`, through its re-exports.
    fn find_name(
        &self,
        module: usize,
        name: &str,
        seen: &mut BTreeSet<(usize, String)>,
    ) -> Option<usize> {
        if !seen.insert((module, name.to_owned())) {
            return None;
        }
        let f = &self.files[module];
        if f.parsed.defines.contains(name) {
            return Some(module);
        }
        if let Some(abs) = f.exports.get(name) {
            return self.resolve(abs, seen);
        }
        f.globs
            .iter()
            .filter_map(|glob| self.modules.get(glob).copied())
            .find_map(|source| self.find_name(source, name, seen))
    }

    /// The import graph between files (not the crate root), one edge per pair of files.
    fn edges(&self) -> Vec<Edge> {
        let mut first: BTreeMap<(usize, usize), Edge> = BTreeMap::new();
        for from in (0..self.files.len()).filter(|&i| self.is_node(i)) {
            for r in &self.files[from].parsed.refs {
                let Some(abs) = self.absolute(from, r) else {
                    continue;
                };
                let Some(to) = self.resolve(&abs, &mut BTreeSet::new()) else {
                    continue;
                };
                if to != from && self.is_node(to) {
                    let (line, path) = (r.line, r.display());
                    first.entry((from, to)).or_insert(Edge {
                        from,
                        to,
                        line,
                        path,
                    });
                }
            }
        }
        first.into_values().collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The rules

fn layer_failures(layers: &Layers, krate: &Crate, edges: &[Edge]) -> Vec<String> {
    edges
        .iter()
        .filter_map(|e| {
            let (from, to) = (&krate.files[e.from], &krate.files[e.to]);
            let (a, b) = (from.module.first()?, to.module.first()?);
            let (la, lb) = (layers.index(a)?, layers.index(b)?);
            if a == b || lb < la {
                return None;
            }
            let why = if la == lb {
                format!("'{a}' and '{b}' are peers on layer '{}'", layers.name(la))
            } else {
                format!("layer '{}' is above '{}'", layers.name(lb), layers.name(la))
            };
            Some(format!(
                "{}:{}: {a} imports {b} ({why}): {}",
                from.path, e.line, e.path
            ))
        })
        .collect()
}

fn cycle_failures(krate: &Crate, edges: &[Edge]) -> Vec<String> {
    let mut adjacent = vec![Vec::new(); krate.files.len()];
    for e in edges {
        adjacent[e.from].push(e.to);
    }
    strongly_connected(&adjacent)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| describe_loop(krate, edges, &component))
        .collect()
}

fn describe_loop(krate: &Crate, edges: &[Edge], component: &[usize]) -> String {
    let inside: BTreeSet<usize> = component.iter().copied().collect();
    let name = |i: usize| krate.files[i].path.as_str();
    let names: Vec<&str> = inside.iter().map(|&i| name(i)).collect();
    let mut text = format!("files import each other round a loop: {}", names.join(", "));
    let loops: BTreeSet<Vec<usize>> = inside
        .iter()
        .filter_map(|&start| shortest_loop(edges, &inside, start))
        .collect();
    for files in loops {
        let steps: Vec<&str> = files.iter().chain(&files[..1]).map(|&i| name(i)).collect();
        let _ = write!(text, "\n      loop: {}", steps.join(" -> "));
    }
    let mut inner: Vec<&Edge> = edges
        .iter()
        .filter(|e| inside.contains(&e.from) && inside.contains(&e.to))
        .collect();
    inner.sort_by_key(|e| (e.from, e.line, e.to));
    for e in inner {
        let _ = write!(
            text,
            "\n      {}:{} -> {}: {}",
            name(e.from),
            e.line,
            name(e.to),
            e.path
        );
    }
    text
}

/// The shortest loop through `start` within `inside` (breadth first), rotated to begin at its
/// lowest file so that one loop found from several files reads the same.
fn shortest_loop(edges: &[Edge], inside: &BTreeSet<usize>, start: usize) -> Option<Vec<usize>> {
    let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for e in edges
            .iter()
            .filter(|e| e.from == v && inside.contains(&e.to))
        {
            if e.to == start {
                let mut files = vec![v];
                while let Some(&previous) = files.last().and_then(|w| came_from.get(w)) {
                    files.push(previous);
                }
                files.reverse();
                let lowest = files.iter().enumerate().min_by_key(|&(_, &f)| f)?.0;
                files.rotate_left(lowest);
                return Some(files);
            }
            if let Entry::Vacant(slot) = came_from.entry(e.to) {
                slot.insert(v);
                queue.push_back(e.to);
            }
        }
    }
    None
}

const UNSEEN: usize = usize::MAX;

/// Strongly connected components (Tarjan, iterative), each sorted.
fn strongly_connected(adjacent: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adjacent.len();
    let mut tarjan = Tarjan {
        index: vec![UNSEEN; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if tarjan.index[v] == UNSEEN {
            tarjan.run(adjacent, v);
        }
    }
    tarjan.components
}

struct Tarjan {
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan {
    fn enter(&mut self, v: usize) {
        (self.index[v], self.low[v]) = (self.next, self.next);
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
    }

    fn run(&mut self, adjacent: &[Vec<usize>], root: usize) {
        self.enter(root);
        let mut work = vec![(root, 0usize)];
        while let Some(&(v, k)) = work.last() {
            if let Some(&w) = adjacent[v].get(k) {
                let top = work.len() - 1;
                work[top].1 += 1;
                if self.index[w] == UNSEEN {
                    self.enter(w);
                    work.push((w, 0));
                } else if self.on_stack[w] {
                    self.low[v] = self.low[v].min(self.index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                self.low[parent] = self.low[parent].min(self.low[v]);
            }
            if self.low[v] == self.index[v] {
                self.pop_component(v);
            }
        }
    }

    fn pop_component(&mut self, v: usize) {
        let mut component = Vec::new();
        while let Some(w) = self.stack.pop() {
            self.on_stack[w] = false;
            component.push(w);
            if w == v {
                break;
            }
        }
        component.sort_unstable();
        self.components.push(component);
    }
}

/// External crates named outside their homes, once per file and crate.
fn crate_failures(krate: &Crate) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for f in &krate.files {
        let top = f.module.first().map_or("", String::as_str);
        for r in &f.parsed.refs {
            let Some(first) = r.segs.first().filter(|s| !f.parsed.children.contains(*s)) else {
                continue;
            };
            let Some((name, homes)) = CRATE_HOMES.iter().find(|(c, _)| c == first) else {
                continue;
            };
            if homes.contains(&top) || !seen.insert((f.path.as_str(), *name)) {
                continue;
            }
            let homes: Vec<String> = homes.iter().map(|h| format!("src/{h}/")).collect();
            failures.push(format!(
                "{}:{}: names the crate '{name}', allowed only under {}: {}",
                f.path,
                r.line,
                homes.join(", "),
                r.display()
            ));
        }
    }
    failures
}

fn summary(layers: &Layers, krate: &Crate, edges: &[Edge]) -> String {
    let nodes = (0..krate.files.len()).filter(|&i| krate.is_node(i)).count();
    let mut text = format!(
        "architecture: {nodes} files under src/, {} file-to-file imports, {} layers (bottom first):",
        edges.len(),
        layers.layers.len()
    );
    for (i, layer) in layers.layers.iter().enumerate() {
        let modules: Vec<String> = layer
            .modules
            .iter()
            .map(|m| {
                let files = krate
                    .files
                    .iter()
                    .filter(|f| f.module.first() == Some(m))
                    .count();
                format!("{m} ({files} files)")
            })
            .collect();
        let _ = write!(text, "\n  {:>2}. {}", i + 1, modules.join(", "));
    }
    text
}

// ---------------------------------------------------------------------------------------------
// The parser's pieces, on small sources

fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
        .collect()
}

fn edge_pairs(files: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    let krate = Crate::parse(&sources(files));
    let path = |i: usize| krate.files[i].path.clone();
    krate
        .edges()
        .iter()
        .map(|e| (path(e.from), path(e.to)))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn ref_texts(module: &[&str], src: &str) -> Vec<String> {
    let module: Vec<String> = module.iter().map(|s| (*s).to_owned()).collect();
    let parsed = parse_source(&module, src);
    parsed
        .refs
        .iter()
        .map(|r| format!("{}:{}", r.line, r.display()))
        .collect()
}

#[test]
fn stripping_blanks_comments_and_literals_but_keeps_lines_and_lifetimes() {
    let src = "use a; // crate::one\n/* crate::two /* nested */ crate::three */ fn f<'a>(x: &'a str) {\n\
               let s = \"crate::four \\\" crate::five\"; let r = r#\"crate::six \"q\" \"#;\n\
               let c = '{'; let q = '\\''; let b = b'\"'; 'outer: loop {}\n} // end";
    let out = strip_comments_and_literals(src);
    for gone in [
        "one", "two", "three", "nested", "four", "five", "six", "{'", "end",
    ] {
        assert!(!out.contains(gone), "'{gone}' left in:\n{out}");
    }
    for kept in [
        "fn f<'a>(x: &'a str) {",
        "let s =",
        "let r =",
        "'outer: loop {}",
        "let b = b",
    ] {
        assert!(out.contains(kept), "'{kept}' lost from:\n{out}");
    }
    assert_eq!(out.lines().count(), src.lines().count());
    assert_eq!(out.chars().filter(|&c| c == '{').count(), 2, "{out}");
    let marked = "let a = \"x\ny\";\n/* one\ntwo */ crate::here::X";
    assert_eq!(ref_texts(&["m"], marked), ["4:crate::here::X"]);
}

#[test]
fn use_trees_expand_nested_braces_renames_and_globs() {
    let src = "use crate::data::{Dataset, split::{Case, Scheme}, self};\n\
               pub(crate) use super::{a as b, c::*, d::{self as e}};\nuse ::std::io;";
    assert_eq!(
        ref_texts(&["m"], src),
        [
            "1:crate::data::Dataset",
            "1:crate::data::split::Case",
            "1:crate::data::split::Scheme",
            "1:crate::data",
            "2:super::a",
            "2:super::c::*",
            "2:super::d",
            "3:std::io",
        ]
    );
    let parsed = parse_source(&["m".to_owned()], src);
    let kinds: Vec<&Kind> = parsed.refs.iter().map(|r| &r.kind).collect();
    let alias = |a: &str| Some(a.to_owned());
    assert_eq!(
        kinds[0],
        &Kind::Use {
            public: false,
            alias: None,
            glob: false
        }
    );
    assert_eq!(
        kinds[4],
        &Kind::Use {
            public: true,
            alias: alias("b"),
            glob: false
        }
    );
    assert_eq!(
        kinds[5],
        &Kind::Use {
            public: true,
            alias: None,
            glob: true
        }
    );
    assert_eq!(
        kinds[6],
        &Kind::Use {
            public: true,
            alias: alias("e"),
            glob: false
        }
    );
}

#[test]
fn paths_in_code_and_types_are_found() {
    let src = "fn f() -> crate::a::B { crate::eval::evaluate(x); super::Foo::new() }\n\
               impl<T> X for <T as crate::x::Y>::Z { fn g() { std::mem::take(&mut v); self::h() } }\n\
               pub(in crate::up) fn k() {}";
    assert_eq!(
        ref_texts(&["m"], src),
        [
            "1:crate::a::B",
            "1:crate::eval::evaluate",
            "1:super::Foo::new",
            "2:crate::x::Y",
            "2:std::mem::take",
            "2:self::h"
        ]
    );
}

#[test]
fn cfg_test_items_are_removed() {
    let src = "#[cfg(test)]\nmod tests {\n    use crate::x::Y;\n    fn f() { let s = \"}\"; { crate::z::W; } }\n}\n\
               #[cfg(test)] mod more;\n# [ cfg ( test ) ]\n#[allow(dead_code)]\nfn helper() -> [u8; 2] { crate::h::H; [0; 2] }\n\
               #[cfg(not(test))] use crate::kept::A;\nuse crate::kept::B;\n\
               struct S { #[cfg(test)] f: crate::t::T, g: crate::kept::C }\n\
               #[cfg(all(test, not(target_arch = \"wasm32\")))]\npub(crate) mod gated;\n\
               #[cfg(any(test, feature = \"x\"))] use crate::kept::D;\n\
               #[cfg(any(test, all(test, unix)))] use crate::gone::E;\n\
               #[cfg(all(unix, feature = \"y\"))] impl<A, B> Tr for crate::kept::F<A, B> {}";
    assert_eq!(
        ref_texts(&["m"], src),
        [
            "10:crate::kept::A",
            "11:crate::kept::B",
            "12:crate::kept::C",
            "15:crate::kept::D",
            "17:crate::kept::F"
        ]
    );
    let parsed = parse_source(&["m".to_owned()], src);
    assert!(parsed.children.is_empty(), "{:?}", parsed.children);
    assert_eq!(parsed.test_children, ["more", "gated"]);
    assert_eq!(parsed.defines, BTreeSet::from(["S".to_owned()]));
    let generic = "#[cfg(test)] impl<A, B> Tr for X<A, B> where A: Fn() -> B { fn f() { crate::t::T; } }\nuse crate::kept::G;";
    assert_eq!(ref_texts(&["m"], generic), ["2:crate::kept::G"]);
}

#[test]
fn files_of_test_only_modules_are_left_out() {
    let files = [
        (
            "src/a/mod.rs",
            "mod core;\n#[cfg(all(test, unix))]\nmod tests;",
        ),
        ("src/a/core.rs", "pub fn f() {}"),
        ("src/a/tests.rs", "use crate::b::B;\nuse super::core::f;"),
        ("src/a/tests/more.rs", "use crate::b::B;"),
        ("src/b.rs", "pub struct B;\nuse crate::a::core::f;"),
    ];
    let report = check(&sources(&files), "a\nb");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        report.summary.contains("3 files under src/"),
        "{}",
        report.summary
    );
    let report = check(&sources(&files[2..]), "a\nb");
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
}

#[test]
fn paths_resolve_through_super_self_children_and_re_exports() {
    let files = [
        ("src/lib.rs", "pub mod a;\npub mod b;"),
        (
            "src/a/mod.rs",
            "pub mod inner;\nmod hidden;\npub use inner::{Thing, Other as Renamed};\n\
             pub use self::hidden::*;\npub fn face() {}",
        ),
        (
            "src/a/inner.rs",
            "pub mod deep;\npub struct Thing;\npub struct Other;",
        ),
        (
            "src/a/inner/deep.rs",
            "use super::Thing;\nfn d() { super::super::face() }",
        ),
        (
            "src/a/hidden.rs",
            "pub struct Secret;\nfn s() -> self::Secret { Secret }",
        ),
        (
            "src/b.rs",
            "mod kid;\nuse crate::a::{Thing, Renamed};\nfn f() -> crate::a::Secret { crate::a::face(); \
             self::g(); kid::k(); crate::a::inner::deep::d() }\nfn g() {}",
        ),
        ("src/b/kid.rs", "pub fn k() {}"),
    ];
    let expected = [
        ("src/a/mod.rs", "src/a/inner.rs"),
        ("src/a/mod.rs", "src/a/hidden.rs"),
        ("src/a/inner/deep.rs", "src/a/inner.rs"),
        ("src/a/inner/deep.rs", "src/a/mod.rs"),
        ("src/b.rs", "src/a/inner.rs"),
        ("src/b.rs", "src/a/hidden.rs"),
        ("src/b.rs", "src/a/mod.rs"),
        ("src/b.rs", "src/a/inner/deep.rs"),
        ("src/b.rs", "src/b/kid.rs"),
    ];
    assert_eq!(edge_pairs(&files), pairs(&expected));
}

#[test]
fn a_folder_face_re_exporting_its_children_makes_no_loop() {
    let face = "pub mod log;\npub mod split;\npub use log::{EventLog, RawEvent};\npub fn util() {}";
    let files = [
        ("src/data/mod.rs", face),
        (
            "src/data/log.rs",
            "pub struct EventLog;\npub struct RawEvent;",
        ),
        (
            "src/data/split.rs",
            "use crate::data::EventLog;\nfn f(_: super::RawEvent) { super::util() }",
        ),
    ];
    let expected = [
        ("src/data/mod.rs", "src/data/log.rs"),
        ("src/data/split.rs", "src/data/log.rs"),
        ("src/data/split.rs", "src/data/mod.rs"),
    ];
    assert_eq!(edge_pairs(&files), pairs(&expected));
    let glob = "pub mod log;\npub mod split;\npub use log::*;\npub fn util() {}";
    assert_eq!(
        edge_pairs(&[("src/data/mod.rs", glob), files[1], files[2]]),
        pairs(&expected)
    );
    let report = check(&sources(&files), "data: listening data");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

#[test]
fn strongly_connected_components_and_their_shortest_loops() {
    let graph = vec![
        vec![1],
        vec![2],
        vec![0, 3],
        vec![4],
        vec![3],
        vec![],
        vec![6],
    ];
    let mut components = strongly_connected(&graph);
    components.sort();
    assert_eq!(
        components,
        vec![vec![0, 1, 2], vec![3, 4], vec![5], vec![6]]
    );
    let edge = |from: usize, to: usize| Edge {
        from,
        to,
        line: 1,
        path: String::new(),
    };
    let edges = [
        edge(0, 1),
        edge(1, 2),
        edge(2, 0),
        edge(1, 0),
        edge(2, 3),
        edge(3, 2),
    ];
    let inside = BTreeSet::from([0, 1, 2, 3]);
    assert_eq!(shortest_loop(&edges, &inside, 0), Some(vec![0, 1]));
    assert_eq!(shortest_loop(&edges, &inside, 2), Some(vec![2, 3]));
    assert_eq!(
        shortest_loop(&edges, &BTreeSet::from([0, 1, 2]), 2),
        Some(vec![0, 1, 2])
    );
    assert_eq!(shortest_loop(&edges, &BTreeSet::from([0, 2]), 0), None);
    let adjacent: Vec<Vec<usize>> = (0..4)
        .map(|v| edges.iter().filter(|e| e.from == v).map(|e| e.to).collect())
        .collect();
    assert_eq!(strongly_connected(&adjacent), vec![vec![0, 1, 2, 3]]);
}

#[test]
fn the_rules_report_layers_loops_crates_and_the_map() {
    let files = [
        ("src/a.rs", "use crate::d::Top;\nfn f() {}"),
        ("src/b.rs", "fn f() -> crate::c::X { todo!() }"),
        ("src/c.rs", "pub struct X;\nuse crate::a::f;"),
        (
            "src/d.rs",
            "pub struct Top;\nuse crate::a::f;\nuse leptos::prelude::*;",
        ),
        ("src/e/mod.rs", "mod x;\nmod y;"),
        ("src/e/x.rs", "use super::y::Y;\npub struct X;"),
        (
            "src/e/y.rs",
            "pub struct Y;\nfn g() -> super::x::X { todo!() }",
        ),
        (
            "src/web.rs",
            "use leptos::prelude::*;\nfn f() { clap::Parser::parse(); }",
        ),
    ];
    let map = "# comment\n\na: bottom\nb c: peers\nd e: top\nweb\nghost: nowhere\nb";
    let report = check(&sources(&files), map);
    let expected = [
        "src/layers.txt:7: module 'ghost' does not exist (no src/ghost/, no src/ghost.rs)",
        "src/layers.txt:8: module 'b' is listed again (first on line 4)",
        "src/a.rs:1: a imports d (layer 'd e' is above 'a'): crate::d::Top",
        "src/b.rs:1: b imports c ('b' and 'c' are peers on layer 'b c'): crate::c::X",
        "files import each other round a loop: src/a.rs, src/d.rs\n      \
         loop: src/a.rs -> src/d.rs -> src/a.rs\n      \
         src/a.rs:1 -> src/d.rs: crate::d::Top\n      src/d.rs:2 -> src/a.rs: crate::a::f",
        "files import each other round a loop: src/e/x.rs, src/e/y.rs\n      \
         loop: src/e/x.rs -> src/e/y.rs -> src/e/x.rs\n      \
         src/e/x.rs:1 -> src/e/y.rs: super::y::Y\n      src/e/y.rs:2 -> src/e/x.rs: super::x::X",
        "src/d.rs:3: names the crate 'leptos', allowed only under src/web/: leptos::prelude::*",
        "src/web.rs:2: names the crate 'clap', allowed only under src/cli/: clap::Parser::parse",
    ];
    assert_eq!(report.failures, expected);
    let missing = check(&sources(&files), "a\nb c\nd e\nghost");
    assert!(
        missing
            .failures
            .contains(&"module 'web' (src/web.rs) is not in src/layers.txt".to_owned())
    );
    assert!(
        report.summary.contains("8 files under src/"),
        "{}",
        report.summary
    );
}
