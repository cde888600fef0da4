#!/usr/bin/env bash
# Installs the programs the integration tests start themselves (on 127.0.0.1 or a Unix socket
# only): Prometheus Alertmanager (sink tests), PostgreSQL 15 with pgaudit (the pgaudit proof).
# Debian packages; needs root (or sudo).
set -euo pipefail
need=()
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -f /usr/lib/postgresql/15/lib/pgaudit.so ] || need+=(postgresql-15-pgaudit)
if [ ${#need[@]} -eq 0 ]; then
    echo "test dependencies present"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
# The packages' own services are not wanted (the tests start their own instances).
$sudo systemctl disable --now prometheus-alertmanager postgresql >/dev/null 2>&1 || true
