//! The module graph, read from the sources: which module's code names which other
//! module (`use crate::…`, `crate::…` and `super::…` paths, outside comments and unit
//! tests). It has no circles, between files or between top-level modules, and the layers
//! the README names only ever point down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may name a module of its own layer or below.
const LAYERS: [&str; 6] = ["policy", "config", "store", "token", "signin", "http"];

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn the_module_graph_has_no_circles_and_no_upward_arrows() {
    let files = module_files();
    assert!(files.len() > 50, "the sources were found: {}", files.len());
    let graph = file_graph(&files);
    let circles = circles_of(&graph);
    assert!(
        circles.is_empty(),
        "modules that name each other: {circles:?}"
    );

    let top = top_level(&graph);
    let circles = circles_of(&top);
    assert!(
        circles.is_empty(),
        "top-level modules that name each other: {circles:?}"
    );

    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let upward: Vec<String> = top
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(from, to)| matches!((rank(from), rank(to)), (Some(a), Some(b)) if b > a))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(upward.is_empty(), "arrows up the layers: {upward:?}");
}

#[test]
fn the_reader_sees_what_the_sources_name() {
    let modules: BTreeSet<String> = ["a", "a::b", "a::b::c", "d"].map(str::to_owned).into();
    let text = "use crate::a::b::{self, c::Thing};\n// use crate::d;\nfn f() { super::c::g(); }\n";
    let named = named_modules(text, "a::b::e", &modules);
    assert_eq!(named, ["a::b", "a::b::c"].map(str::to_owned).into());
    let named = named_modules("let x = crate::d::y;", "a", &modules);
    assert_eq!(named, ["d"].map(str::to_owned).into());
    let graph: Graph = [("x", "y"), ("y", "z"), ("z", "x"), ("z", "w")]
        .iter()
        .fold(Graph::new(), |mut g, (a, b)| {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g
        });
    assert_eq!(circles_of(&graph), vec![vec!["x", "y", "z"]]);
}

/// Every module of the library, by path (`http::caller`), with its file.
fn module_files() -> BTreeMap<String, PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] || parts.is_empty() {
                continue;
            }
            files.insert(parts.join("::"), path);
        }
    }
    files
}

fn file_graph(files: &BTreeMap<String, PathBuf>) -> Graph {
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, path)| {
            let text = std::fs::read_to_string(path).unwrap();
            let mut named = named_modules(&text, module, &modules);
            named.remove(module);
            (module.clone(), named)
        })
        .collect()
}

/// The modules `text`, the source of `module`, names, outside comments and its unit tests.
fn named_modules(text: &str, module: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    // `super` of module `a::b` is `a`, whether its file is `a/b.rs` or `a/b/mod.rs`.
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = module.split("::").collect();
        parts.pop();
        parts
    };
    let mut named = BTreeSet::new();
    for (anchor, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut paths = Vec::new();
            parse_tree(&mut rest.chars().peekable(), Vec::new(), &mut paths);
            for path in paths {
                let full: Vec<&str> = base
                    .iter()
                    .copied()
                    .chain(path.iter().map(String::as_str))
                    .collect();
                if let Some(found) = (1..=full.len())
                    .rev()
                    .map(|n| full[..n].join("::"))
                    .find(|m| modules.contains(m))
                {
                    named.insert(found);
                }
            }
        }
    }
    named
}

/// Reads one path tree (`a::b`, `a::{b, c::d}`, `a::{self, b}`) into its paths.
fn parse_tree(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    prefix: Vec<String>,
    paths: &mut Vec<Vec<String>>,
) {
    let mut path = prefix;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            loop {
                parse_tree(chars, path.clone(), paths);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                match chars.next() {
                    Some(',') => continue,
                    _ => return,
                }
            }
        }
        let mut ident = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_alphanumeric() || c == '_' {
                ident.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if ident.is_empty() || ident == "self" {
            paths.push(path);
            skip_to_separator(chars);
            return;
        }
        path.push(ident);
        let mut ahead = chars.clone();
        if ahead.next() == Some(':') && ahead.next() == Some(':') {
            chars.next();
            chars.next();
        } else {
            paths.push(path);
            skip_to_separator(chars);
            return;
        }
    }
}

/// Skips an `as name` rename up to the next `,` or `}` of a brace group, or stops at once.
fn skip_to_separator(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    let mut ahead = chars.clone();
    let mut word = String::new();
    while ahead.peek().is_some_and(|c| c.is_whitespace()) {
        ahead.next();
    }
    while let Some(&c) = ahead.peek() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            ahead.next();
        } else {
            break;
        }
    }
    if word == "as" {
        while chars
            .peek()
            .is_some_and(|c| *c != ',' && *c != '}' && *c != ';')
        {
            chars.next();
        }
    }
}

fn top_level(graph: &Graph) -> Graph {
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut out = Graph::new();
    for (from, tos) in graph {
        for to in tos {
            if top(from) != top(to) {
                out.entry(top(from)).or_default().insert(top(to));
            }
        }
    }
    out
}

/// The strongly connected components of more than one module (Tarjan), each sorted.
fn circles_of(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}
