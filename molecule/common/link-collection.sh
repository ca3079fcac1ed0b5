#!/bin/sh
# Make this checkout importable as the collection xenkdump.fleet for molecule and for
# `ansible-playbook playbooks/site.yml` from the checkout:
#   .build/collections/ansible_collections/xenkdump/fleet -> <checkout>
# Use with ANSIBLE_COLLECTIONS_PATH=<checkout>/.build/collections (molecule.yml sets it).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
dir="$top/.build/collections/ansible_collections/xenkdump"
mkdir -p "$dir"
if [ "$(readlink "$dir/fleet" 2>/dev/null || true)" != "$top" ]; then
    rm -f "$dir/fleet"
    ln -s "$top" "$dir/fleet"
fi
echo "xenkdump.fleet -> $top (ANSIBLE_COLLECTIONS_PATH=$top/.build/collections)"
