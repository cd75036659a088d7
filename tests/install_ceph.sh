#!/usr/bin/env bash
# Installs Debian's Ceph packages for `make test-ceph` when radosgw is missing.
# Exit 0: Ceph is there; exit 3: it could not be installed (the caller prints the SKIP line).
set -u
command -v radosgw >/dev/null 2>&1 && command -v ceph-mon >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || exit 3
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null 2>&1 || exit 3
$sudo apt-get install -y -qq --no-install-recommends \
    radosgw ceph-mon ceph-osd ceph-common >/dev/null 2>&1 || exit 3
exit 0
