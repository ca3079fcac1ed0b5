# shellcheck shell=bash
# xenkdump.fleet Xen lab: shared settings and helpers, sourced by lab/lab and lab/build.sh.
# Copyright: xenkdump.fleet developers; GPL-3.0-or-later.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_CACHE=${XENKDUMP_LAB_CACHE:-$HOME/.cache/xenkdump-lab}
LAB_NAME=${XENKDUMP_LAB_NAME:-lab}

# Build-time parameters (part of the image recipe hash).
LAB_SUITE=${XENKDUMP_LAB_SUITE:-bookworm}
LAB_MIRROR=${XENKDUMP_LAB_MIRROR:-http://deb.debian.org/debian}
LAB_SECURITY_MIRROR=${XENKDUMP_LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
LAB_DISK_MB=${XENKDUMP_LAB_DISK_MB:-4096}
LAB_XEN_OPTS=${XENKDUMP_LAB_XEN_OPTS:-console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all}

# Run-time parameters (not part of the hash).
LAB_MEM=${XENKDUMP_LAB_MEM:-3072}
LAB_CPUS=${XENKDUMP_LAB_CPUS:-2}
LAB_SSH_TIMEOUT=${XENKDUMP_LAB_SSH_TIMEOUT:-600}
LAB_REBOOT_TIMEOUT=${XENKDUMP_LAB_REBOOT_TIMEOUT:-900}
LAB_STOP_TIMEOUT=${XENKDUMP_LAB_STOP_TIMEOUT:-300}
LAB_FIRSTBOOT_TIMEOUT=${XENKDUMP_LAB_FIRSTBOOT_TIMEOUT:-2400}
LAB_DUMP_MB=${XENKDUMP_LAB_DUMP_MB:-}       # MiB: a second disk mounted at /var/crash (empty: none)
LAB_RESTRICT=${XENKDUMP_LAB_RESTRICT:-off}   # on: guest gets no outbound network (hostfwd still works)

LAB_KEY="$LAB_CACHE/ssh/id_ed25519"
LAB_QEMU=${XENKDUMP_LAB_QEMU:-qemu-system-x86_64}

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

lab_check_params() {
    [[ $LAB_NAME =~ ^[A-Za-z0-9_-]{1,32}$ ]] || die "XENKDUMP_LAB_NAME='$LAB_NAME': use 1-32 letters, digits, '_' or '-'"
    [[ $LAB_MEM =~ ^[0-9]+$ ]] && (( LAB_MEM >= 1536 )) || die "XENKDUMP_LAB_MEM='$LAB_MEM': give MiB as an integer >= 1536 (dom0 alone takes 1024)"
    [[ $LAB_CPUS =~ ^[0-9]+$ ]] && (( LAB_CPUS >= 1 && LAB_CPUS <= 16 )) || die "XENKDUMP_LAB_CPUS='$LAB_CPUS': give an integer 1..16"
    [[ $LAB_DISK_MB =~ ^[0-9]+$ ]] && (( LAB_DISK_MB >= 2048 )) || die "XENKDUMP_LAB_DISK_MB='$LAB_DISK_MB': give MiB as an integer >= 2048"
    case $LAB_XEN_OPTS in *\"*|*\\*|*\$*|*\`*) die "XENKDUMP_LAB_XEN_OPTS must not contain quotes, backslashes, \$ or backticks" ;; esac
    case $LAB_RESTRICT in on|off) ;; *) die "XENKDUMP_LAB_RESTRICT='$LAB_RESTRICT': use on or off" ;; esac
    [[ -z $LAB_DUMP_MB ]] || { [[ $LAB_DUMP_MB =~ ^[0-9]+$ ]] && (( LAB_DUMP_MB >= 16 )); } \
        || die "XENKDUMP_LAB_DUMP_MB='$LAB_DUMP_MB': give MiB as an integer >= 16 (or leave it empty)"
}

# The ssh keypair used to reach every lab instance; created once, lives in the cache.
lab_ensure_key() {
    if [[ ! -s $LAB_KEY ]]; then
        mkdir -p "$(dirname "$LAB_KEY")"
        chmod 700 "$(dirname "$LAB_KEY")"
        ssh-keygen -q -t ed25519 -N '' -C xenkdump-lab -f "$LAB_KEY"
    fi
}

# Hash of everything the golden image is made from: the recipe files and the build parameters.
lab_recipe_hash() {
    lab_ensure_key
    {
        printf 'suite=%s\ndisk=%s\nxen=%s\n' "$LAB_SUITE" "$LAB_DISK_MB" "$LAB_XEN_OPTS"
        cat "$LAB_KEY.pub"
        (cd "$LAB_DIR" && find build.sh guest -type f | LC_ALL=C sort | while read -r f; do
            # The interpreter line is not part of the recipe: `#!/usr/bin/env bash` (what ansible-test's
            # shebang rule wants) and `#!/bin/bash` hash alike, so fixing one never rebuilds the image.
            printf '== %s\n' "$f"; sed '1s|^#!/usr/bin/env bash$|#!/bin/bash|' "$f"; done)
    } | sha256sum | cut -c1-16
}

lab_golden_dir() { printf '%s/golden/%s\n' "$LAB_CACHE" "$(lab_recipe_hash)"; }

lab_inst_dir() { printf '%s/instances/%s\n' "$LAB_CACHE" "$LAB_NAME"; }
