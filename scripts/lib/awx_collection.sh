# shellcheck shell=bash
# awx.awx for awx/configure.yml's syntax check, lint and module-option checks.
#
# Galaxy is unreachable here and ansible >= 11 on PyPI no longer ships awx.awx; the last community
# package that does (ansible 10.7.0) carries awx.awx 24.6.1 (awxkit on PyPI is 24.6.1 too).  Take only that
# collection out of its wheel (pip download, no install: it would replace .venv's ansible-core) and put it
# beside the xenkdump.fleet link in .build/collections, the path scripts/test exports. The wheel is
# kept in ~/.cache/xenkdump/awx-collection for every clone.
# Usage (sourced): awx_collection [COLLECTIONS_DIR]   -> prints the collections dir; idempotent.

AWX_FROM_ANSIBLE=${AWX_FROM_ANSIBLE:-10.7.0}
AWX_VERSION=${AWX_VERSION:-24.6.1}

awx_collection() {
    local root=${1:-.build/collections} dl=${XDG_CACHE_HOME:-$HOME/.cache}/xenkdump/awx-collection
    local dest="$root/ansible_collections/awx/awx"
    if [ -f "$dest/MANIFEST.json" ] && grep -q "\"version\": \"$AWX_VERSION\"" "$dest/MANIFEST.json"; then
        echo "$root"; return 0
    fi
    log "installing awx.awx $AWX_VERSION (from the ansible $AWX_FROM_ANSIBLE wheel on PyPI) into $root"
    mkdir -p "$dl"
    if ! ls "$dl"/ansible-"$AWX_FROM_ANSIBLE"-*.whl >/dev/null 2>&1; then
        "$REPO/.venv/bin/pip" download -q --disable-pip-version-check --no-deps \
            "ansible==$AWX_FROM_ANSIBLE" -d "$dl" >&2 || return 1
    fi
    rm -rf "$dest" && mkdir -p "$dest"
    "$REPO/.venv/bin/python" - "$dl"/ansible-"$AWX_FROM_ANSIBLE"-*.whl "$root" "$AWX_VERSION" <<'PYEOF' || return 1
import json, os, sys, zipfile
whl, root, want = sys.argv[1:4]
prefix = "ansible_collections/awx/awx/"
with zipfile.ZipFile(whl) as zf:
    names = [n for n in zf.namelist() if n.startswith(prefix)]
    if not names:
        sys.exit("no awx.awx in " + whl)
    for n in names:
        if not n.endswith("/"):
            zf.extract(n, root)
with open(os.path.join(root, prefix, "MANIFEST.json")) as fh:
    got = json.load(fh)["collection_info"]["version"]
if got != want:
    sys.exit("awx.awx %s in %s, wanted %s" % (got, whl, want))
PYEOF
    echo "$root"
}
