//! The runtime's module graph: no cycle, and every dependency points to the same layer or one below.
//!
//! The graph is read from the sources themselves (every `crate::`, `super::`, `self::` and child-module
//! path, in `use` items, in code and inside macro invocations), test-only code (`#[cfg(test)]`) left out.
//! Its nodes are units: a layer folder's direct child (`hot::span`, `policy::redact` with its own
//! submodules), the configuration as a whole, and the crate root. A folder module and its children are one
//! unit because they use each other by design (the parent's types, the children's parsers). A unit's
//! layer is the folder it lives in, in the order of [`LAYERS`].

use proc_macro2::{TokenStream, TokenTree};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// Bottom to top. A module may use modules of its own layer (without cycles) and of layers before it.
const LAYERS: &[(&str, &str)] = &[
    ("base", "leaves: values, clock, ids, errors, semantic names, text masking"),
    ("config", "configuration as plain data, and its parsing"),
    ("policy", "pure decisions: redaction, sampling, propagation formats"),
    ("export", "the export side: records, the export thread, exporters, metric exporters"),
    ("hot", "what runs in every annotated call: installed state, context mirror, recorder, spans"),
    ("api", "helpers over the hot path: GenAI, propagation, pseudonyms, logs"),
    ("wiring", "starting and stopping: pipeline and guard, and the in-memory pipeline of `testing`"),
    ("integrations", "tower, reqwest and tonic instrumentation over the API"),
];

fn runtime_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kotaemon-trace/src")
}

/// `a/b.rs` and `a/b/mod.rs` -> `["a", "b"]`; `lib.rs` -> `[]`.
fn module_of(file: &Path, src: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The unit a module belongs to (see the module docs).
fn unit(module: &[String]) -> Vec<String> {
    let depth = match module.first().map(String::as_str) {
        None => 0,
        Some("config") => 1,
        Some(top) if LAYERS.iter().any(|(folder, _)| *folder == top) => 2,
        Some(_) => 1,
    };
    module[..depth.min(module.len())].to_vec()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| m.path().is_ident("test")))
}

/// Collects the module paths a file refers to, as absolute paths (segments from the crate root).
struct Refs<'a> {
    /// The file's module path.
    file_module: &'a [String],
    /// Names of inline modules entered inside the file.
    inline: Vec<String>,
    /// Child modules of the current (inline or file) module, for bare paths such as `detect::Kind`.
    children: &'a BTreeSet<Vec<String>>,
    found: BTreeSet<Vec<String>>,
}

impl Refs<'_> {
    fn current(&self) -> Vec<String> {
        self.file_module.iter().chain(self.inline.iter()).cloned().collect()
    }

    fn add(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else { return };
        let absolute: Vec<String> = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "self" => self.current().into_iter().chain(segments[1..].iter().cloned()).collect(),
            "super" => {
                let mut base = self.current();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.into_iter().chain(rest.iter().cloned()).collect()
            }
            _ => {
                let mut child = self.current();
                child.push(first.clone());
                if !self.children.contains(&child) {
                    return;
                }
                self.current().into_iter().chain(segments.iter().cloned()).collect()
            }
        };
        self.found.insert(absolute);
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.add(&prefix.clone());
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.add(&prefix.clone());
                prefix.pop();
            }
            syn::UseTree::Glob(_) => self.add(&prefix.clone()),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    /// Paths inside macro invocations (`thread_local!`, `format!`, …) are only tokens to syn.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if matches!(id.to_string().as_str(), "crate" | "super" | "self") => {
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    // `:: ident` pairs after the keyword: the path's segments.
                    while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)), Some(TokenTree::Ident(next))) =
                        (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.add(&segments);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Refs<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Macro(m) => &m.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if is_test_only(attrs) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if let Some((_, items)) = &m.content {
            self.inline.push(m.ident.to_string());
            for item in items {
                self.visit_item(item);
            }
            self.inline.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }
}

struct Graph {
    /// Module path -> its file, relative to `src`.
    files: BTreeMap<Vec<String>, PathBuf>,
    /// Unit -> the units it uses.
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    /// Modules that name an item through the crate root (`crate::Config`) rather than its own module.
    through_root: BTreeSet<String>,
}

