#!/usr/bin/env bash
# Packaging and operations checks (docs/install.md), run by .ci/run after the tests: the Debian
# package built, installed with dpkg, its systemd unit verified and scored, the installed binary
# run on the installed sample, the package removed and purged; the Prometheus rules checked and
# unit-tested; every Kubernetes manifest rendered and validated against the Kubernetes schemas;
# the container image built with podman from a base made here, its entrypoint run on the sample.
# Installs what is missing: cargo-deb (crates.io), podman, mmdebstrap, prometheus (promtool),
# systemd (Debian), kubernetes-validate (PyPI). Needs root for dpkg and podman.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

need=()
command -v podman >/dev/null || need+=(podman)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The package's own Prometheus server is not wanted (promtool works offline).
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v kubernetes-validate >/dev/null || {
    python3 -m pip install --quiet 'kubernetes-validate==1.37.*'
    if command -v pyenv >/dev/null; then pyenv rehash; fi
    hash -r
}
command -v cargo-deb >/dev/null || cargo install cargo-deb --version 3.8.0 --locked --quiet

echo "== the sample through the freshly built binary (the reference output) ($SECONDS s)"
cargo build --release --locked --quiet
"$target/release/exposure" replay sample-logs/incident.jsonl > "$work/reference.jsonl" 2>/dev/null
test -s "$work/reference.jsonl"

echo "== Debian package: build, install, verify the unit, run, remove, purge ($SECONDS s)"
deb="$(bash scripts/package-deb.sh | grep -o '/.*\.deb$' || true)"
[ -n "$deb" ] || deb="$(ls -t "$target"/debian/exposure_*.deb | head -1)"
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --contents "$deb" | awk '{print $6}' > "$work/contents"
for path in ./usr/bin/exposure ./etc/exposure/exposure.toml ./etc/default/exposure \
    ./usr/share/man/man1/exposure.1.gz ./usr/share/man/man1/exposure-watch.1.gz \
    ./usr/share/man/man1/exposure-baseline-allow.1.gz \
    ./usr/share/bash-completion/completions/exposure ./usr/share/zsh/vendor-completions/_exposure \
    ./usr/share/fish/vendor_completions.d/exposure.fish ./usr/share/exposure/sample-logs/incident.jsonl; do
    grep -qx "$path" "$work/contents" || { echo "the package lacks $path"; exit 1; }
done
grep -q 'lib/systemd/system/exposure.service$' "$work/contents" || { echo "the package lacks the unit"; exit 1; }
$sudo dpkg -i "$deb"
unit="$(dpkg -L exposure | grep 'systemd/system/exposure.service$')"
systemd-analyze verify "$unit"
score="$(systemd-analyze security --offline=yes "$unit" | sed -n 's/.*Overall exposure level for exposure.service: \([0-9.]*\).*/\1/p')"
echo "systemd-analyze security: exposure level $score (goal: 2.0 or less)"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'
/usr/bin/exposure --version
/usr/bin/exposure config check /etc/exposure/exposure.toml
/usr/bin/exposure replay /usr/share/exposure/sample-logs/incident.jsonl > "$work/installed.jsonl" 2>/dev/null
cmp "$work/reference.jsonl" "$work/installed.jsonl"
$sudo dpkg -r exposure
test ! -e /usr/bin/exposure && test ! -e "$unit"
test -e /etc/exposure/exposure.toml    # a removed package keeps its configuration
$sudo dpkg -P exposure
test ! -e /etc/exposure/exposure.toml && test ! -e /etc/default/exposure
! dpkg -s exposure >/dev/null 2>&1
echo "installed, verified, ran the sample, removed and purged cleanly"

echo "== Prometheus rules: promtool check and unit tests ($SECONDS s)"
promtool check rules deploy/prometheus/exposure-rules.yml
(cd deploy/prometheus && promtool test rules exposure-rules.test.yml)

echo "== Kubernetes manifests: rendered with kustomize, validated against the schemas ($SECONDS s)"
for overlay in deploy/kubernetes/*/; do
    [ "$(basename "$overlay")" = base ] && continue
    rendered="$work/$(basename "$overlay").yaml"
    if command -v kubectl >/dev/null; then
        kubectl kustomize "$overlay" > "$rendered"
    else
        # No kustomize here: each resource file on its own (the generated ConfigMap is skipped).
        echo "kubectl not installed: $overlay validated file by file, not rendered"
        for f in "$overlay"*.yaml deploy/kubernetes/base/*.yaml; do
            case "$(basename "$f")" in kustomization.yaml) continue ;; esac
            printf -- '---\n' >> "$rendered"; cat "$f" >> "$rendered"
        done
    fi
    kubernetes-validate --strict --quiet "$rendered"
    echo "$overlay: $(grep -c '^kind:' "$rendered") resources valid"
done

echo "== container image: podman build from a base made here, the entrypoint run on the sample ($SECONDS s)"
if ! podman image exists localhost/exposure-ci-base; then
    mmdebstrap --quiet --variant=minbase --include=ca-certificates,libssl3,zlib1g bookworm "$work/base.tar"
    podman import --quiet "$work/base.tar" localhost/exposure-ci-base >/dev/null
    rm -f "$work/base.tar"
fi
context="$work/context"
mkdir -p "$context/packaging"
cp Containerfile .containerignore "$context/"
cp packaging/exposure.toml "$context/packaging/"
cp -r sample-logs "$context/"
# Stripped as the build stage strips it.
strip --strip-debug -o "$context/exposure" "$target/release/exposure"
# RUN steps use chroot isolation: this machine's crun cannot start containers (NOTES.md).
podman build --quiet --isolation chroot --build-arg BASE=localhost/exposure-ci-base \
    --build-arg BINARY_FROM=prebuilt -t localhost/exposure:ci "$context" >/dev/null
podman image inspect localhost/exposure:ci --format '{{.Config.User}} {{.Config.Entrypoint}} {{.Config.Volumes}}'
test "$(podman image inspect localhost/exposure:ci --format '{{.Config.User}}')" = "65532:65532"
container="$(podman create localhost/exposure:ci)"
root="$(podman mount "$container")"
entrypoint="$(podman image inspect localhost/exposure:ci --format '{{index .Config.Entrypoint 0}}')"
chroot --userspec=65532:65532 "$root" "$entrypoint" config check /etc/exposure/exposure.toml
chroot --userspec=65532:65532 "$root" "$entrypoint" replay /usr/share/exposure/sample-logs/incident.jsonl \
    > "$work/image.jsonl" 2>/dev/null
# The state volume belongs to the runtime user.
test "$(stat -c '%u %a' "$root/var/lib/exposure")" = "65532 700"
podman umount "$container" >/dev/null
podman rm "$container" >/dev/null
cmp "$work/reference.jsonl" "$work/image.jsonl"
echo "packaging checks done in $SECONDS s"
echo "image: $(podman image inspect localhost/exposure:ci --format '{{.Size}}') bytes; the sample replays byte-identically in it"
