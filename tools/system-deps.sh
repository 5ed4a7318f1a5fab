#!/usr/bin/env bash
# System packages some tests need, installed from Debian/Ubuntu when missing:
#   chromium    the catalog web page, tested end to end in headless Chromium (Playwright drives it; no download)
#   postgresql  the catalog's PostgreSQL store, tested against a throw-away server on loopback
# Without root (or passwordless sudo) or apt-get, nothing is installed and those tests skip with the reason.
set -uo pipefail

need=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    need+=(chromium)
fi
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need+=(postgresql)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no apt-get; install ${need[*]} yourself or the tests that need them will skip" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "note: not root; run 'sudo apt-get install ${need[*]}' or the tests that need them will skip" >&2
    exit 0
fi
echo "installing system packages for the tests: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && \
       "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "note: apt-get could not install ${need[*]}; the tests that need them will skip" >&2
fi
exit 0
