#!/usr/bin/env bash
# Installs what a Caliopen node needs on Debian (and, with --test-peers, what the test suite needs):
# Debian packages when their commands are missing, npm packages when node_modules is missing or stale.
# Idempotent and quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test_peers=false
for arg in "$@"; do
  case "$arg" in
    --test-peers) with_test_peers=true ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup.sh: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# command → Debian package
declare -A wanted=([nats-server]=nats-server)
if $with_test_peers; then
  wanted[gpg]=gnupg           # makes the OpenPGP keys of the public-key tests
  wanted[sks]=sks             # a real HKP key server, for key discovery and publishing
  wanted[dnsmasq]=dnsmasq-base # a real DNS server, for DNS OPENPGPKEY key discovery
  wanted[dovecot]=dovecot-imapd # the IMAP server of the IMAP bridge tests
  wanted[swaks]=swaks         # a real SMTP client, for the inbound SMTP tests
  wanted[smtp-sink]=postfix   # postfix's smtp-sink: a real SMTP server receiving outbound mail
  wanted[mbsync]=isync        # the baseline of the IMAP fetch benchmark
  wanted[openssl]=openssl     # a private CA and certificates for the TLS tests
  wanted[chromium]=chromium   # a real headless browser for the dashboard tests (driven by playwright-core)
fi

missing=()
for command in "${!wanted[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${wanted[$command]}")
done
# Dovecot's SMTP submission server (no command on the PATH): the OAuth2 (XOAUTH2) SMTP tests log in to it.
if $with_test_peers && [ ! -x /usr/lib/dovecot/submission ]; then missing+=(dovecot-submissiond); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "setup.sh: missing Debian packages: ${missing[*]} (run as root or install them with apt-get)" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup.sh: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
