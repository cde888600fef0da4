//! What an archive holds, so that a partial one is never read as whole. `exposure archive`
//! writes `_manifest.json` last, once every part is in place: the writer, its settings, the
//! inputs (names and sizes), the days and each part file with its rows and size. While it runs
//! it appends each finished part to `_progress.jsonl` (for `archive --resume`), removed once the
//! manifest is written.
//!
//! Before a replay reads an archive's parts (`ROOT/dt=YYYY-MM-DD/part-NNNNN.parquet`, on disk
//! or in a store), [`check_parts`] holds them against their root's manifest: an archive without
//! one (a killed `archive`, or a copy that lost it), a part it does not list (a second run into
//! the same folder), a part of another size, or a listed part that is not there, is reported —
//! naming the archive and the part — and those parts are not read; the run's exit code is 1.
//! The check is pure: the caller lists the files and loads the manifests.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The manifest's file name in an archive's root.
pub const MANIFEST_FILE: &str = "_manifest.json";
/// The progress journal of an `archive` still running (or killed).
pub const PROGRESS_FILE: &str = "_progress.jsonl";
/// The manifest's `format`.
pub const FORMAT: &str = "exposure.archive";
/// The manifest's `version`.
pub const VERSION: u32 = 1;

/// `_manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// `exposure X.Y.Z`.
    pub writer: String,
    /// When the archive was finished (wall clock, RFC 3339).
    pub created_at: String,
    pub settings: ArchiveSettings,
    pub inputs: Vec<InputRecord>,
    pub events: u64,
    pub malformed: u64,
    /// The days (`YYYY-MM-DD`) with a part.
    pub days: Vec<String>,
    pub parts: Vec<PartRecord>,
    /// Written by `archive --seal` for an archive made before manifests existed: its parts
    /// as found then, vouched for by whoever sealed it (`sealed_by`), not by the writer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_by: Option<String>,
}

/// What decides an archive's content besides its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveSettings {
    /// The input format's name.
    pub format: String,
    /// How late an event may be, in seconds: when a day is written.
    pub lateness_secs: i64,
    /// A digest of the configuration file (`[input]` mapping), if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// One input of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    pub name: String,
    /// Its size when read (none for stdin).
    pub bytes: Option<u64>,
}

/// One part file, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Relative to the archive's root: `dt=YYYY-MM-DD/part-NNNNN.parquet`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// The first line of `_progress.jsonl`: what the run archives, checked by `--resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressHeader {
    pub writer: String,
    pub settings: ArchiveSettings,
    pub inputs: Vec<InputRecord>,
}

/// If `path` (with `/` separators) is an archive part, `(root, relative path)`:
/// `ROOT/dt=YYYY-MM-DD/part-NNNNN.parquet`.
pub fn split_part(path: &str) -> Option<(&str, &str)> {
    let (folder, file) = path.rsplit_once('/')?;
    let number = file.strip_prefix("part-")?.strip_suffix(".parquet")?;
    if number.len() != 5 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (root, day) = folder.rsplit_once('/').unwrap_or(("", folder));
    let date = day.strip_prefix("dt=")?;
    if date.len() != 10 {
        return None;
    }
    let relative = &path[root.len() + usize::from(!root.is_empty())..];
    Some((root, relative))
}

/// A part of an archive found by listing: its path (or URL) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPart {
    pub path: String,
    pub bytes: u64,
}

/// What is wrong with an archive's parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveProblem {
    #[error(
        "{root}: an archive without its manifest ({MANIFEST_FILE}){}: its {parts} part files \
         are not read; `exposure archive --resume` finishes it, or archive the logs again (an \
         archive of a release before manifests: `exposure archive --seal --out ROOT`)",
        if *.killed { ", left by an `exposure archive` that did not finish" } else { "" }
    )]
    NoManifest {
        root: String,
        parts: usize,
        killed: bool,
    },
    #[error("{root}: its manifest cannot be read: {message}; its parts are not read")]
    BadManifest { root: String, message: String },
    #[error("{root}: {part} is not in the archive's manifest (added by another run?): not read")]
    Unlisted { root: String, part: String },
    #[error(
        "{root}: {part} is {found} bytes, its manifest says {listed} (changed or cut): not read"
    )]
    Changed {
        root: String,
        part: String,
        listed: u64,
        found: u64,
    },
    #[error("{root}: {part} is in the archive's manifest but missing: its events are not read")]
    Missing { root: String, part: String },
}

