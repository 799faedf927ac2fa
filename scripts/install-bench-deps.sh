#!/usr/bin/env bash
# Installs what the benchmark harness needs beyond pip: redis-server + redis-benchmark
# (the side-by-side reference) and h2load (the HTTP/2 load generator). Idempotent and
# quick when everything is already there: it asks apt only for what is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have redis-server || need+=(redis-server)
have redis-benchmark || need+=(redis-tools)
have h2load || need+=(nghttp2-client)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "install-bench-deps: apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
