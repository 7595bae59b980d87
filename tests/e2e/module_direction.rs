//! The direction of the code: no two files of one crate import each other in a circle (read from their
//! `crate::` and `super::` paths), no store module imports a gRPC module, and a feature's layers import only
//! downwards: a model (`model.rs`, or under `model/`) no store, use case (a feature's `mod.rs`), gRPC or
//! events module; a store no use case or events module. Needs no stack.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn project() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The text without comments, and without what follows the first `#[cfg(test)]` (tests may reach anywhere).
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `crate::a::b` / `super::a` path, as (its first word, the words after it), with `{..}` groups
/// expanded.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for kind in ["crate", "super"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(kind).map(|i| i + from) {
            from = at + kind.len();
            let before_ok = code[..at].chars().next_back().is_none_or(|c| !ident(c));
            if before_ok && code[from..].starts_with("::") {
                expand(&code[from..], &[], kind, &mut out);
            }
        }
    }
    out
}

/// Reads `::a::b::{c, d::e}` after a path's first word into `out`.
fn expand(text: &str, prefix: &[String], kind: &str, out: &mut Vec<(String, Vec<String>)>) {
    let mut words = prefix.to_vec();
    let mut rest = text;
    while let Some(after) = rest.strip_prefix("::") {
        if let Some(group) = after.strip_prefix('{') {
            for item in group_items(group) {
                expand(&format!("::{item}"), &words, kind, out);
            }
            return;
        }
        let word: String = after.chars().take_while(|c| ident(*c)).collect();
        if word.is_empty() {
            break;
        }
        rest = &after[word.len()..];
        words.push(word);
    }
    words.retain(|w| w != "self");
    out.push((kind.to_string(), words));
}

/// The top-level items of a group body `a, b::c, d::{e, f}}...`, up to its closing brace.
fn group_items(body: &str) -> Vec<String> {
    let (mut items, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .map(|i| {
            i.split(" as ")
                .next()
                .unwrap_or_default()
                .replace(char::is_whitespace, "")
        })
        .filter(|i| !i.is_empty())
        .collect()
}

/// A file's module path inside its crate.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("inside src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|l| ["mod", "lib", "main"].contains(&l.as_str()))
    {
        parts.pop();
    }
    parts
}

