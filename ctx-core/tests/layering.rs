//! The modules of ctx-core import one another without cycles (the layering at the top of
//! `src/lib.rs`), and so do the files of every directory module that writes down layers of its
//! own at the top of its `mod.rs` (`src/tree/`).
//!
//! A plain text scan of `src/**/*.rs`, no parser: good enough for this crate's style, and
//! simple enough to trust. It works on one *level* at a time: the crate (`src/`, whose root file
//! is `lib.rs`), or a directory module (`src/d/`, whose root file is `mod.rs`). What it does:
//!
//! * A *module* of a level is a module right below its root: `x.rs`, or everything under `x/`.
//!   The root file (the `mod` lines and re-exports) is left out, and at the crate level so is the
//!   `#[cfg(test)]` module `tests`.
//! * Comments are dropped (from `//` to the end of the line: doc links name other modules
//!   freely), and so is every item behind `#[cfg(test)]` or `#[cfg(all(test, ..))]` (a unit
//!   test may use anything).
//! * A reference is a path that starts at the level's root: `crate::x…`, `crate::{x, y…}` at the
//!   crate level (`crate::d::x…` in `src/d/`), or `super::x` where `super` climbs to the root
//!   (`super::` in `src/x.rs` outside any inline `mod`; in `src/d/y.rs` it means `d`, the root
//!   of that level). `x` is a module, or a name that the root file re-exports (`pub use
//!   crate::x::Name` in `lib.rs`, `pub(crate) use self::x::{Name, …}` in a `mod.rs`), which
//!   counts as its module. A name the root defines itself (`super::counters`) is no module.
//!
//! Each level fails on any cycle and prints it. It also holds the list of layers written at the
//! top of its root file (`// 1. ...`, the modules in backquotes, one block of `//` lines) to the
//! code: every module is in it, and imports only from its own layer or the ones above.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One source file: the module of its level it belongs to, how deep it sits below the level's
/// root (`x.rs` and `x/mod.rs`: 1; `x/y.rs`: 2), and its text.
struct File {
    module: String,
    depth: usize,
    text: String,
}

/// Module → the modules it references.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// One level of the scan: the crate, or a directory module.
struct Level {
    /// Shown in messages: `crate`, or the path of the directory module (`tree`).
    name: String,
    /// The root file's text: `lib.rs` or `mod.rs`.
    root: String,
    /// What a path from the level's root starts with: `crate::`, or `crate::tree::`.
    anchor: String,
    files: Vec<File>,
}

/// The files of the level whose root file is `dir/<root>.rs`, by the module of the level each
/// belongs to.
fn read_sources(dir: &Path, root: &str) -> (String, Vec<File>) {
    let mut root_text = String::new();
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), None::<String>, 0)];
    while let Some((dir, module, depth)) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let module = module.clone().unwrap_or_else(|| name.clone());
                stack.push((path, Some(module), depth + 1));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).expect("read source");
                match &module {
                    None if name == root => root_text = text,
                    None => files.push(File {
                        module: name,
                        depth: 1,
                        text,
                    }),
                    Some(m) => files.push(File {
                        module: m.clone(),
                        depth: if name == "mod" { depth } else { depth + 1 },
                        text,
                    }),
                }
            }
        }
    }
    (root_text, files)
}

/// `name → module` for every re-export of the root file: `pub use crate::module::{names}` in
/// `lib.rs`, `pub(crate) use self::module::{names}` in a `mod.rs` (a group may span lines).
fn re_exports(root: &str, anchor: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let code = strip(root);
    for statement in code.split(';') {
        let statement = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some((_, path)) = ["pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|p| statement.split_once(p))
        else {
            continue;
        };
        let Some(path) = path.strip_prefix("self::").or_else(|| path.strip_prefix(anchor)) else {
            continue;
        };
        let Some((module, names)) = path.split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            // `Name`, or `Name as Other`: the name it is known by.
            let name = name.split(" as ").last().unwrap_or("").trim();
            if !name.is_empty() {
                map.insert(name.to_string(), module.to_string());
            }
        }
    }
    map
}

