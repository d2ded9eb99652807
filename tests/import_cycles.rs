//! No circle of imports between the top-level modules of a crate: for the
//! root package (`src`) and every crate of `crates/*/src`, the top-level
//! modules depend on each other in one direction only, so that each can be
//! read, tested and moved knowing only what it depends on.
//!
//! Module A depends on module B when the non-test code of A (doc comments
//! included: an intra-doc link is a reference too) names an item of B:
//!
//! - a path `crate::b::...`;
//! - a grouped import `use crate::{b::X, c::{Y, Z}}`, each path of the group;
//! - a name the crate root imports or re-exports, `crate::X` or
//!   `use crate::{X, Y}`, where `lib.rs` (or `main.rs`) has `pub use b::X`
//!   (or `use b::{X, ...}`, `pub use b::Y as X`);
//! - `super::X` in a top-level module (the crate root, so as `crate::X`),
//!   and `super::super::...` from deeper modules likewise.
//!
//! Test code is left out: an inline `#[cfg(test)] mod name { ... }` and a
//! file module declared `#[cfg(test)] mod name;` (with or without
//! `#[path]`), with everything below it.
//!
//! The test fails with every source folder that has circles, each circle as
//! the sorted names of its modules, and under it the imports that close it
//! with the first place (`path:line`) that makes each. Where a circle exists
//! only through a doc link, rephrase the link; otherwise move what both
//! sides need into a module of its own (re-exported where callers name it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates of `crates/`: the test checks every folder `crates/*/src` it
/// finds, and fails when one of these is missing, so that a walk gone wrong
/// cannot pass by checking nothing.
const CRATES: &[&str] = &[
    "admin", "bench", "config", "control", "delivery", "demo", "deploy", "instance", "lag",
    "runtime", "schema", "testkit",
];

/// A module's dependencies: the top-level module it names, with the first
/// place that names it (`path:line`).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn top_level_modules_of_a_crate_import_each_other_in_one_direction_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let folders = source_folders(root);
    let missing: Vec<&str> = CRATES
        .iter()
        .copied()
        .filter(|c| !folders.contains(&format!("crates/{c}/src")))
        .collect();
    assert!(
        missing.is_empty(),
        "no source folder crates/<name>/src for {missing:?} under {} (found {folders:?})",
        root.display()
    );

    let mut report = Vec::new();
    let mut with_circles = 0;
    for folder in &folders {
        let files = read_files(&root.join(folder));
        assert!(!files.is_empty(), "{folder}: no .rs file");
        let graph = dependencies(folder, &modules(&files));
        let found = circles(&graph);
        if found.is_empty() {
            report.push(format!("{folder}: no cycles"));
            continue;
        }
        with_circles += 1;
        let names: Vec<String> = found
            .iter()
            .map(|c| format!("[{}]", c.join(", ")))
            .collect();
        report.push(format!("{folder}: {}", names.join(" ")));
        for circle in &found {
            for a in circle {
                for (b, place) in &graph[a] {
                    if circle.contains(b) {
                        report.push(format!("    {a} -> {b}  ({place})"));
                    }
                }
            }
        }
    }
    assert!(
        with_circles == 0,
        "{with_circles} of {} source folders have circles of imports between their top-level \
         modules. Break each: rephrase a doc link that is the only import back, or move what \
         both sides need into a module of its own named by its domain noun (re-exported from \
         lib.rs where callers name it).\n{}",
        folders.len(),
        report.join("\n")
    );
}

