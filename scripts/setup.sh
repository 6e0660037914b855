#!/usr/bin/env bash
# Installs (with apt-get) every package in scripts/packages.txt that is missing.
# Idempotent: when everything is there it only checks, quickly.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/packages.txt" | grep -v '^$')
# shellcheck source=torch_source.sh
source "$here/torch_source.sh"
if [[ -n "$ds_torch_prefix" ]]; then
  # A PyTorch wheel's LibTorch (a GPU machine): Debian's torch packages are not wanted.
  mapfile -t wanted < <(printf '%s\n' "${wanted[@]}" | grep -vx -e libtorch-dev -e libgloo-dev -e python3-torch)
fi
missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v apt-get > /dev/null 2>&1 || ! $sudo apt-get update -q; then
  if [[ -n "$ds_torch_prefix" ]]; then
    # The GPU machines have no package registry but carry what the build needs
    # (docs/development.md); the build names anything that is really missing.
    echo "setup: warning: cannot install ${missing[*]} (no package registry); going on" >&2
    exit 0
  fi
  echo "setup: apt-get update failed; cannot install ${missing[*]}" >&2
  exit 1
fi
if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  if [[ -n "$ds_torch_prefix" ]]; then
    # apt-get update succeeds with only warnings when no mirror can be reached.
    echo "setup: warning: could not install ${missing[*]}; going on (the build names what is really missing)" >&2
    exit 0
  fi
  echo "setup: apt-get install failed for ${missing[*]}" >&2
  exit 1
fi