/// The parts to read, and what is wrong, after [`check_parts`].
#[derive(Debug, Default)]
pub struct Checked {
    /// Paths of parts that must not be read.
    pub refused: BTreeSet<String>,
    pub problems: Vec<ArchiveProblem>,
}

/// An archive root's manifest as loaded by the caller: `Ok(None)` when there is none.
pub type Loaded = Result<Option<Manifest>, String>;

/// Holds `found` (every listed file; parts are picked out) against their roots' manifests.
/// `load(root)` gives a root's manifest, and whether a progress journal is there (a killed
/// `archive`); `expected(relative)` says whether a listed part was asked for (under the folder
/// or glob given, and in the time filter), for the missing-part check.
pub fn check_parts(
    found: &[FoundPart],
    mut load: impl FnMut(&str) -> (Loaded, bool),
    expected: impl Fn(&str, &str) -> bool,
) -> Checked {
    let mut by_root: BTreeMap<&str, Vec<(&str, &FoundPart)>> = BTreeMap::new();
    for part in found {
        if let Some((root, relative)) = split_part(&part.path) {
            by_root.entry(root).or_default().push((relative, part));
        }
    }
    let mut checked = Checked::default();
    for (root, parts) in by_root {
        let shown = if root.is_empty() { "." } else { root };
        let (loaded, killed) = load(root);
        let manifest = match loaded {
            Ok(Some(manifest)) => manifest,
            Ok(None) => {
                checked.problems.push(ArchiveProblem::NoManifest {
                    root: shown.to_string(),
                    parts: parts.len(),
                    killed,
                });
                checked
                    .refused
                    .extend(parts.iter().map(|(_, p)| p.path.clone()));
                continue;
            }
            Err(message) => {
                checked.problems.push(ArchiveProblem::BadManifest {
                    root: shown.to_string(),
                    message,
                });
                checked
                    .refused
                    .extend(parts.iter().map(|(_, p)| p.path.clone()));
                continue;
            }
        };
        let listed: BTreeMap<&str, &PartRecord> = manifest
            .parts
            .iter()
            .map(|p| (p.path.as_str(), p))
            .collect();
        let mut seen = BTreeSet::new();
        for (relative, part) in &parts {
            seen.insert(*relative);
            match listed.get(relative) {
                None => checked.problems.push(ArchiveProblem::Unlisted {
                    root: shown.to_string(),
                    part: relative.to_string(),
                }),
                Some(record) if record.bytes != part.bytes => {
                    checked.problems.push(ArchiveProblem::Changed {
                        root: shown.to_string(),
                        part: relative.to_string(),
                        listed: record.bytes,
                        found: part.bytes,
                    })
                }
                Some(_) => continue,
            }
            checked.refused.insert(part.path.clone());
        }
        for record in &manifest.parts {
            if !seen.contains(record.path.as_str()) && expected(root, &record.path) {
                checked.problems.push(ArchiveProblem::Missing {
                    root: shown.to_string(),
                    part: record.path.clone(),
                });
            }
        }
    }
    checked
}

