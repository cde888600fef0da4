#!/usr/bin/env bash
# Installs what the build and the integration tests need: OpenSSL's and zlib's headers (librdkafka
# is built from source by the rdkafka crate, with make), and the programs the tests start themselves (on
# 127.0.0.1 or a Unix socket only): Prometheus Alertmanager (sink tests), PostgreSQL 15 with
# pgaudit (the pgaudit proof), the tansu Kafka-protocol broker (Kafka tests; from crates.io,
# ~10 min to build the first time), moto's S3-compatible server (object-storage tests; PyPI),
# Azurite's Blob service (Azure tests; npm), Debian's Chromium (the forensic report is rendered in
# a real headless browser).
# Debian packages need root (or sudo).
set -euo pipefail
need=()
command -v make >/dev/null || need+=(make)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -f /usr/lib/postgresql/15/lib/pgaudit.so ] || need+=(postgresql-15-pgaudit)
command -v azurite-blob >/dev/null || command -v npm >/dev/null || need+=(nodejs npm)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
    # The packages' own services are not wanted (the tests start their own instances).
    $sudo systemctl disable --now prometheus-alertmanager postgresql >/dev/null 2>&1 || true
fi
# moto's S3-compatible server (object-storage tests), from PyPI.
if ! command -v moto_server >/dev/null; then
    echo "installing moto's S3 server from PyPI"
    python3 -m pip install --quiet 'moto[server]'
    if command -v pyenv >/dev/null; then pyenv rehash; fi
    hash -r
fi
# Azurite's Blob service (Azure object-storage tests), from npm.
if ! command -v azurite-blob >/dev/null; then
    echo "installing Azurite from npm"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo npm install --global --silent azurite@3.37.0
    hash -r
fi
if ! command -v tansu >/dev/null && [ ! -x "$HOME/.cargo/bin/tansu" ]; then
    echo "installing the tansu broker from crates.io (once, ~10 min)"
    cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --quiet
fi
echo "test dependencies present"
