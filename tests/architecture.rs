//! The layout of `src/` as the README describes it, checked on the source text: no file
//! imports (directly or through others) a file that imports it back, the layers keep their
//! direction (formats and the tokenizer know nothing of the GPU, generate nothing of the
//! engine, the buffer pool nothing of `Gpu`), platform `cfg`s sit in the platform module, and no file is over
//! 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under src/, as a path relative to it ("gpu/pool.rs").
fn files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &src(), &mut out);
    out.sort();
    out
}

/// The code of a file without comments and without its inline `mod tests` (whose `super`
/// is the file itself).
fn code(file: &str) -> String {
    let text = std::fs::read_to_string(src().join(file)).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a file: "gpu/pool.rs" is ["gpu", "pool"], "gpu/mod.rs" ["gpu"],
/// "lib.rs" [].
fn module_of(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file of a module path, if one exists.
fn file_of(module: &[String], files: &BTreeSet<String>) -> Option<String> {
    if module.is_empty() {
        return Some("lib.rs".into());
    }
    let base = module.join("/");
    [format!("{base}.rs"), format!("{base}/mod.rs")]
        .into_iter()
        .find(|f| files.contains(f))
}

/// Every path a `use` tree names: `a::{b, c::{d, e}}` gives a::b, a::c::d, a::c::e.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or("").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// The `use` statements of some code: (whether it is `pub use`, its tree).
fn uses(code: &str) -> Vec<(bool, String)> {
    let mut found = Vec::new();
    for statement in code.split(';') {
        let Some(line) = statement.lines().map(str::trim).rfind(|l| {
            l.starts_with("use ") || l.starts_with("pub use ") || l.starts_with("pub(crate) use ")
        }) else {
            continue;
        };
        let at = statement.rfind(line).unwrap_or(0);
        let rest = &statement[at..];
        let public = rest.starts_with("pub use ");
        let tree = &rest[rest.find("use ").unwrap_or(0) + 4..];
        found.push((public, tree.to_string()));
    }
    found
}

/// The crate paths a file names: in `use` trees and written out in code.
fn named_paths(file: &str) -> Vec<String> {
    let code = code(file);
    let mut paths: Vec<String> = uses(&code)
        .into_iter()
        .flat_map(|(_, tree)| expand(&tree))
        .collect();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut at = 0;
        while let Some(found) = code[at..].find(start) {
            let begin = at + found;
            let mut end = begin;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || b"_:".contains(&bytes[end]))
            {
                end += 1;
            }
            let before = code[..begin].chars().last();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                paths.push(code[begin..end].trim_end_matches(':').to_string());
            }
            at = end.max(begin + 1);
        }
    }
    paths
}

/// The file a path in `file` leads to: the deepest module it names, following a `pub use`
/// of a parent module to the child that defines the item.
fn target(file: &str, path: &str, files: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut module: Vec<String> = match segments.first() {
        Some(&"crate") => Vec::new(),
        Some(&"super") | Some(&"self") => module_of(file),
        _ => return None,
    };
    while let Some(&first) = segments.first() {
        match first {
            "crate" | "self" => {}
            "super" => {
                module.pop();
            }
            _ => break,
        }
        segments.remove(0);
    }
    for segment in &segments {
        let mut deeper = module.clone();
        deeper.push(segment.to_string());
        if file_of(&deeper, files).is_some() {
            module = deeper;
            continue;
        }
        // An item: defined here, or re-exported from a child (`pub use child::Item`).
        let here = file_of(&module, files)?;
        let reexport = uses(&code(&here))
            .into_iter()
            .filter(|(public, _)| *public)
            .flat_map(|(_, tree)| expand(&tree))
            .find(|p| p.rsplit("::").next() == Some(*segment) && !p.starts_with("crate::"));
        if let Some(reexport) = reexport {
            let child: Vec<String> = module
                .iter()
                .cloned()
                .chain(reexport.split("::").map(str::to_string))
                .collect();
            for len in (module.len() + 1..child.len()).rev() {
                if let Some(found) = file_of(&child[..len], files) {
                    return Some(found);
                }
            }
        }
        return Some(here);
    }
    file_of(&module, files)
}

/// file -> the files it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeSet<String> = files().into_iter().collect();
    files
        .iter()
        .map(|file| {
            let targets = named_paths(file)
                .iter()
                .filter_map(|p| target(file, p, &files))
                .filter(|t| t != file)
                .collect();
            (file.clone(), targets)
        })
        .collect()
}

/// A cycle through `start`, if the graph has one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_resolver_sees_imports() {
    let graph = graph();
    let engine = &graph["engine.rs"];
    for expected in [
        "generate/mod.rs",
        "load.rs",
        "gpu/context.rs",
        "model/loaded.rs",
    ] {
        assert!(
            engine.contains(expected),
            "engine.rs -> {expected}: {engine:?}"
        );
    }
    assert!(graph["gpu/tensor.rs"].contains("gpu/context.rs"));
    assert!(graph["formats/layout.rs"].contains("formats/marian/bergamot.rs"));
    let cycle = [("a.rs", "b.rs"), ("b.rs", "c.rs"), ("c.rs", "a.rs")]
        .iter()
        .map(|(from, to)| (from.to_string(), BTreeSet::from([to.to_string()])))
        .collect();
    assert!(cycle_from(&cycle, "a.rs").is_some());
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let graph = graph();
    for file in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, file) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

/// Every file `file` imports, directly or through others.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, file: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![file.to_string()];
    while let Some(node) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn layers_keep_their_direction() {
    let graph = graph();
    for file in graph.keys() {
        let reached = reachable(&graph, file);
        if file.starts_with("formats/") || file.starts_with("tokenizer/") {
            for other in reached.iter().chain([file]) {
                assert!(
                    !other.starts_with("gpu/")
                        && !other.starts_with("ops/")
                        && !code(other).contains("wgpu"),
                    "{file} reaches the GPU through {other}"
                );
            }
        }
        if file.starts_with("generate/") {
            assert!(!reached.contains("engine.rs"), "{file} reaches the engine");
        }
    }
    assert!(
        !graph["gpu/pool.rs"].contains("gpu/context.rs"),
        "the buffer pool needs Gpu"
    );
}

#[test]
fn platform_cfgs_sit_in_the_platform_module() {
    // Elsewhere a cfg only says which items exist on one platform (the folder source, the
    // browser layer), never how a shared item behaves.
    let allowed = [
        "platform.rs",
        "lib.rs",
        "formats/mod.rs",
        "formats/source.rs",
        "engine.rs",
    ];
    for file in files() {
        if file.starts_with("web/") || allowed.contains(&file.as_str()) {
            continue;
        }
        assert!(
            !code(&file).contains("target_arch"),
            "{file} has a platform cfg; platform differences belong in platform.rs"
        );
    }
}

#[test]
fn no_source_file_is_over_600_lines() {
    for file in files() {
        let lines = std::fs::read_to_string(src().join(&file))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= 600, "{file} has {lines} lines");
    }
}
