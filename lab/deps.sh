#!/usr/bin/env bash
# xenkdump.fleet Xen lab: install the host packages the lab needs (Debian/Ubuntu, as root).
# Idempotent: when every package is already installed it does nothing (no apt-get update).
# Copyright: xenkdump.fleet developers; GPL-3.0-or-later.
set -euo pipefail

# qemu-system-x86: the emulator (TCG; no KVM needed)    qemu-utils: qemu-img (overlays)
# debootstrap: the guest root from Debian's mirror      e2fsprogs: mke2fs -d, debugfs
# fdisk: sfdisk for the partition table                 openssh-client: ssh, ssh-keygen
# python3: free-port probe                              coreutils/util-linux: timeout, flock
# gcc, libc6-dev: the fill guests' static /init (lab/domu/fill.c)
PKGS=(qemu-system-x86 qemu-utils debootstrap e2fsprogs fdisk openssh-client python3 util-linux coreutils ca-certificates
      gcc libc6-dev)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
        missing+=("$p")
    fi
done
if (( ${#missing[@]} == 0 )); then
    echo "lab/deps.sh: all host packages present (${PKGS[*]})"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "lab/deps.sh: missing ${missing[*]}; run as root (or: sudo $0)" >&2
    exit 1
fi
echo "lab/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -q -y --no-install-recommends "${missing[@]}"