/// The rules of the module docs on a planted crate: every kind of reference
/// counts, test code does not, and a circle is found only where there is one.
#[test]
fn the_check_follows_every_kind_of_reference_and_leaves_test_code_out() {
    let files = |list: &[(&str, &str)]| -> BTreeMap<PathBuf, String> {
        list.iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect()
    };
    let edges = |list: &[(&str, &str)]| -> Vec<String> {
        let graph = dependencies("planted", &modules(&files(list)));
        graph
            .iter()
            .flat_map(|(a, to)| to.keys().map(move |b| format!("{a}->{b}")))
            .collect()
    };

    let planted = [
        (
            "lib.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\npub mod f;\n\
             pub use a::{Alpha, Beta as Renamed};\nuse f::{\n    Phi,\n};\n\
             #[cfg(test)]\nmod tests { pub use e::Epsilon; }\n",
        ),
        // grouped imports, nested groups
        ("a.rs", "use crate::{b::B, c::{C1, C2}};\n"),
        // a doc link, a root re-export under another name
        ("b.rs", "/// See [`crate::d::D`].\npub fn f() -> crate::Renamed { todo!() }\n"),
        // `super::` from a top-level module is the crate root; from deeper
        // modules, its own parent or a sibling top-level module
        ("c.rs", "use super::Phi;\npub mod inner;\n"),
        ("c/inner.rs", "use super::C1;\nuse super::super::{e::E};\n"),
        // test code: an inline module and a file module with everything under it
        (
            "d.rs",
            "pub struct D;\n#[cfg(test)]\n#[allow(dead_code)]\nmod tests {\n    use crate::a::A;\n    fn f() { if true { let _ = crate::b::f; } }\n}\n\
             #[cfg(test)]\nmod helpers;\n#[cfg(test)]\n#[path = \"d_fixtures.rs\"]\nmod fixtures;\n",
        ),
        ("d/helpers.rs", "use crate::a::A;\nmod more;\n"),
        ("d/helpers/more.rs", "use crate::b::B;\n"),
        ("d_fixtures.rs", "use crate::c::C1;\n"),
        // a name only test code of the root re-exports does not count
        ("e.rs", "pub struct E;\npub fn g() -> crate::Epsilon { todo!() }\n"),
        ("f.rs", "pub struct Phi;\n"),
    ];
    assert_eq!(
        edges(&planted),
        ["a->b", "a->c", "b->a", "b->d", "c->e", "c->f"],
    );
    let graph = dependencies("planted", &modules(&files(&planted)));
    assert_eq!(circles(&graph), [vec!["a", "b"]]);
    assert_eq!(graph["b"]["a"], "planted/b.rs:2");
    assert_eq!(graph["b"]["d"], "planted/b.rs:1");

    // a chain is not a circle; two circles are two
    let chain = [
        ("lib.rs", ""),
        ("x.rs", "use crate::y::Y;"),
        ("y.rs", "use crate::z::Z;"),
        ("z.rs", ""),
    ];
    assert!(circles(&dependencies("chain", &modules(&files(&chain)))).is_empty());
    let two = [
        ("main.rs", ""),
        ("p.rs", "use crate::q::Q;"),
        ("q.rs", "use crate::r::R;"),
        ("r.rs", "use crate::p::P;"),
        ("s.rs", "use crate::t::T;"),
        ("t/mod.rs", "/// [`crate::s`]"),
    ];
    assert_eq!(
        circles(&dependencies("two", &modules(&files(&two)))),
        [vec!["p", "q", "r"], vec!["s", "t"]]
    );
}

