//! What the command line says about itself: the man pages (clap_mangen) and the shell
//! completions (clap_complete), both made from the clap definitions in [`super::args`] so
//! that they cannot drift from the flags. The Debian package and the container image ship
//! what `exposure man --out` and `exposure completions` write.

use super::args::Cli;
use clap::CommandFactory;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The command tree as the pages describe it: built (so each subcommand knows its full
/// name, `exposure-baseline-allow`), without clap's `help` subcommand.
fn command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// One page, headed with the program's name and version (not the subcommand's).
fn man(command: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(command)
        .source(concat!("exposure ", env!("CARGO_PKG_VERSION")))
        .manual("exposure manual")
}

/// Every page: `exposure` first, then each subcommand depth-first in the order `--help` lists
/// them (hidden ones left out).
pub fn pages() -> Vec<clap_mangen::Man> {
    fn walk(command: &clap::Command, pages: &mut Vec<clap_mangen::Man>) {
        pages.push(man(command.clone()));
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, pages);
        }
    }
    let mut pages = Vec::new();
    walk(&command(), &mut pages);
    pages
}

/// The page of `path` (`[]` for `exposure` itself, `["baseline", "allow"]`), rendered.
pub fn page(path: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut command = command();
    for (depth, name) in path.iter().enumerate() {
        let Some(sub) = command.find_subcommand(name).filter(|s| !s.is_hide_set()) else {
            let parent = std::iter::once("exposure")
                .chain(path[..depth].iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            let known: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
            return Err(crate::config::ConfigError::Usage(format!(
                "`{parent}` has no subcommand `{name}` (it has: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .into());
        };
        command = sub.clone();
    }
    let mut out = Vec::new();
    man(command).render(&mut out)?;
    Ok(out)
}

/// Writes every page into `dir` (created if missing); returns the files written.
pub fn write_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    pages()
        .into_iter()
        .map(|page| page.generate_to(dir))
        .collect()
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "exposure", out);
}