/// `text` without comments and without the items behind a `#[cfg(test)]`-like attribute.
fn strip(text: &str) -> String {
    let mut out = String::new();
    // An item behind `#[cfg(test)]` is being skipped: whether its body has opened, and the
    // brace depth inside it.
    let mut skip_item = false;
    let mut entered = false;
    let mut depth = 0usize;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let t = code.trim();
        if !skip_item && (t.starts_with("#[cfg(test") || t.starts_with("#[cfg(all(test")) {
            (skip_item, entered, depth) = (true, false, 0);
            continue;
        }
        if skip_item {
            if t.starts_with("#[") {
                continue; // more attributes on the same item
            }
            let opened = t.matches('{').count();
            entered |= opened > 0;
            depth = (depth + opened).saturating_sub(t.matches('}').count());
            // The item ends at its closing brace, or at a `;` if it has no body.
            if depth == 0 && (entered || t.ends_with(';')) {
                skip_item = false;
            }
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segments of a path after the root (`x` of `x::…`, or each `x` of `{x, y::…}`).
fn first_segments(rest: &str) -> Vec<&str> {
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut names = Vec::new();
    let mut level = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => level += 1,
            '}' if level == 0 => break,
            '}' => level -= 1,
            ',' if level == 0 => start = true,
            c if start && !c.is_whitespace() => {
                names.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    names
}

/// The modules `file` references (see the crate doc of this test); `anchor` is the level's
/// `crate::…` path.
fn references(
    file: &File,
    modules: &BTreeSet<String>,
    exports: &BTreeMap<String, String>,
    anchor: &str,
) -> BTreeSet<String> {
    let text = strip(&file.text);
    let mut found = BTreeSet::new();
    let mut add = |rest: &str| {
        for seg in first_segments(rest) {
            if modules.contains(seg) {
                found.insert(seg.to_string());
            } else if let Some(m) = exports.get(seg) {
                found.insert(m.clone());
            }
        }
    };
    // Inline `mod name {` blocks open so far, by the brace depth they opened at.
    let mut inline: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if rest.starts_with('{') {
            braces += 1;
        } else if rest.starts_with('}') {
            braces = braces.saturating_sub(1);
            if inline.last() == Some(&braces) {
                inline.pop();
            }
        } else if boundary && rest.starts_with("mod ") {
            // `mod name {`: an inline module, whose `super::` is this file's module.
            let after = rest[4..].trim_start();
            let name = ident(after);
            if after[name.len()..].trim_start().starts_with('{') {
                inline.push(braces);
            }
        } else if boundary && let Some(after) = rest.strip_prefix(anchor) {
            add(after);
            i += anchor.len();
            continue;
        } else if boundary && rest.starts_with("super::") {
            let mut after = rest;
            let mut ups = 0;
            while let Some(a) = after.strip_prefix("super::") {
                after = a;
                ups += 1;
            }
            if ups == file.depth + inline.len() {
                add(after); // climbed to the level's root
            }
            i += rest.len() - after.len();
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    found.remove(&file.module);
    found
}

/// The graph of the crate level: `lib` is `lib.rs`.
fn graph(lib: &str, files: &[File]) -> Graph {
    graph_of(lib, files, "crate::")
}

/// The graph of a level whose root file is `root` and whose paths start with `anchor`.
fn graph_of(root: &str, files: &[File], anchor: &str) -> Graph {
    let exports = re_exports(root, anchor);
    let modules: BTreeSet<String> = files.iter().map(|f| f.module.clone()).collect();
    let mut graph = Graph::new();
    for file in files {
        let refs = references(file, &modules, &exports, anchor);
        graph.entry(file.module.clone()).or_default().extend(refs);
    }
    graph
}

/// A cycle of `graph`, as the modules on it (the first repeated at the end), if it has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = graph.keys().map(|k| (k.as_str(), Mark::New)).collect();
    for root in graph.keys() {
        if mark[root.as_str()] != Mark::New {
            continue;
        }
        // An explicit stack of (module, its references not yet visited).
        let mut path: Vec<(&str, Vec<&str>)> = Vec::new();
        let edges = |m: &str| {
            graph
                .get(m)
                .map_or(Vec::new(), |s| s.iter().map(String::as_str).collect())
        };
        mark.insert(root, Mark::Open);
        path.push((root, edges(root)));
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            let Some(to) = next.pop() else {
                mark.insert(node, Mark::Done);
                path.pop();
                continue;
            };
            match mark.get(to).copied().unwrap_or(Mark::Done) {
                Mark::Open => {
                    let start = path.iter().position(|(m, _)| *m == to).unwrap();
                    let mut cycle: Vec<String> = path[start..].iter().map(|(m, _)| m.to_string()).collect();
                    cycle.push(to.to_string());
                    return Some(cycle);
                }
                Mark::New => {
                    mark.insert(to, Mark::Open);
                    path.push((to, edges(to)));
                }
                Mark::Done => {}
            }
        }
    }
    None
}

/// The text of a plain `//` comment line (not `///` or `//!`), if `line` is one.
fn plain_comment(line: &str) -> Option<&str> {
    let text = line.trim().strip_prefix("//")?;
    (!text.starts_with('/') && !text.starts_with('!')).then_some(text)
}

/// The layer of each module, from the numbered `// N. ...` comment at the top of a root file
/// (`lib.rs`, `mod.rs`): the first layer that names the module in backquotes. The list is the
/// block of plain `//` lines that starts at `// 1. `; empty if there is none.
fn layers(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, usize> {
    let mut layer = 0;
    let mut of = BTreeMap::new();
    for line in root.lines() {
        let Some(text) = plain_comment(line) else {
            if layer > 0 {
                break; // the end of the list
            }
            continue;
        };
        let text = text.trim_start();
        if let Some((n, _)) = text.split_once(". ")
            && let Ok(n) = n.parse::<usize>()
            && (n == 1 || layer > 0)
        {
            layer = n;
        }
        if layer == 0 {
            continue;
        }
        for (i, quoted) in text.split('`').enumerate() {
            if i % 2 == 1 && modules.contains(quoted) {
                of.entry(quoted.to_string()).or_insert(layer);
            }
        }
    }
    of
}

/// Whether a root file writes down a layer list (a plain `// 1. ` comment line).
fn has_layers(root: &str) -> bool {
    root.lines()
        .filter_map(plain_comment)
        .any(|text| text.trim_start().starts_with("1. "))
}

fn show(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, refs)| format!("  {m} -> {}", refs.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate level (`src/`, `lib.rs`; the `#[cfg(test)] mod tests;` left out).
fn crate_level(src: &Path) -> Level {
    let (root, mut files) = read_sources(src, "lib");
    files.retain(|f| f.module != "tests");
    Level {
        name: "crate".into(),
        root,
        anchor: "crate::".into(),
        files,
    }
}

/// Every directory module below `src` whose `mod.rs` writes down a layer list.
fn directory_levels(src: &Path) -> Vec<Level> {
    let mut levels = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if !path.is_dir() {
                continue;
            }
            dirs.push(path.clone());
            let Ok(root) = fs::read_to_string(path.join("mod.rs")) else {
                continue;
            };
            if !has_layers(&root) {
                continue;
            }
            let rel = path.strip_prefix(src).expect("below src");
            let segments: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            let (_, files) = read_sources(&path, "mod");
            levels.push(Level {
                name: segments.join("/"),
                root,
                anchor: format!("crate::{}::", segments.join("::")),
                files,
            });
        }
    }
    levels
}

/// Checks one level: no cycle, every module in the layer list, no import from below. Returns
/// its graph.
fn check(level: &Level) -> Graph {
    let graph = graph_of(&level.root, &level.files, &level.anchor);
    let name = &level.name;
    let root = if name == "crate" { "lib.rs" } else { "mod.rs" };
    // Shown when the test fails, or with `--nocapture`.
    println!("imports in `{name}`:\n{}", show(&graph));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle in `{name}`: {} (all imports above)",
            cycle.join(" -> ")
        );
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    let layer = layers(&level.root, &modules);
    for (module, refs) in &graph {
        let Some(&own) = layer.get(module) else {
            panic!("module `{module}` is missing from the layers at the top of `{name}`'s {root}");
        };
        for r in refs {
            assert!(
                layer[r] <= own,
                "`{module}` (layer {own}) imports `{r}` (layer {}), below it: move one of them \
                 in the layers at the top of `{name}`'s {root}, or the code",
                layer[r]
            );
        }
    }
    graph
}

#[test]
#[cfg_attr(miri, ignore = "reads the source tree: Miri isolates the file system")]
fn modules_import_without_cycles_and_follow_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let level = crate_level(&src);
    let graph = graph_of(&level.root, &level.files, &level.anchor);
    // The scan sees the crate: the handle and `Done` are built on the engine.
    assert!(
        graph["ctx"].contains("tree"),
        "scan lost ctx -> tree:\n{}",
        show(&graph)
    );
    assert!(
        graph["done"].contains("tree"),
        "scan lost done -> tree:\n{}",
        show(&graph)
    );
    // `Ctx::wrap` finds the clock of a wrapped `Ctx` through `value_any`: the key is `wrap`'s,
    // and `ctx` answers it, so the protocol is an edge the scan sees (ctx -> wrap, downward),
    // not a hidden one back from `wrap` into `ctx`.
    assert!(
        graph["ctx"].contains("wrap"),
        "scan lost ctx -> wrap (the clock key):\n{}",
        show(&graph)
    );
    check(&level);
}

