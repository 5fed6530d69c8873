#!/usr/bin/env bash
# Installs what the project needs to build and test, if missing. Idempotent; uses sudo when not root.
# Debian/Ubuntu packages: liblua5.4-dev libsqlite3-dev libssl-dev pkg-config libxml2-utils;
# with --bench also nginx-light (the static responder `m2mrsp bench server` measures beside).
set -euo pipefail

packages=(liblua5.4-dev libsqlite3-dev libssl-dev pkg-config libxml2-utils)
if [ "${1:-}" = "--bench" ]; then packages+=(nginx-light); fi
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "bootstrap: system packages present (${packages[*]})"
fi

command -v swift >/dev/null 2>&1 || { echo "bootstrap: swift toolchain not found on PATH" >&2; exit 1; }
for pc in lua5.4 openssl sqlite3; do
    pkg-config --exists "$pc" || { echo "bootstrap: pkg-config cannot find $pc" >&2; exit 1; }
done
