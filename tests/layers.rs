//! The engine's layers: every module of `src/` belongs to a row of the table below (a root
//! file by its name, a folder by its name), imports only modules of its own layer or of layers
//! below it, and no modules import each other in a cycle. A new root file or folder gets a
//! row; a module that needs one above it is in the wrong layer (or the code it needs is).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. Root files name themselves; folders name everything under them.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "awake",
            "checksum",
            "control",
            "credentials",
            "error",
            "input",
            "limiter",
            "link",
            "multipart",
            "ranges",
            "rate",
            "retry",
            "secret",
            "size",
        ],
    ),
    ("net", &["net"]),
    ("tdp and storage", &["tdp", "storage"]),
    ("store", &["store"]),
    ("job", &["job"]),
    ("session", &["session"]),
];

/// Every module under `src`, as its path without `.rs` (`job/run`; a folder's `mod.rs` is the
/// folder, `job`), with its text outside its unit tests.
fn modules(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                walk(&path, &format!("{prefix}{name}/"), out);
                continue;
            }
            let Some(stem) = name.strip_suffix(".rs") else {
                continue;
            };
            let id = match stem {
                "lib" | "main" if prefix.is_empty() => continue,
                // A module's unit tests in their own file are its tests, not a module.
                "tests" if !prefix.is_empty() => continue,
                "mod" => prefix.trim_end_matches('/').to_string(),
                _ => format!("{prefix}{stem}"),
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            out.insert(id, code.to_string());
        }
    }
    let mut out = BTreeMap::new();
    walk(src, "", &mut out);
    out
}

/// The known module a path names: its longest prefix that is a module (`job/run/JobConfig` →
/// `job/run`), or none for an item of the crate root.
fn resolve(known: &BTreeMap<String, String>, segments: &[&str]) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("/"))
        .find(|id| known.contains_key(id))
}

/// The segments of a path starting at `rest` (`a::b::{c::C, d}` → `[a, b]` and the group
/// `[c::C, d]`).
fn path_at(rest: &str) -> (Vec<&str>, Vec<&str>) {
    let mut segments = Vec::new();
    let mut at = rest;
    loop {
        if let Some(group) = at.strip_prefix('{') {
            let items = group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .collect();
            return (segments, items);
        }
        let end = at
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(at.len());
        if end == 0 {
            return (segments, Vec::new());
        }
        segments.push(&at[..end]);
        match at[end..].strip_prefix("::") {
            Some(next) => at = next,
            None => return (segments, Vec::new()),
        }
    }
}

/// Module → the modules of the crate it names (`crate::x::y`, `super::x`, and in a folder's
/// `mod.rs` its own children by name), outside comments and its tests.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let known = modules(src);
    let mut graph = BTreeMap::new();
    for (id, code) in &known {
        // `job/run` is the module `job::run`: its `super` is `job`; a folder's mod.rs is the
        // folder's module, so in `job/mod.rs` `super` is the crate root.
        let own: Vec<&str> = id.split('/').collect();
        let is_folder = src.join(id).join("mod.rs").exists();
        let mut deps = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            let mut starts: Vec<(usize, Vec<&str>)> = Vec::new();
            for (i, _) in line.match_indices("crate::") {
                let before = line[..i].chars().last();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                    continue;
                }
                starts.push((i + "crate::".len(), Vec::new()));
            }
            for (i, _) in line.match_indices("super::") {
                if line[..i].ends_with("::") {
                    continue; // `super::super::` is counted from its first `super`
                }
                let mut base = own[..own.len() - 1].to_vec();
                let mut at = i + "super::".len();
                while line[at..].starts_with("super::") {
                    base.pop();
                    at += "super::".len();
                }
                starts.push((at, base));
            }
            if is_folder {
                // A folder's re-exports of its children (`pub use run::JobConfig;`).
                let trimmed = line.trim_start();
                for lead in ["pub use ", "pub(crate) use ", "use "] {
                    if let Some(rest) = trimmed.strip_prefix(lead) {
                        starts.push((line.len() - rest.len(), own.clone()));
                        break;
                    }
                }
            }
            for (at, base) in starts {
                let (segments, group) = path_at(&line[at..]);
                let full: Vec<&str> = base.iter().copied().chain(segments).collect();
                let mut named = vec![resolve(&known, &full)];
                for item in group {
                    let with: Vec<&str> = full.iter().copied().chain(item.split("::")).collect();
                    named.push(resolve(&known, &with));
                }
                for dep in named.into_iter().flatten() {
                    if dep != *id {
                        deps.insert(dep);
                    }
                }
            }
        }
        graph.insert(id.clone(), deps);
    }
    graph
}