#[test]
#[cfg_attr(miri, ignore = "reads the source tree: Miri isolates the file system")]
fn files_of_directory_modules_import_without_cycles_and_follow_their_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let levels = directory_levels(&src);
    let tree = levels
        .iter()
        .find(|l| l.name == "tree")
        .expect("src/tree/mod.rs has a layer list");
    // The scan sees the engine's files: building a node uses the layout.
    let graph = graph_of(&tree.root, &tree.files, &tree.anchor);
    assert!(
        graph["derive"].contains("node"),
        "scan lost derive -> node:\n{}",
        show(&graph)
    );
    for level in &levels {
        check(level);
    }
}

// ===== the scan itself =====

fn file(module: &str, depth: usize, text: &str) -> File {
    File {
        module: module.into(),
        depth,
        text: text.into(),
    }
}

#[test]
fn a_cycle_through_a_re_export_is_found() {
    let lib = "mod a;\nmod b;\n#[doc(inline)]\npub use crate::a::{Alpha, Beta};\n";
    let files = [
        file("a", 1, "use crate::b::helper;\n"),
        file("b", 1, "use crate::{Alpha, Gamma};\n"),
    ];
    let cycle = find_cycle(&graph(lib, &files)).expect("a cycle");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
    assert_eq!(cycle.first(), cycle.last());
}

