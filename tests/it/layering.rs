//! The module graph written in `src/lib.rs` ("Which module uses which") is the module graph:
//! read from the source text, every `crate::` path must be allowed there, every entry there
//! must be needed by some code, and the graph has no cycle. A new `use` across modules fails
//! here, not in review, and the list never grows stale.

use super::repo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The list in `src/lib.rs`: module → the modules it may use.
fn written() -> Graph {
    let lib = std::fs::read_to_string(repo("src/lib.rs")).unwrap();
    let section = lib
        .split("//! ## Which module uses which")
        .nth(1)
        .expect("src/lib.rs has a section \"Which module uses which\"");
    let mut graph = Graph::new();
    let mut entry = String::new();
    let mut entries = Vec::new();
    for line in section.lines().skip(1) {
        let Some(text) = line.strip_prefix("//!") else {
            break;
        };
        let text = text.trim();
        if let Some(item) = text.strip_prefix("- ") {
            entries.push(std::mem::take(&mut entry));
            entry = item.to_string();
        } else if !entry.is_empty() && !text.is_empty() {
            entry.push(' ');
            entry.push_str(text);
        }
    }
    entries.push(entry);
    for entry in entries.into_iter().filter(|e| !e.is_empty()) {
        let (modules, uses) = entry.split_once(':').expect("`module`: `uses`, …");
        let names = |text: &str| -> Vec<String> {
            text.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        for module in names(modules) {
            let previous = graph.insert(module.clone(), names(uses).into_iter().collect());
            assert!(
                previous.is_none(),
                "`{module}` is listed twice in src/lib.rs"
            );
        }
    }
    graph
}

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// What the code uses: module → (used module → the first place it is used), comments apart.
fn used() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = repo("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let uses: &mut BTreeMap<String, String> = graph.entry(name.clone()).or_default();
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                assert!(
                    !line.contains("crate::{"),
                    "{}:{}: name each module in its own `use crate::…` (the layering test \
                     reads them)",
                    file.display(),
                    n + 1
                );
                for (at, _) in line.match_indices("crate::") {
                    let module: String = line[at + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if module != name {
                        uses.entry(module)
                            .or_insert_with(|| format!("{}:{}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn the_module_graph_is_the_one_src_lib_rs_writes() {
    let written = written();
    let used = used();
    let mut wrong = Vec::new();
    for (module, uses) in &used {
        let Some(allowed) = written.get(module) else {
            wrong.push(format!(
                "`{module}` is not in src/lib.rs's \"Which module uses which\""
            ));
            continue;
        };
        for (other, at) in uses {
            if !allowed.contains(other) {
                wrong.push(format!(
                    "{at}: `{module}` uses `{other}`, which src/lib.rs does not allow"
                ));
            }
        }
        for other in allowed {
            if !uses.contains_key(other) {
                wrong.push(format!(
                    "src/lib.rs lets `{module}` use `{other}`, but no code of it does: take it out"
                ));
            }
        }
    }
    for module in written.keys() {
        if !used.contains_key(module) {
            wrong.push(format!("src/lib.rs lists `{module}`, which is no module"));
        }
    }
    assert!(wrong.is_empty(), "the module graph:\n{}", wrong.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let written = written();
    // Kahn's algorithm: repeatedly take the modules whose uses are all taken.
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = written
            .iter()
            .filter(|(m, uses)| {
                !placed.contains(m.as_str()) && uses.iter().all(|u| placed.contains(u.as_str()))
            })
            .map(|(m, _)| m.as_str())
            .collect();
        if ready.is_empty() {
            break;
        }
        placed.extend(ready);
    }
    let stuck: Vec<&String> = written
        .keys()
        .filter(|m| !placed.contains(m.as_str()))
        .collect();
    assert!(stuck.is_empty(), "modules in a cycle: {stuck:?}");
}

#[test]
fn detect_and_format_do_not_use_each_other() {
    let written = written();
    assert!(!written["detect"].contains("format"));
    assert!(!written["format"].contains("detect"));
}
