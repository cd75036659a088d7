#!/usr/bin/env bash
# Installs Debian's chromium for `make docs-check-ci` when it is missing.
# Exit 0: chromium is there; exit 3: it could not be installed (the caller prints the SKIP line).
set -u
command -v chromium >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || exit 3
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 \
        && $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } \
    || exit 3
exit 0