#[test]
fn super_climbs_to_the_root_only_from_the_top() {
    let files = [
        // `super::` in a file under `t/` is `t` itself; `super::super::` is the root.
        file("t", 2, "use super::node::Node;\nuse super::super::x::X;\n"),
        // `super::` in an inline module of `x` is `x`; at the top of `x.rs` it is the root.
        file("x", 1, "mod imp {\n    use super::Job;\n}\nuse super::t::T;\n"),
    ];
    let g = graph("", &files);
    assert_eq!(g["t"], BTreeSet::from(["x".to_string()]));
    assert_eq!(g["x"], BTreeSet::from(["t".to_string()]));
    assert!(find_cycle(&g).is_some());
}

#[test]
fn layers_come_from_the_numbered_comment() {
    let lib = "// Layers:\n//\n// 1. `a`, `b`: leaves (not `C`).\n// 2. `c` (uses `a`), then\n//    `d`.\nmod a;\n// `e` is not in the list\n";
    let modules = ["a", "b", "c", "d", "e"].map(String::from).into();
    let layer = layers(lib, &modules);
    let expected = [("a", 1), ("b", 1), ("c", 2), ("d", 2)].map(|(m, l)| (m.to_string(), l));
    assert_eq!(layer, BTreeMap::from(expected));
}