/// The row a module belongs to: its folder's, or a root file's own.
fn row_of(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// What breaks the rule: modules not in the table, imports of a higher layer, cycles.
fn violations(
    graph: &BTreeMap<String, BTreeSet<String>>,
    layers: &[(&str, &[&str])],
) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, (_, rows))| rows.iter().map(move |r| (*r, i)))
        .collect();
    let mut found = Vec::new();
    for (m, deps) in graph {
        let Some(&mine) = layer_of.get(row_of(m)) else {
            found.push(format!(
                "{m} is in no layer: give {} a row in the table",
                row_of(m)
            ));
            continue;
        };
        for d in deps.iter().filter(|d| graph.contains_key(*d)) {
            match layer_of.get(row_of(d)) {
                Some(&theirs) if theirs > mine => found.push(format!(
                    "{m} ({}) imports {d} ({}), a layer above it",
                    layers[mine].0, layers[theirs].0
                )),
                _ => {}
            }
        }
    }
    found.extend(
        cycles(graph)
            .into_iter()
            .map(|c| format!("a cycle: {}", c.join(" -> "))),
    );
    found
}

/// Each set of modules that import one another in a circle (Tarjan), as one path round it.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for d in &w.graph[v] {
            let Some((d, _)) = w.graph.get_key_value(d) else {
                continue;
            };
            if !w.index.contains_key(d.as_str()) {
                visit(w, d);
                let l = w.low[d.as_str()].min(w.low[v]);
                w.low.insert(v, l);
            } else if w.stack.contains(&d.as_str()) {
                let l = w.index[d.as_str()].min(w.low[v]);
                w.low.insert(v, l);
            }
        }
        if w.low[v] == w.index[v] {
            let at = w.stack.iter().rposition(|x| *x == v).unwrap();
            let group: Vec<String> = w.stack.drain(at..).map(str::to_string).collect();
            if group.len() > 1 {
                let mut path = group.clone();
                path.sort();
                path.push(path[0].clone());
                w.found.push(path);
            }
        }
    }
    let mut w = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found
}

#[test]
fn the_engine_keeps_its_layers_and_has_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&src);
    assert!(graph.len() > 30, "read {} modules", graph.len());
    let found = violations(&graph, LAYERS);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    eprintln!("{} modules, {edges} imports, no cycles", graph.len());
}

#[test]
fn the_check_finds_a_planted_cycle_and_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "mod a;\nmod low;\nmod top;\n");
    write(
        "a.rs",
        "// crate::top in a comment is no import\npub struct A;\n",
    );
    write("low/mod.rs", "mod b;\nmod c;\nmod d;\npub use b::B;\n");
    // A cycle inside a folder, through `super::` and a path to an item.
    write("low/b.rs", "use super::c::C;\npub struct B;\n");
    write("low/c.rs", "pub struct C(crate::low::b::B);\n");
    write(
        "low/d.rs",
        "use crate::{a::A, top::t::T};\n#[cfg(test)]\nmod tests {\n    use crate::top::T;\n}\n",
    );
    write("top/mod.rs", "pub mod t;\n");
    write("top/t.rs", "pub struct T(crate::low::B);\n");
    let table: &[(&str, &[&str])] = &[("leaves", &["a"]), ("low", &["low"]), ("high", &["top"])];
    let graph = imports(dir.path());
    assert_eq!(
        graph["low/d"],
        BTreeSet::from(["a".to_string(), "top/t".to_string()])
    );
    let found = violations(&graph, table);
    assert_eq!(
        found,
        vec![
            "low/d (low) imports top/t (high), a layer above it".to_string(),
            "a cycle: low/b -> low/c -> low/b".to_string(),
        ]
    );
    // A root file or a folder the table does not name is caught too.
    write("e.rs", "pub struct E;\n");
    write("odd/mod.rs", "pub struct O;\n");
    let found = violations(&imports(dir.path()), table);
    assert!(found.contains(&"e is in no layer: give e a row in the table".to_string()));
    assert!(found.contains(&"odd is in no layer: give odd a row in the table".to_string()));
}