fn graph() -> Graph {
    let src = runtime_src();
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files: BTreeMap<Vec<String>, PathBuf> =
        paths.iter().map(|p| (module_of(p, &src), p.strip_prefix(&src).unwrap().to_owned())).collect();
    let modules: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut through_root = BTreeSet::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut refs = Refs { file_module: module, inline: Vec::new(), children: &modules, found: BTreeSet::new() };
        refs.visit_file(&ast);
        let from = unit(module);
        let targets = edges.entry(from.clone()).or_default();
        for path in &refs.found {
            let Some(target) = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)) else {
                continue;
            };
            if target.is_empty() && path.len() > 1 && !module.is_empty() {
                through_root.insert(format!("{} uses crate::{}", name(module), path.join("::")));
            }
            let to = unit(&target);
            if to != from && !to.is_empty() {
                targets.insert(to);
            }
        }
    }
    Graph { files, edges, through_root }
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<Vec<String>>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on_stack: BTreeSet<&'g Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn connect<'g>(s: &mut State<'g>, v: &'g Vec<String>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.graph.edges[v] {
            if !s.index.contains_key(w) {
                connect(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.edges.keys() {
        if !s.index.contains_key(v) {
            connect(&mut s, v);
        }
    }
    s.out
}

/// The layer of a module: the position in [`LAYERS`] of its top folder; the crate root is above all.
fn layer(module: &[String]) -> Option<usize> {
    match module.first() {
        None => Some(LAYERS.len()),
        Some(top) => LAYERS.iter().position(|(folder, _)| folder == top),
    }
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    let found = cycles(&graph);
    let described: Vec<String> = found
        .iter()
        .map(|c| format!("{} modules: {}", c.len(), c.iter().map(|m| name(m)).collect::<Vec<_>>().join(", ")))
        .collect();
    assert!(found.is_empty(), "dependency cycles among the runtime's modules:\n{}", described.join("\n"));
}

#[test]
fn modules_name_items_by_their_own_module_not_through_the_crate_root() {
    // A path through the root's re-exports would hide which layer the item comes from.
    let graph = graph();
    assert!(graph.through_root.is_empty(), "{:#?}", graph.through_root);
}

#[test]
fn every_module_lives_in_a_layer_folder() {
    let graph = graph();
    let stray: Vec<String> = graph
        .files
        .iter()
        .filter(|(module, _)| layer(module).is_none())
        .map(|(_, file)| file.display().to_string())
        .collect();
    let folders: Vec<&str> = LAYERS.iter().map(|(folder, _)| *folder).collect();
    assert!(stray.is_empty(), "files outside the layer folders {folders:?}: {stray:?}");
}

#[test]
fn every_dependency_points_to_its_own_layer_or_below() {
    let graph = graph();
    let mut upward = Vec::new();
    for (from, targets) in &graph.edges {
        for to in targets {
            if let (Some(a), Some(b)) = (layer(from), layer(to)) {
                if b > a {
                    upward.push(format!("{} ({}) uses {} ({})", name(from), LAYERS[a].0, name(to), LAYERS[b].0));
                }
            }
        }
    }
    assert!(upward.is_empty(), "dependencies that point up a layer:\n{}", upward.join("\n"));
}

#[test]
fn the_check_sees_the_kinds_of_path_the_sources_use() {
    // A check that found no edges would pass the tests above for nothing: the root must be seen using the
    // wiring (a `use` item), the wiring the hot path's state (a `crate::` path in code), and some module
    // must use another through a macro invocation.
    let graph = graph();
    let edges: usize = graph.edges.values().map(BTreeSet::len).sum();
    assert!(edges > graph.files.len(), "only {edges} dependencies found among {} modules", graph.files.len());
    let root_uses: Vec<String> = graph.edges[&Vec::new()].iter().map(|m| name(m)).collect();
    assert!(root_uses.iter().any(|m| m.starts_with("wiring")), "the crate root uses {root_uses:?}");
    let wiring_uses: Vec<String> =
        graph.edges[&vec!["wiring".to_owned(), "pipeline".to_owned()]].iter().map(|m| name(m)).collect();
    assert!(wiring_uses.iter().any(|m| m == "hot::state"), "the pipeline uses {wiring_uses:?}");
}
