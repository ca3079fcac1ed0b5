# shellcheck shell=bash
# Shared helpers for scripts/*.
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Python 3.12 where present (ansible-core 2.21), else 3.11, else python3.
pick_python() {
    local c
    for c in python3.12 "$(pyenv root 2>/dev/null)/versions/3.12"*/bin/python3.12 python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 || [ -x "$c" ]; then
            "$c" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null && { command -v "$c" || echo "$c"; return 0; }
        fi
    done
    echo "no Python >= 3.11 with venv found" >&2; return 1
}

collections_path() { echo "$(pwd)/.build/collections"; }