/// Reads a manifest's bytes: only this format, of a version this release reads.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if manifest.format != FORMAT {
        return Err(format!("format `{}`, not `{FORMAT}`", manifest.format));
    }
    if manifest.version != VERSION {
        return Err(format!(
            "version {} (this release reads version {VERSION})",
            manifest.version
        ));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(parts: &[(&str, u64)]) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            writer: "exposure test".into(),
            created_at: "2026-12-06T00:00:00Z".into(),
            settings: ArchiveSettings {
                format: "jsonl".into(),
                lateness_secs: 300,
                config: None,
            },
            inputs: vec![],
            events: 0,
            malformed: 0,
            days: vec![],
            sealed: false,
            sealed_by: None,
            parts: parts
                .iter()
                .map(|(path, bytes)| PartRecord {
                    path: path.to_string(),
                    rows: 1,
                    bytes: *bytes,
                })
                .collect(),
        }
    }

    fn found(path: &str, bytes: u64) -> FoundPart {
        FoundPart {
            path: path.into(),
            bytes,
        }
    }

    #[test]
    fn parts_are_told_by_their_layout() {
        assert_eq!(
            split_part("a/b/dt=2026-03-16/part-00001.parquet"),
            Some(("a/b", "dt=2026-03-16/part-00001.parquet"))
        );
        assert_eq!(
            split_part("s3://bkt/arch/dt=2026-03-16/part-00000.parquet"),
            Some(("s3://bkt/arch", "dt=2026-03-16/part-00000.parquet"))
        );
        assert_eq!(
            split_part("dt=2026-03-16/part-00000.parquet"),
            Some(("", "dt=2026-03-16/part-00000.parquet"))
        );
        for other in [
            "a/dt=2026-03-16/part-00000-uuid.snappy.parquet",
            "a/2026-03-16/part-00000.parquet",
            "a/dt=2026-03-16/events.parquet",
            "a/part-00000.parquet",
        ] {
            assert_eq!(split_part(other), None, "{other}");
        }
    }

    #[test]
    fn a_whole_archive_passes_and_each_kind_of_damage_is_named() {
        let day = "dt=2026-03-16";
        let listed = manifest(&[
            (&format!("{day}/part-00000.parquet"), 10),
            (&format!("{day}/part-00001.parquet"), 20),
            ("dt=2026-03-17/part-00000.parquet", 30),
        ]);
        let all = [
            found("arch/dt=2026-03-16/part-00000.parquet", 10),
            found("arch/dt=2026-03-16/part-00001.parquet", 20),
            found("arch/dt=2026-03-17/part-00000.parquet", 30),
            found("arch/notes.txt", 1),
        ];
        let load = |_: &str| (Ok(Some(listed.clone())), false);
        let checked = check_parts(&all, load, |_, _| true);
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert!(checked.refused.is_empty());

        // A part added by a second run, one cut, one gone.
        let damaged = [
            found("arch/dt=2026-03-16/part-00000.parquet", 10),
            found("arch/dt=2026-03-16/part-00001.parquet", 7),
            found("arch/dt=2026-03-16/part-00002.parquet", 5),
        ];
        let checked = check_parts(&damaged, load, |_, _| true);
        let said: Vec<String> = checked.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].contains("part-00001.parquet is 7 bytes, its manifest says 20"));
        assert!(said[1].contains("part-00002.parquet is not in the archive's manifest"));
        assert!(
            said[2].contains(
                "dt=2026-03-17/part-00000.parquet is in the archive's manifest but missing"
            )
        );
        assert_eq!(checked.refused.len(), 2);
        // Not asked for (another day, or outside --since/--until): not missing.
        let checked = check_parts(&damaged[..1], load, |_, part| part.starts_with(day));
        assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);

        // No manifest: a killed archive.
        let checked = check_parts(&all, |_| (Ok(None), true), |_, _| true);
        assert_eq!(checked.refused.len(), 3);
        let said = checked.problems[0].to_string();
        assert!(
            said.starts_with("arch: an archive without its manifest"),
            "{said}"
        );
        assert!(said.contains("did not finish"), "{said}");
    }

    #[test]
    fn manifests_of_another_format_or_version_are_refused() {
        let mut m = manifest(&[]);
        m.version = 9;
        let bytes = serde_json::to_vec(&m).unwrap();
        assert!(parse_manifest(&bytes).unwrap_err().contains("version 9"));
        assert!(parse_manifest(b"{").is_err());
    }
}
