#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs them all.
# The browser tests use Debian's Chromium (never a downloaded browser); PostgreSQL tests use
# 127.0.0.1:5432 (trust auth, database "test").
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "浏览器测试需要 Chromium：请以 root 运行 apt-get install -y chromium" >&2
    fi
fi
[ -d .venv ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
export TZ=UTC   # a stray naive date.today() shows up as a wrong-day bug
exec .venv/bin/python -m pytest "$@"
