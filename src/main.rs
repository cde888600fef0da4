//! The `exposure` binary: parses flags, runs, prints an error chain once. All logic is in the
//! library.

use exposure::cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            exposure::report::to_stderr(format_args!("exposure: error: {error:#}"));
            cli::exit_code_for(&error)
        }
    }
}