/// `src` and every `crates/*/src`, relative to `root`, sorted.
fn source_folders(root: &Path) -> Vec<String> {
    let mut folders = vec!["src".to_string()];
    let crates = std::fs::read_dir(root.join("crates"))
        .unwrap_or_else(|e| panic!("read {}: {e}", root.join("crates").display()));
    for entry in crates {
        let entry = entry.expect("a directory entry of crates/");
        if entry.path().join("src").is_dir() {
            folders.push(format!(
                "crates/{}/src",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    folders.sort();
    folders
}

/// Every `.rs` file below `src`, by its path relative to `src`.
fn read_files(src: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                let rel = path.strip_prefix(src).expect("below src").to_path_buf();
                files.insert(rel, text);
            }
        }
    }
    files
}

/// The non-test modules of a crate, by name (`a::b` for `a/b.rs` or
/// `a/b/mod.rs`, `crate` for `lib.rs` and `main.rs`): their file (relative
/// to the source folder) and text.
fn modules(files: &BTreeMap<PathBuf, String>) -> BTreeMap<String, (PathBuf, String)> {
    let tests = test_files(files);
    files
        .iter()
        .filter(|(path, _)| !tests.contains(*path))
        .map(|(path, text)| (module_name(path), (path.clone(), text.clone())))
        .collect()
}

/// The module name of the file `rel` of a source folder.
fn module_name(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" || one == "main" => "crate".to_string(),
        [dirs @ .., last] if last == "mod" => dirs.join("::"),
        _ => parts.join("::"),
    }
}

/// The files compiled only for tests: those declared `#[cfg(test)] mod x;`
/// (at `x.rs` or `x/mod.rs` beside the declaring file's own children, or at
/// its `#[path]`), and every file below them.
fn test_files(files: &BTreeMap<PathBuf, String>) -> BTreeSet<PathBuf> {
    let mut tests = BTreeSet::new();
    for (path, text) in files {
        let here = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        // the children of `a.rs` live in `a/`; of `lib.rs`, `main.rs`, `mod.rs` beside them
        let children = if matches!(stem.as_ref(), "lib" | "main" | "mod") {
            here.clone()
        } else {
            here.join(stem.as_ref())
        };
        for decl in test_modules(text) {
            if decl.body.is_some() {
                continue;
            }
            let candidates = match &decl.path {
                Some(p) => vec![here.join(p)],
                None => vec![
                    children.join(format!("{}.rs", decl.name)),
                    children.join(&decl.name).join("mod.rs"),
                ],
            };
            for c in candidates.iter().map(|c| normalize(c)) {
                if files.contains_key(&c) {
                    let below = if c.ends_with("mod.rs") {
                        c.parent().unwrap_or(Path::new("")).to_path_buf()
                    } else {
                        c.with_extension("")
                    };
                    tests.extend(files.keys().filter(|f| f.starts_with(&below)).cloned());
                    tests.insert(c);
                }
            }
        }
    }
    tests
}

/// `p` without `.` and with `..` applied.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A module declared under `#[cfg(test)]`.
struct TestModule {
    name: String,
    /// Its `#[path = "..."]`.
    path: Option<String>,
    /// For an inline module, the byte range from `#[cfg(test)]` to its
    /// closing brace.
    body: Option<(usize, usize)>,
}

