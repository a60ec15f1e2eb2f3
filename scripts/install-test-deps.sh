#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (run as root or with sudo).
#   age           interop tests decrypt Lifeboat's artifacts with the real age CLI
#   zstd, tar     the pipeline's compression and archive tools
#   radosgw, ceph the strict S3 server the tests start on 127.0.0.1 (Ceph RGW)
#   curl          radosgw's readiness probe
#   python3       builds hostile tar archives for the restore-guard tests
#   mariadb-server, mariadb-client
#                 the mariadb source and scratch tests start throwaway servers
#                 (mariadb-install-db, mariadbd) and dump/restore with the
#                 standard tools (mariadb-dump, mariadb)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  age zstd tar gzip curl python3 ca-certificates \
  radosgw ceph-mon ceph-osd ceph-common \
  mariadb-server mariadb-client chromium >/dev/null
echo "test dependencies installed"
