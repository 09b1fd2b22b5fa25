//! Tests that read the crate's own source and hold claims docs/architecture.md makes about
//! it: no two modules import each other (directly or round a loop), and no `unsafe` and no
//! libc function call outside `src/sys.rs`.
//!
//! The source is read as Rust tokens (proc-macro2's tokenizer), so comments, doc comments
//! and string literals never count, and paths inside macro calls (`tokio::join!`,
//! `assert_eq!`) do. Code under `#[cfg(test)]` is left out: a test may look at its module
//! from anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// One `.rs` file of the crate: its module path (`crate::local::netlink`) and tokens.
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    tokens: TokenStream,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under src/ but `main.rs` (the binary: a crate of its own).
fn source_files() -> Vec<SourceFile> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = src_dir();
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths
        .into_iter()
        .filter(|p| p != &root.join("main.rs"))
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut module = vec!["crate".to_string()];
            module.extend(rel.iter().map(|c| c.to_string_lossy().into_owned()));
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let tokens = TokenStream::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            SourceFile {
                path,
                module,
                tokens,
            }
        })
        .collect()
}

fn is_ident(t: Option<&TokenTree>, word: &str) -> bool {
    matches!(t, Some(TokenTree::Ident(i)) if i == word)
}

fn is_punct(t: Option<&TokenTree>, c: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// `#[cfg(test)]` at `tokens[i]` (the `#`)?
fn cfg_test_at(tokens: &[TokenTree], i: usize) -> bool {
    if !is_punct(tokens.get(i), '#') {
        return false;
    }
    match tokens.get(i + 1) {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket => {
            let inner: String = g.stream().to_string().split_whitespace().collect();
            inner == "cfg(test)"
        }
        _ => false,
    }
}

/// The index just past the item that starts at `i`: its first `;` or `{…}` at this level.
fn item_end(tokens: &[TokenTree], mut i: usize) -> usize {
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Punct(p) if p.as_char() == ';' => return i + 1,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// A path's segments from `tokens[i]` on (`a :: b :: {c, d :: e}` gives `a::b::c` and
/// `a::b::d::e`), each with `prefix` before it; returns the index past the path.
fn read_path(
    tokens: &[TokenTree],
    mut i: usize,
    prefix: &[String],
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut segs = prefix.to_vec();
    loop {
        match tokens.get(i) {
            Some(TokenTree::Ident(id)) => {
                segs.push(id.to_string());
                i += 1;
            }
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                // A use tree's list: every entry, with this path before it.
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                let mut j = 0;
                while j < inner.len() {
                    j = read_path(&inner, j, &segs, out);
                    while j < inner.len() && !is_punct(inner.get(j), ',') {
                        j += 1;
                    }
                    j += 1;
                }
                return i + 1;
            }
            Some(TokenTree::Punct(p)) if p.as_char() == '*' => {
                i += 1;
                break;
            }
            _ => break,
        }
        if is_punct(tokens.get(i), ':') && is_punct(tokens.get(i + 1), ':') {
            i += 2;
        } else {
            break;
        }
    }
    out.push(segs);
    i
}

/// Every path starting with `crate`, `super` or `self` in `tokens`, outside `#[cfg(test)]`
/// items, made absolute from `module` (the inline module the tokens are in).
fn paths_in(tokens: &[TokenTree], module: &[String], out: &mut Vec<Vec<String>>) {
    let mut i = 0;
    while i < tokens.len() {
        if cfg_test_at(tokens, i) {
            i = item_end(tokens, i + 2);
            continue;
        }
        // An inline module: its `super` and `self` are its own.
        if is_ident(tokens.get(i), "mod")
            && let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(body))) =
                (tokens.get(i + 1), tokens.get(i + 2))
            && body.delimiter() == Delimiter::Brace
        {
            let mut inner_module = module.to_vec();
            inner_module.push(name.to_string());
            let inner: Vec<TokenTree> = body.stream().into_iter().collect();
            paths_in(&inner, &inner_module, out);
            i += 3;
            continue;
        }
        let starts_path = ["crate", "super", "self"]
            .iter()
            .any(|w| is_ident(tokens.get(i), w))
            && is_punct(tokens.get(i + 1), ':')
            && !(i > 0 && is_punct(tokens.get(i - 1), ':'));
        if starts_path {
            let mut found = Vec::new();
            let end = read_path(tokens, i, &[], &mut found);
            for p in found {
                if let Some(abs) = absolute(&p, module) {
                    out.push(abs);
                }
            }
            i = end;
            continue;
        }
        if let TokenTree::Group(g) = &tokens[i] {
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            paths_in(&inner, module, out);
        }
        i += 1;
    }
}

/// `path` (starting `crate`, `super` or `self`) as seen from `module`, from `crate` on.
fn absolute(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let mut base = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => return Some(path.to_vec()),
        Some("self") => rest = &rest[1..],
        _ => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Files declared `#[cfg(test)] mod NAME;` (test helpers and test modules of their own).
fn test_only_modules(files: &[SourceFile]) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for f in files {
        let tokens: Vec<TokenTree> = f.tokens.clone().into_iter().collect();
        for i in 0..tokens.len() {
            if cfg_test_at(&tokens, i)
                && is_ident(tokens.get(i + 2), "mod")
                && let Some(TokenTree::Ident(name)) = tokens.get(i + 3)
                && is_punct(tokens.get(i + 4), ';')
            {
                let mut m = f.module.clone();
                m.push(name.to_string());
                out.insert(m);
            }
        }
    }
    out
}

