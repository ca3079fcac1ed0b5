# shellcheck shell=bash
# A second, cached venv for the oldest supported controller: ansible-core 2.19 on Python 3.11.
# Sourced by scripts/test (tier_sanity).  Usage: venv219 [DIR]  -> prints the venv's (absolute) path.
#
# DIR defaults to $XENKDUMP_VENV219, else ~/.cache/xenkdump/venv-core219: outside the checkout, so
# every clone (CI runs in a fresh one) shares it. It is rebuilt only when the wanted ansible-core spec
# or the Python changes (stamp file).
# ansible-test --venv bootstraps pip with a downloaded get-pip.py whose host is unreachable here:
# the same stand-in scripts/bootstrap seeds is copied for every pip version this ansible-test pins.

VENV219_CORE_SPEC=${VENV219_CORE_SPEC:-"ansible-core==2.19.*"}

pick_python311() {
    local c
    for c in "$(pyenv root 2>/dev/null)/versions/"3.11*/bin/python3.11 python3.11 /usr/bin/python3.11; do
        if [ -x "$c" ] || command -v "$c" >/dev/null 2>&1; then
            "$c" -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
                && { command -v "$c" 2>/dev/null || echo "$c"; return 0; }
        fi
    done
    echo "no Python 3.11 with venv/ensurepip found (pyenv install 3.11 or apt-get install python3.11-venv)" >&2
    return 1
}

# seed_get_pip VENV_PYTHON: copy the get-pip stand-in for every pip version that venv's ansible-test pins
seed_get_pip() {
    local py=$1 v f
    for v in $("$py" - <<'PYEOF'
import glob, os, re
import ansible_test
root = os.path.dirname(ansible_test.__file__)
vers = set()
for path in glob.glob(os.path.join(root, "_data", "requirements", "*.txt")) + \
        glob.glob(os.path.join(root, "_internal", "*.py")):
    with open(path) as fh:
        vers.update(re.findall(r"\bpip\s*==?\s*['\"]?([0-9]+\.[0-9][0-9.]*)", fh.read()))
print(" ".join(sorted(vers)))
PYEOF
); do
        f="$HOME/.ansible/test/cache/get_pip_${v//./_}.py"
        mkdir -p "$(dirname "$f")"
        cmp -s scripts/lib/get_pip_standin.py "$f" 2>/dev/null || cp scripts/lib/get_pip_standin.py "$f"
    done
}

venv219() {
    local dir=${1:-${XENKDUMP_VENV219:-${XDG_CACHE_HOME:-$HOME/.cache}/xenkdump/venv-core219}} py stamp want
    py=$(pick_python311) || return 1
    want="$("$py" -c 'import sys; print(sys.version.split()[0])') $VENV219_CORE_SPEC"
    stamp="$dir/.xenkdump-stamp"
    if [ ! -x "$dir/bin/ansible-test" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "creating $dir ($want)"
        rm -rf "$dir" && mkdir -p "$(dirname "$dir")"
        "$py" -m venv "$dir" || return 1
        "$dir/bin/pip" install -q --disable-pip-version-check "$VENV219_CORE_SPEC" >&2 || return 1
        echo "$want" > "$stamp"
    fi
    seed_get_pip "$dir/bin/python" || return 1
    (cd "$dir" && pwd)
}