/// The file a module path names: the longest of `a/b.rs`, `a/b/mod.rs`, `a.rs` that exists.
fn file_of(src: &Path, parts: &[String]) -> Option<PathBuf> {
    (1..=parts.len()).rev().find_map(|n| {
        let base = parts[..n].iter().fold(src.to_path_buf(), |p, w| p.join(w));
        [base.with_extension("rs"), base.join("mod.rs")]
            .into_iter()
            .find(|c| c.is_file())
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("a folder")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Which files of the crate under `src` each file imports.
fn graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = BTreeMap::new();
    for file in files {
        let me = module_of(src, &file);
        let code = code_of(&std::fs::read_to_string(&file).expect("a source file"));
        let mut targets = BTreeSet::new();
        for (kind, mut words) in paths(&code) {
            if kind == "super" {
                let mut base = me[..me.len().saturating_sub(1)].to_vec();
                while words.first().is_some_and(|w| w == "super") {
                    base.pop();
                    words.remove(0);
                }
                base.extend(words);
                words = base;
            }
            if let Some(target) = file_of(src, &words) {
                let root = target.ends_with("lib.rs") || target.ends_with("main.rs");
                if target != file && !root {
                    targets.insert(target);
                }
            }
        }
        graph.insert(file, targets);
    }
    graph
}

/// The circles of `graph`: its strongly connected parts of more than one file (Tarjan).
fn circles(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a PathBuf) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in &self.graph[v] {
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
                let at = self
                    .stack
                    .iter()
                    .position(|x| *x == v)
                    .expect("on the stack");
                let part: Vec<PathBuf> = self.stack.drain(at..).cloned().collect();
                if part.len() > 1 {
                    self.out.push(part);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out
        .into_iter()
        .map(|mut c| {
            c.sort();
            c
        })
        .collect()
}

/// Each circle of every crate under `services/`, as its files relative to the project.
fn every_circle(root: &Path) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for crate_dir in std::fs::read_dir(root.join("services"))
        .expect("services/")
        .filter_map(Result::ok)
    {
        let src = crate_dir.path().join("src");
        if !src.is_dir() {
            continue;
        }
        for circle in circles(&graph(&src)) {
            let named = circle.iter().map(|f| relative(root, f)).collect();
            found.insert(named);
        }
    }
    found
}

fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string()
}

#[test]
fn no_files_of_a_crate_import_each_other_in_a_circle() {
    let found = every_circle(&project());
    assert!(
        found.is_empty(),
        "files that import each other in a circle: {found:#?}"
    );
}

#[test]
fn no_store_module_imports_a_grpc_module() {
    let root = project();
    let mut wrong = Vec::new();
    for crate_dir in std::fs::read_dir(root.join("services"))
        .expect("services/")
        .filter_map(Result::ok)
    {
        let src = crate_dir.path().join("src");
        if !src.is_dir() {
            continue;
        }
        for (file, targets) in graph(&src) {
            let store = file.file_stem().is_some_and(|s| s == "store")
                || file.components().any(|c| c.as_os_str() == "store");
            for target in targets.iter().filter(|_| store) {
                if target
                    .file_stem()
                    .is_some_and(|s| s == "api" || s == "grpc")
                {
                    wrong.push(format!(
                        "{} imports {}",
                        relative(&root, &file),
                        relative(&root, target)
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "store modules importing gRPC modules: {wrong:#?}"
    );
}

/// A circle put back is found: two files of a made-up crate that import each other, beside a third that
/// only imports one of them (a group, a `super::` path and a comment that names the other are read right).
#[test]
fn a_circle_put_back_is_found() {
    let dir = std::env::temp_dir().join(format!("module-direction-{}", uuid::Uuid::new_v4()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("places")).expect("a folder");
    let write = |name: &str, text: &str| std::fs::write(src.join(name), text).expect("a file");
    write("lib.rs", "pub mod api;\npub mod places;\npub mod store;\n");
    write(
        "api.rs",
        "use crate::{places::Free, store};\n// crate::nothing::here\n",
    );
    write("places/mod.rs", "pub mod count;\npub struct Free;\n");
    write(
        "places/count.rs",
        "use super::Free;\nfn f() { crate::store::load(); }\n",
    );
    write("store.rs", "/* crate::api */ pub fn load() {}\n");
    assert!(circles(&graph(&src)).is_empty(), "no circle yet");
    write("store.rs", "use crate::places::count;\npub fn load() {}\n");
    let found = circles(&graph(&src));
    let _ = std::fs::remove_dir_all(&dir);
    let names: Vec<Vec<String>> = found
        .iter()
        .map(|c| c.iter().map(|f| relative(&src, f)).collect())
        .collect();
    assert_eq!(
        names,
        vec![vec!["places/count.rs".to_string(), "store.rs".to_string()]]
    );
}

/// What a file is in its feature's layout, read from its path inside `src`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Model,
    Store,
    /// A feature's `mod.rs`: its use cases.
    UseCase,
    Grpc,
    Events,
    /// Anything else (a crate-level helper, a feature's other parts, a test module): no rule of its own.
    Other,
}

fn layer_of(src: &Path, file: &Path) -> Layer {
    let words = module_path_words(src, file);
    let Some((stem, folders)) = words.split_last() else {
        return Layer::Other;
    };
    let is = |name: &str| stem == name || folders.iter().any(|f| f == name);
    if stem == "tests" {
        // A test module of its own file: tests may reach anywhere.
        Layer::Other
    } else if is("model") {
        Layer::Model
    } else if is("store") {
        Layer::Store
    } else if is("api") || is("grpc") {
        Layer::Grpc
    } else if is("events") {
        Layer::Events
    } else if stem == "mod" && file.parent().is_some_and(is_feature) {
        Layer::UseCase
    } else {
        Layer::Other
    }
}

/// A file's path inside `src` as words, without `.rs` (`places/mod.rs` is `["places", "mod"]`).
fn module_path_words(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("inside src")
        .with_extension("");
    rel.iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// A feature's folder has its model or its store beside its `mod.rs`; a folder without either (a file
/// reader, say) is a group of modules, not a feature with use cases.
fn is_feature(folder: &Path) -> bool {
    ["model", "store"].iter().any(|m| {
        folder.join(format!("{m}.rs")).is_file() || folder.join(m).join("mod.rs").is_file()
    })
}

/// The layers a file of `layer` must not import.
fn below_none_of(layer: Layer) -> &'static [Layer] {
    match layer {
        Layer::Model => &[Layer::Store, Layer::UseCase, Layer::Grpc, Layer::Events],
        Layer::Store => &[Layer::UseCase, Layer::Events],
        Layer::UseCase | Layer::Grpc | Layer::Events | Layer::Other => &[],
    }
}

/// Each import of the crate under `src` against its feature layout, as `file (layer) imports target (layer)`
/// with the paths relative to `root`.
fn upward_imports(root: &Path, src: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    for (file, targets) in graph(src) {
        let layer = layer_of(src, &file);
        for target in targets {
            let theirs = layer_of(src, &target);
            if below_none_of(layer).contains(&theirs) {
                wrong.push(format!(
                    "{} ({layer:?}) imports {} ({theirs:?})",
                    relative(root, &file),
                    relative(root, &target)
                ));
            }
        }
    }
    wrong
}

#[test]
fn models_and_stores_import_nothing_above_them() {
    let root = project();
    let mut wrong = Vec::new();
    for crate_dir in std::fs::read_dir(root.join("services"))
        .expect("services/")
        .filter_map(Result::ok)
    {
        let src = crate_dir.path().join("src");
        if src.is_dir() {
            wrong.extend(upward_imports(&root, &src));
        }
    }
    wrong.sort();
    assert!(
        wrong.is_empty(),
        "models importing a store, use case, gRPC or events module, or stores importing a use case or \
         events module: {wrong:#?}"
    );
}

/// An import upwards put in is found: a made-up crate with a feature (its use cases, model and store), a
/// folder of modules that is no feature, a test module, and the gRPC and events modules. Laid out right,
/// nothing is found; then a model importing its store (through a group) and the gRPC module, and a store
/// importing its use cases (through `super::`) and the events module, are each found.
#[test]
fn an_import_upwards_put_in_is_found() {
    let dir = std::env::temp_dir().join(format!("module-layers-{}", uuid::Uuid::new_v4()));
    let src = dir.join("src");
    for folder in ["places/model", "register/file"] {
        std::fs::create_dir_all(src.join(folder)).expect("a folder");
    }
    let write = |name: &str, text: &str| std::fs::write(src.join(name), text).expect("a file");
    for (name, text) in [
        (
            "lib.rs",
            "pub mod api;\npub mod events;\npub mod places;\npub mod register;\n",
        ),
        ("api.rs", "use crate::places::{self, model::Free};\n"),
        ("events.rs", "use crate::places;\n"),
        (
            "places/mod.rs",
            "pub mod model;\npub mod store;\npub fn hold() { store::load(); }\n",
        ),
        (
            "places/model/mod.rs",
            "use crate::register::file::Unreadable;\npub struct Free;\n",
        ),
        (
            "places/model/tests.rs",
            "use crate::places::{hold, store};\n",
        ),
        (
            "places/store.rs",
            "use super::model::Free;\n// crate::events\npub fn load() {}\n",
        ),
        ("register/mod.rs", "pub mod file;\n"),
        ("register/file/mod.rs", "pub struct Unreadable;\n"),
    ] {
        write(name, text);
    }
    let laid_out_right = upward_imports(&src, &src);
    write(
        "places/model/mod.rs",
        "use crate::{api, places::store::load};\n",
    );
    write(
        "places/store.rs",
        "fn f() { super::hold(); crate::events::x(); }\n",
    );
    let mut found = upward_imports(&src, &src);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(laid_out_right, Vec::<String>::new());
    found.sort();
    assert_eq!(
        found,
        [
            "places/model/mod.rs (Model) imports api.rs (Grpc)",
            "places/model/mod.rs (Model) imports places/store.rs (Store)",
            "places/store.rs (Store) imports events.rs (Events)",
            "places/store.rs (Store) imports places/mod.rs (UseCase)",
        ]
    );
}
