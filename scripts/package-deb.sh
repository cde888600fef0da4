#!/usr/bin/env bash
# Builds the Debian package: the release binary, then the man pages and shell completions made
# from it (they cannot drift from the flags), then `cargo deb --no-build`. Prints the .deb's path.
# Needs cargo-deb (`cargo install cargo-deb --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/exposure"
generated=packaging/generated
rm -rf "$generated"
mkdir -p "$generated/completions"
"$bin" man --out "$generated/man" 2>/dev/null
"$bin" completions bash > "$generated/completions/exposure.bash"
"$bin" completions zsh > "$generated/completions/_exposure"
"$bin" completions fish > "$generated/completions/exposure.fish"
# Stripped: the release profile keeps line tables for profiling, the package need not.
cargo deb --no-build --locked --strip "$@" | tail -1
