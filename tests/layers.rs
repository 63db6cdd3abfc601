//! The engine's layers: every module of `src/` is in the table below, imports only modules
//! of its own layer or of layers below it, and no modules import each other in a cycle.
//! A new module gets a row; a module that needs one above it is in the wrong layer (or the
//! code it needs is).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "awake",
            "checksum",
            "control",
            "credentials",
            "input",
            "limiter",
            "link",
            "multipart",
            "paths",
            "ranges",
            "rate",
            "retry",
            "secret",
            "size",
            "trust",
            "windows_fs",
        ],
    ),
    (
        "net",
        &[
            "connect",
            "http_error",
            "error",
            "events",
            "lifecycle",
            "network",
        ],
    ),
    (
        "tdp and storage",
        &["tdp", "search", "files", "s3", "renewal", "doctor"],
    ),
    (
        "store",
        &[
            "durable",
            "group_sync",
            "lock",
            "naming",
            "shard",
            "config",
            "manifest",
            "sink",
            "state",
        ],
    ),
    (
        "job",
        &[
            "report",
            "context",
            "transfer",
            "sync",
            "job",
            "expiry",
            "folder_status",
            "preview",
        ],
    ),
];

/// Module → the modules of the crate it names (`crate::x`), outside comments and its tests.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".rs"))
        else {
            continue;
        };
        if name == "lib" || name == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let mut deps = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let dep: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !dep.is_empty() && dep != name {
                    deps.insert(dep);
                }
            }
        }
        graph.insert(name.to_string(), deps);
    }
    graph
}

/// What breaks the rule: modules not in the table, imports of a higher layer, cycles.
fn violations(
    graph: &BTreeMap<String, BTreeSet<String>>,
    layers: &[(&str, &[&str])],
) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, (_, mods))| mods.iter().map(move |m| (*m, i)))
        .collect();
    let mut found = Vec::new();
    for (m, deps) in graph {
        let Some(&mine) = layer_of.get(m.as_str()) else {
            found.push(format!("{m} is in no layer: give it a row in the table"));
            continue;
        };
        for d in deps.iter().filter(|d| graph.contains_key(*d)) {
            match layer_of.get(d.as_str()) {
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
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("lib.rs", "mod a;\nmod b;\nmod c;\nmod top;\n");
    write(
        "a.rs",
        "use crate::b::B;\n// crate::top in a comment is no import\npub struct A;\n",
    );
    write("b.rs", "pub struct B(crate::a::A);\n");
    write(
        "c.rs",
        "use crate::top::T;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
    );
    write("top.rs", "pub struct T;\n");
    let table: &[(&str, &[&str])] = &[("low", &["a", "b", "c"]), ("high", &["top"])];
    let found = violations(&imports(dir.path()), table);
    assert_eq!(
        found,
        vec![
            "c (low) imports top (high), a layer above it".to_string(),
            "a cycle: a -> b -> a".to_string(),
        ]
    );
    // A module the table does not name is caught too.
    write("d.rs", "pub struct D;\n");
    let found = violations(&imports(dir.path()), table);
    assert!(found.contains(&"d is in no layer: give it a row in the table".to_string()));
}
