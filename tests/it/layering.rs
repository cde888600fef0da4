//! The layering of `src/lib.rs` holds: no module uses a module of a layer above its own. Read
//! from the source text, so that a new `use` across layers fails here, not in review.

use super::repo;
use std::path::Path;

/// The layers, bottom first (as `src/lib.rs` lists them).
const LAYERS: &[&[&str]] = &[
    &["time", "intern", "event", "watermark", "text"],
    &["detect", "format"],
    &[
        "source",
        "sink",
        "state",
        "output",
        "report",
        "ocsf",
        "approvals",
    ],
    &["config"],
    &["replay", "archive", "live", "kafka", "incident", "explain"],
    &["cli"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer of tests/it/layering.rs"))
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

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = repo("src");
    let mut violations = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let layer = layer_of(&name);
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("crate::") {
                let used: String = text[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used != name && layer_of(&used) > layer {
                    let line = text[..at].lines().count();
                    violations.push(format!("{}:{line}: `{name}` uses `{used}`", file.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn detect_and_format_do_not_use_each_other() {
    for (module, other) in [("detect", "crate::format"), ("format", "crate::detect")] {
        let mut files = Vec::new();
        rust_files(&repo("src").join(module), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(!text.contains(other), "{} uses {other}", file.display());
        }
    }
}
