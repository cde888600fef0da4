#!/usr/bin/env bash
# Installs the programs the integration tests start themselves (on 127.0.0.1 only):
# Prometheus Alertmanager (sink tests). Debian packages; needs root (or sudo).
set -euo pipefail
need=()
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
if [ ${#need[@]} -eq 0 ]; then
    echo "test dependencies present"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
# The package's own service is not wanted (the tests start their own instances).
$sudo systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
