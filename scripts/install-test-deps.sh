#!/usr/bin/env bash
# Installs what the test suite needs beyond pip: Debian packages and the npm interop
# clients. Idempotent and quick when everything is already there: it asks apt only for
# what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have curl || need+=(curl)
if have curl && ! curl --version | grep -q HTTP2; then need+=(curl); fi
have node || need+=(nodejs)
have npm || need+=(npm)
pkg() { dpkg -s "$1" >/dev/null 2>&1 || need+=("$1"); }
# Kerberos: the KDC and tools for k5test, headers to build python-gssapi.
pkg krb5-kdc; pkg krb5-admin-server; pkg krb5-user; pkg libkrb5-dev
# LDAP: a real OpenLDAP server and its tools.
pkg slapd; pkg ldap-utils
# TLS scanning, and Cyrus SASL as an independent SASL client.
pkg sslscan; pkg sasl2-bin; pkg libsasl2-modules

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "install-test-deps: apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

node_dir="$here/tests/interop/node"
stamp="$node_dir/node_modules/.gridactor-stamp"
if [ ! -f "$stamp" ] || [ "$node_dir/package-lock.json" -nt "$stamp" ]; then
  echo "install-test-deps: npm ci in tests/interop/node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi

# A real OAuth 2.0 authorization server (oidc-provider 9.13.3, pinned) for the token-realm tests.
oauth_dir="$here/tests/interop/oauth"
oauth_stamp="$oauth_dir/node_modules/.gridactor-stamp"
if [ ! -f "$oauth_stamp" ] || [ "$oauth_dir/package-lock.json" -nt "$oauth_stamp" ]; then
  echo "install-test-deps: npm ci in tests/interop/oauth"
  (cd "$oauth_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$oauth_stamp"
fi
