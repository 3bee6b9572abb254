//! The domain crate's modules import each other without a cycle (issue 11).
//!
//! Layers, bottom up: values (ids, date, name, text, key, target, error, ...)
//! ← each record kind's state and command structs ← the enums over all kinds
//! (event, command), snapshot, decision ← each kind's rules, fold and fields
//! ← the dispatch (decide, correction, evolve). A module that imports one
//! above it closes a cycle, and this test names it.
//!
//! The graph has one node per source file (module); an edge for every
//! `crate::…` / `super::…` path, resolved to the longest module prefix, and
//! from each module to the modules it declares. Test-only modules (`tests`,
//! `testing`) and `lib.rs` (the facade) are left out; a non-test module that
//! imports through the facade (`crate::Snapshot`) is refused too, since the
//! facade depends on everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Module = Vec<String>;
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// Marks an import that resolves to the crate root rather than a module.
const ROOT: &str = "<crate root>";

fn read_modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name")
            .to_owned();
        if name == "tests" || name == "testing" {
            continue;
        }
        if path.is_dir() {
            let mut sub = prefix.to_vec();
            sub.push(name);
            read_modules(&path, &sub, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = prefix.to_vec();
            if name != "mod" && name != "lib" {
                module.push(name.clone());
            }
            if name == "lib" {
                continue;
            }
            let text = fs::read_to_string(&path).expect("read source");
            out.insert(module, text);
        }
    }
}

/// Source without comments and without the trailing `#[cfg(test)] mod …`.
fn code_of(text: &str) -> String {
    let mut code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    // The first `#[cfg(test)]` that opens a module (others mark items, e.g. in a macro).
    let test_module = code
        .match_indices("#[cfg(test)]")
        .find(|(at, marker)| code[at + marker.len()..].trim_start().starts_with("mod "));
    if let Some((at, _)) = test_module {
        code.truncate(at);
    }
    code
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (whitespace removed).
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let (prefix, body) = (&tree[..open], &tree[open + 1..tree.len() - 1]);
    let (mut items, mut depth, mut current) = (Vec::new(), 0, String::new());
    for ch in body.chars() {
        match ch {
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            '{' | '}' => {
                depth += if ch == '{' { 1 } else { -1 };
                current.push(ch);
            }
            _ => current.push(ch),
        }
    }
    items.push(current);
    items
        .iter()
        .filter(|i| !i.is_empty())
        .flat_map(|i| expand(i))
        .map(|i| format!("{prefix}{i}"))
        .collect()
}

/// Every `crate::…` / `super::…` path in `code`.
fn paths_in(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    // `use` trees, which may group items in braces.
    for statement in code.split(';') {
        let s = statement.trim_start();
        let s = s.strip_prefix("pub(crate) ").unwrap_or(s);
        let s = s.strip_prefix("pub ").unwrap_or(s);
        if let Some(tree) = s.strip_prefix("use ")
            && (tree.starts_with("crate::") || tree.starts_with("super::"))
        {
            let tree: String = tree
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(" as ", "@")
                .replace(' ', "");
            let tree: String = strip_renames(&tree);
            paths.extend(expand(&tree));
        }
    }
    // Paths written inline (`crate::text::check(…)`).
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(path);
        }
    }
    paths
}

/// Drops `@alias` (from `x as alias`) up to the next separator.
fn strip_renames(tree: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for ch in tree.chars() {
        if ch == '@' {
            skipping = true;
        } else if skipping && (ch == ',' || ch == '}') {
            skipping = false;
            out.push(ch);
        } else if !skipping {
            out.push(ch);
        }
    }
    out
}

fn graph_of(modules: &BTreeMap<Module, String>) -> Graph {
    let mut graph: Graph = modules
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for module in modules.keys() {
        if module.len() > 1 {
            let parent = module[..module.len() - 1].to_vec();
            if let Some(children) = graph.get_mut(&parent) {
                children.insert(module.clone());
            }
        }
    }
    for (module, text) in modules {
        for path in paths_in(&code_of(text)) {
            let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let mut base: Vec<String> = Vec::new();
            if segments.first() == Some(&"crate") {
                segments.remove(0);
            } else {
                base = module.clone();
                while segments.first() == Some(&"super") {
                    segments.remove(0);
                    base.pop();
                }
            }
            let target = (1..=segments.len())
                .rev()
                .map(|k| {
                    let mut m = base.clone();
                    m.extend(segments[..k].iter().map(|s| (*s).to_owned()));
                    m
                })
                .find(|m| modules.contains_key(m))
                .unwrap_or_else(|| {
                    if base.is_empty() {
                        vec![ROOT.to_owned()]
                    } else {
                        base.clone()
                    }
                });
            if &target != module {
                graph.get_mut(module).expect("module").insert(target);
            }
        }
    }
    graph
}

/// The first import cycle found, as a list of modules (first = last).
fn find_cycle(graph: &Graph) -> Option<Vec<Module>> {
    fn visit(
        graph: &Graph,
        node: &Module,
        done: &mut BTreeSet<Module>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = stack.iter().position(|m| m == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next)
                && let Some(cycle) = visit(graph, next, done, stack)
            {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut done, &mut Vec::new()))
}

fn show(module: &Module) -> String {
    module.join("::")
}

fn domain_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    read_modules(&src, &[], &mut modules);
    graph_of(&modules)
}

#[test]
fn domain_modules_import_each_other_without_a_cycle() {
    let graph = domain_graph();
    // Not vacuous: the graph holds the record kinds' layers and their edges.
    let module = |s: &str| s.split("::").map(str::to_owned).collect::<Module>();
    assert!(graph.len() > 30, "{} modules", graph.len());
    assert!(graph[&module("citizen::decide")].contains(&module("snapshot")));
    assert!(graph[&module("snapshot")].contains(&module("citizen::state")));
    let through_root: Vec<String> = graph
        .iter()
        .filter(|(_, to)| to.contains(&vec![ROOT.to_owned()]))
        .map(|(m, _)| show(m))
        .collect();
    assert!(
        through_root.is_empty(),
        "import from the defining module, not through lib.rs: {through_root:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        let cycle: Vec<String> = cycle.iter().map(show).collect();
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn a_cycle_through_a_grouped_import_is_found() {
    let modules: BTreeMap<Module, String> = [
        (
            vec!["a".to_owned()],
            "use crate::b::{X, c::Y};\n".to_owned(),
        ),
        (vec!["b".to_owned()], "pub mod c;\n".to_owned()),
        (
            vec!["b".to_owned(), "c".to_owned()],
            "fn f() { super::super::a::g() } // crate::z\n".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let graph = graph_of(&modules);
    let cycle = find_cycle(&graph).expect("a -> b::c -> a is a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&vec!["a".to_owned()]));
    // Comments are not imports.
    assert!(!graph[&vec!["b".to_owned(), "c".to_owned()]].contains(&vec!["z".to_owned()]));
}