/// Every `#[cfg(test)] [#[attr]...] [pub[(..)]] mod name ;` or `{ ... }` of
/// `text` (braces matched by counting).
fn test_modules(text: &str) -> Vec<TestModule> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    for (start, _) in text.match_indices("#[cfg(test)]") {
        let mut i = skip_ws(b, start + "#[cfg(test)]".len());
        let mut path = None;
        while b.get(i) == Some(&b'#') && b.get(i + 1) == Some(&b'[') {
            let Some(len) = text[i..].find(']') else {
                break;
            };
            let attr = &text[i + 2..i + len];
            if let Some(rest) = attr.trim().strip_prefix("path") {
                let value = rest.trim_start().trim_start_matches('=').trim();
                path = Some(value.trim_matches('"').to_string());
            }
            i = skip_ws(b, i + len + 1);
        }
        if text[i..].starts_with("pub") && !is_word(b.get(i + 3).copied()) {
            i = skip_ws(b, i + 3);
            if b.get(i) == Some(&b'(') {
                let Some(len) = text[i..].find(')') else {
                    continue;
                };
                i = skip_ws(b, i + len + 1);
            }
        }
        if !(text[i..].starts_with("mod") && b.get(i + 3).is_some_and(u8::is_ascii_whitespace)) {
            continue;
        }
        i = skip_ws(b, i + 3);
        let name = ident_at(text, i);
        if name.is_empty() {
            continue;
        }
        i = skip_ws(b, i + name.len());
        match b.get(i) {
            Some(b';') => found.push(TestModule {
                name: name.to_string(),
                path,
                body: None,
            }),
            Some(b'{') => {
                let mut depth = 0usize;
                let mut end = b.len();
                for (j, &c) in b.iter().enumerate().skip(i) {
                    match c {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                found.push(TestModule {
                    name: name.to_string(),
                    path,
                    body: Some((start, end)),
                });
            }
            _ => {}
        }
    }
    found
}

/// `text` without its inline test modules; their lines are kept empty, so
/// that line numbers stay right.
fn without_inline_tests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for m in test_modules(text) {
        let Some((start, end)) = m.body else {
            continue;
        };
        if start < pos {
            continue;
        }
        out.push_str(&text[pos..start]);
        out.extend(text[start..end].matches('\n'));
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

fn is_word(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The identifier that starts at `i` (empty if none does).
fn ident_at(text: &str, i: usize) -> &str {
    let b = text.as_bytes();
    if !b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return "";
    }
    let len = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    &text[i..i + len]
}

/// The paths of the use tree `{...}` that starts at `text[start] == '{'`
/// (`{a::X, b::{Y, Z}}`: `a::X`, `b::Y`, `b::Z`; `X as Y` stays one path),
/// and the offset after its closing brace.
fn group_paths(text: &str, start: usize) -> (Vec<String>, usize) {
    let mut paths = Vec::new();
    let mut prefixes = vec![String::new()];
    let mut current = String::new();
    let mut space = false;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => {
                let prefix = format!("{}{}", prefixes.last().expect("a prefix"), current);
                prefixes.push(prefix);
                current.clear();
            }
            ',' | '}' => {
                if !current.is_empty() {
                    paths.push(format!("{}{current}", prefixes.last().expect("a prefix")));
                }
                current.clear();
                if c == '}' {
                    prefixes.pop();
                    if prefixes.len() == 1 {
                        return (paths, start + i + 1);
                    }
                }
            }
            c if c.is_whitespace() => space = true,
            c => {
                let word = |c: char| c.is_alphanumeric() || c == '_';
                if space && current.ends_with(word) && word(c) {
                    current.push(' ');
                }
                space = false;
                current.push(c);
            }
        }
    }
    (paths, text.len())
}

/// The first segment of a path (`a` of `a::X`, `X` of `X as Y`).
fn head(path: &str) -> &str {
    path.split("::")
        .next()
        .unwrap_or("")
        .split(' ')
        .next()
        .unwrap_or("")
}

/// `(offset, path from the crate root)` of every `crate::` path of `text`,
/// a group giving each of its paths.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        if at > 0 && is_word(Some(b[at - 1])) {
            continue;
        }
        let after = at + "crate::".len();
        if b.get(after) == Some(&b'{') {
            let (paths, _) = group_paths(text, after);
            found.extend(paths.into_iter().map(|p| (at, p)));
        } else {
            let name = ident_at(text, after);
            if !name.is_empty() {
                found.push((at, name.to_string()));
            }
        }
    }
    found
}

/// `(offset, path from the crate root)` of every `super::` path of `text`,
/// the text of module `module` (`a::b`).
fn super_paths(module: &str, text: &str) -> Vec<(usize, String)> {
    let parts: Vec<&str> = module.split("::").collect();
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(k) = text[i..].find("super::") {
        let at = i + k;
        i = at + "super::".len();
        if at > 0 && is_word(Some(b[at - 1])) {
            continue;
        }
        let mut ups = 1;
        while text[i..].starts_with("super::") {
            ups += 1;
            i += "super::".len();
        }
        let tails = if b.get(i) == Some(&b'{') {
            let (paths, end) = group_paths(text, i);
            i = end;
            paths
        } else {
            let name = ident_at(text, i);
            if name.is_empty() {
                continue;
            }
            i += name.len();
            vec![name.to_string()]
        };
        if ups > parts.len() {
            continue;
        }
        let base = parts[..parts.len() - ups].join("::");
        for tail in tails {
            let path = if base.is_empty() {
                tail
            } else {
                format!("{base}::{tail}")
            };
            found.push((at, path));
        }
    }
    found
}

