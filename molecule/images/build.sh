#!/bin/sh
# Build a systemd-capable Debian container image for molecule with debootstrap.
#
#   molecule/images/build.sh <suite> <image-name>
#   e.g. molecule/images/build.sh bookworm localhost/xenkdump-bookworm:latest
#
# No container registry is needed: the root filesystem comes from Debian's mirror
# (override with XENKDUMP_DEBIAN_MIRROR) and is imported with `podman import`.
# Cache: when an image of that name exists and its label xenkdump.recipe matches
# the hash of this recipe (script + suite + package list + mirror), nothing is done.
# Set XENKDUMP_IMAGE_REBUILD=1 to force a rebuild.
set -eu

suite=${1:?usage: build.sh <suite> <image-name>}
image=${2:-localhost/xenkdump-$suite:latest}
mirror=${XENKDUMP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=systemd,systemd-sysv,python3,python3-apt,dbus,sudo,procps,ca-certificates,debconf-utils,gpg

for tool in debootstrap podman sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: $tool not found (apt-get install debootstrap podman)" >&2; exit 2; }
done

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
recipe=$( { cat "$self"; printf '%s\n' "$suite" "$include" "$mirror"; } | sha256sum | cut -c1-16)

if podman image exists "$image"; then
    have=$(podman image inspect --format '{{ index .Labels "xenkdump.recipe" }}' "$image" 2>/dev/null || true)
    if [ "$have" = "$recipe" ] && [ "${XENKDUMP_IMAGE_REBUILD:-0}" != 1 ]; then
        echo "build.sh: $image is up to date (recipe $recipe)"
        exit 0
    fi
    echo "build.sh: $image has recipe '${have}', want '$recipe': rebuilding"
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/xenkdump-image.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root

echo "build.sh: debootstrap $suite from $mirror"
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror"

# Container-friendly systemd: no getty on a console that does not exist, no
# units that need hardware; a machine-id is made at first boot.
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
: > "$root/etc/machine-id"
for unit in getty.target console-getty.service systemd-timesyncd.service \
            systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
printf 'deb %s %s main\n' "$mirror" "$suite" > "$root/etc/apt/sources.list"
# Like a real host, the image keeps its apt lists (check mode cannot update them and
# needs them to predict installs); downloaded .debs and docs are dropped.
chroot "$root" apt-get update -qq || echo "build.sh: apt-get update in the image failed; lists from debootstrap kept" >&2
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*

echo "build.sh: importing as $image"
tar -C "$root" -c . | podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL xenkdump.recipe=$recipe" \
    --change "LABEL xenkdump.suite=$suite" \
    - "$image"
echo "build.sh: built $image (recipe $recipe)"