/// An edge between two sibling modules: `from` (under `level`) uses something in `to`,
/// first seen in `file` as `seen`.
#[derive(Debug, Clone)]
struct Edge {
    file: PathBuf,
    seen: String,
}

/// For each level (a module), the uses between its children: a module uses a sibling when
/// any file under it names a path into the sibling. A module's use of its parent, and a
/// parent's of its child, are not between siblings and do not count.
fn sibling_graph() -> BTreeMap<Vec<String>, BTreeMap<(String, String), Edge>> {
    let files = source_files();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let tests = test_only_modules(&files);
    let mut levels: BTreeMap<Vec<String>, BTreeMap<(String, String), Edge>> = BTreeMap::new();
    for f in files.iter().filter(|f| !tests.contains(&f.module)) {
        let tokens: Vec<TokenTree> = f.tokens.clone().into_iter().collect();
        let mut paths = Vec::new();
        paths_in(&tokens, &f.module, &mut paths);
        for p in paths {
            // The module the path leads into: its longest prefix that is a file module.
            let Some(to) = (1..=p.len())
                .rev()
                .map(|n| p[..n].to_vec())
                .find(|m| modules.contains(m))
            else {
                continue;
            };
            let common = f.module.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == f.module.len() || common == to.len() {
                continue;
            }
            levels
                .entry(to[..common].to_vec())
                .or_default()
                .entry((f.module[common].clone(), to[common].clone()))
                .or_insert_with(|| Edge {
                    file: f.path.strip_prefix(src_dir()).unwrap().to_path_buf(),
                    seen: p.join("::"),
                });
        }
    }
    levels
}

/// The strongly connected sets of two or more nodes: the nodes that reach each other.
fn cycles(edges: &BTreeMap<(String, String), Edge>) -> Vec<BTreeSet<String>> {
    let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for (a, b) in edges.keys() {
                if *a == n && seen.insert(b.clone()) {
                    todo.push(b.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for n in &nodes {
        let set: BTreeSet<String> = nodes
            .iter()
            .filter(|m| reached[*n].contains(**m) && reached[**m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if set.len() > 1 && !out.contains(&set) {
            out.push(set);
        }
    }
    out
}

#[test]
fn no_module_imports_in_a_cycle() {
    let mut found = Vec::new();
    for (level, edges) in sibling_graph() {
        let level_name = level.join("::");
        for set in cycles(&edges) {
            let mut lines = vec![format!("under {level_name}: {set:?}")];
            for ((a, b), e) in &edges {
                if set.contains(a) && set.contains(b) {
                    lines.push(format!(
                        "  {a} -> {b}: {} names {}",
                        e.file.display(),
                        e.seen
                    ));
                }
            }
            found.push(lines.join("\n"));
        }
    }
    assert!(
        found.is_empty(),
        "modules that import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_loop_of_uses_is_a_cycle_and_a_chain_is_not() {
    let edges = |pairs: &[(&str, &str)]| -> BTreeMap<(String, String), Edge> {
        pairs
            .iter()
            .map(|(a, b)| {
                let e = Edge {
                    file: PathBuf::from("x.rs"),
                    seen: String::new(),
                };
                ((a.to_string(), b.to_string()), e)
            })
            .collect()
    };
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert!(cycles(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    assert_eq!(
        cycles(&edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        [set(&["a", "b", "c"])]
    );
}

#[test]
fn the_cycle_check_sees_paths_as_rust_does() {
    let tokens: Vec<TokenTree> = TokenStream::from_str(
        "use super::{a::X, b::{self, Y}}; // crate::comment::Z
         fn f() { tokio::join!(crate::c::go(), \"crate::string\"); self::d::e(); }
         #[cfg(test)] mod tests { use crate::tested::T; }
         mod inner { use super::super::up::U; }",
    )
    .unwrap()
    .into_iter()
    .collect();
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    let mut paths = Vec::new();
    paths_in(&tokens, &m("crate::x::y"), &mut paths);
    let paths: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::x::a::X",
            "crate::x::b::self",
            "crate::x::b::Y",
            "crate::c::go",
            "crate::x::y::d::e",
            "crate::x::up::U",
        ]
    );
}

/// Files other than sys.rs, with what in them is `unsafe` or calls a libc function.
#[test]
fn no_unsafe_and_no_libc_call_outside_sys() {
    let mut found = Vec::new();
    for f in source_files() {
        if f.module == ["crate", "sys"] {
            continue;
        }
        let tokens: Vec<TokenTree> = f.tokens.clone().into_iter().collect();
        scan_unsafe(&tokens, &f.path, &mut found);
    }
    assert!(
        found.is_empty(),
        "outside src/sys.rs (docs/architecture.md: every libc call is there):\n{}",
        found.join("\n")
    );
}

/// `unsafe`, `allow(unsafe_code)`, or `libc::name(` (a call; libc's constants and types are
/// plain values) anywhere in `tokens`, tests included.
fn scan_unsafe(tokens: &[TokenTree], file: &Path, found: &mut Vec<String>) {
    for (i, t) in tokens.iter().enumerate() {
        match t {
            TokenTree::Ident(id) if id == "unsafe" || id == "unsafe_code" => {
                found.push(format!("{}: `{id}`", file.display()));
            }
            TokenTree::Ident(id)
                if id == "libc"
                    && is_punct(tokens.get(i + 1), ':')
                    && matches!(tokens.get(i + 4), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis) =>
            {
                found.push(format!(
                    "{}: libc::{} called",
                    file.display(),
                    tokens[i + 3]
                ));
            }
            TokenTree::Group(g) => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                scan_unsafe(&inner, file, found);
            }
            _ => {}
        }
    }
}