/// The names the crate root brings in from its own modules (`use a::X;`,
/// `pub use a::{X, Y as Z};`): name → top-level module.
fn root_imports(root: &str, tops: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for (start, line) in line_starts(root) {
        let mut rest = line.trim_start();
        if let Some(r) = rest.strip_prefix("pub") {
            rest = r.trim_start();
            if rest.starts_with('(') {
                let Some(close) = rest.find(')') else {
                    continue;
                };
                rest = rest[close + 1..].trim_start();
            }
        }
        let Some(tree) = rest.strip_prefix("use ") else {
            continue;
        };
        let offset = start + (line.len() - tree.len());
        let Some(end) = root[offset..].find(';') else {
            continue;
        };
        let tree = &root[offset..offset + end];
        let paths = match tree.find('{') {
            Some(open) => {
                let prefix: String = tree[..open].split_whitespace().collect();
                let (paths, _) = group_paths(tree, open);
                paths.into_iter().map(|p| format!("{prefix}{p}")).collect()
            }
            None => vec![tree.split_whitespace().collect::<Vec<_>>().join(" ")],
        };
        for path in paths {
            let path = path
                .trim_start_matches("::")
                .trim_start_matches("crate::")
                .trim_start_matches("self::");
            let module = head(path);
            if !tops.contains(module) {
                continue;
            }
            let name = match path.rsplit_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => path.rsplit("::").next().unwrap_or(path),
            };
            names.insert(name.to_string(), module.to_string());
        }
    }
    names
}

/// `(offset, line)` of every line of `text`.
fn line_starts(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0, |offset, line| {
        let start = *offset;
        *offset += line.len();
        Some((start, line.trim_end_matches('\n')))
    })
}

/// The top-level modules each top-level module depends on (see the module
/// docs), with the first place that makes each dependency; `folder` names
/// the places.
fn dependencies(folder: &str, mods: &BTreeMap<String, (PathBuf, String)>) -> Graph {
    let tops: BTreeSet<String> = mods
        .keys()
        .filter(|m| *m != "crate")
        .map(|m| head(m).to_string())
        .collect();
    let root = mods
        .get("crate")
        .map(|(_, text)| without_inline_tests(text))
        .unwrap_or_default();
    let imports = root_imports(&root, &tops);
    let mut graph = Graph::new();
    for (module, (path, text)) in mods {
        if module == "crate" {
            continue;
        }
        let top = head(module);
        let code = without_inline_tests(text);
        let mut found = crate_paths(&code);
        found.extend(super_paths(module, &code));
        found.sort_by_key(|(offset, _)| *offset);
        for (offset, p) in found {
            let first = head(&p);
            let target = if tops.contains(first) {
                first
            } else if let Some(m) = imports.get(first) {
                m.as_str()
            } else {
                continue;
            };
            if target == top {
                continue;
            }
            let line = code[..offset].matches('\n').count() + 1;
            let place = format!("{folder}/{}:{line}", path.display());
            graph
                .entry(top.to_string())
                .or_default()
                .entry(target.to_string())
                .or_insert(place);
        }
    }
    graph
}

/// The circles of `graph`: its strongly connected groups of more than one
/// module (Tarjan), each sorted, in order.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flat_map(|to| to.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                loop {
                    let w = self.stack.pop().expect("on the stack");
                    self.on_stack.remove(w);
                    group.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found.sort();
    walk.found
}