/// A directory module's files: `super::Name` resolves through its `mod.rs`'s re-exports
/// (groups over several lines, `as` renames), `super::x::` names the file `x`, and neither a
/// name that `mod.rs` defines itself nor a path out to the crate counts. Its layer list is
/// read past the module doc, whose numbered lines are not layers.
#[test]
fn a_directory_module_is_a_level_of_its_own() {
    let root = "//! The engine.\n//!\n//! 1. `b` holds a lock.\n\n// Layers:\n//\n// 1. `a`: a leaf.\n// 2. `b`, `c`.\nmod a;\nmod b;\nmod c;\n\npub(crate) use self::a::{\n    Alpha,\n    Beta as Bet,\n};\npub(crate) use self::c::gamma;\n#[cfg(test)]\nuse self::b::Test;\npub(crate) mod counters {}\n";
    let files = [
        file("a", 1, "use super::counters;\nuse crate::error::Error;\n"),
        file(
            "b",
            1,
            "use super::{\n    Bet,\n    gamma,\n};\nuse super::super::clock::Clock;\n",
        ),
        file(
            "c",
            1,
            "use crate::tree::a::Alpha;\nfn f() { super::Test::new(); }\n",
        ),
    ];
    let g = graph_of(root, &files, "crate::tree::");
    assert_eq!(g["a"], BTreeSet::new());
    assert_eq!(g["b"], BTreeSet::from(["a".to_string(), "c".to_string()]));
    assert_eq!(g["c"], BTreeSet::from(["a".to_string()]));
    assert!(find_cycle(&g).is_none(), "{}", show(&g));
    let modules = ["a", "b", "c"].map(String::from).into();
    let layer = layers(root, &modules);
    let expected = [("a", 1), ("b", 2), ("c", 2)].map(|(m, l)| (m.to_string(), l));
    assert_eq!(layer, BTreeMap::from(expected));
    assert!(has_layers(root));
    assert!(!has_layers("//! 1. `a`: a doc line is no layer list.\nmod a;\n"));
    // And a cycle among the files is found.
    let files = [
        file("a", 1, "use super::gamma;\n"),
        file("c", 1, "use super::Alpha;\n"),
    ];
    let cycle = find_cycle(&graph_of(root, &files, "crate::tree::")).expect("a cycle");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
}

#[test]
fn comments_and_test_items_are_not_references() {
    let files = [
        file(
            "a",
            1,
            "//! See [`B`](crate::b::B).\nfn f() {} // crate::b::g()\n#[cfg(test)]\nmod tests {\n    use crate::b::g;\n    fn t() { if true { g() } }\n}\n#[cfg(all(test, loom))]\nuse crate::b::h;\n#[cfg(not(test))]\nuse crate::c::C;\n",
        ),
        file("b", 1, "use crate::a::f;\n"),
        file("c", 1, ""),
    ];
    let g = graph("", &files);
    assert_eq!(g["a"], BTreeSet::from(["c".to_string()]));
    assert!(find_cycle(&g).is_none(), "{}", show(&g));
}
