#!/usr/bin/env bash
# xenkdump.fleet: smoke test of the Xen lab itself (not of the collection).
# Copyright: xenkdump.fleet developers; GPL-3.0-or-later.
#
#   tests/e2e/lab_smoke.sh [--no-crash]
#
# On a throwaway instance (XENKDUMP_LAB_NAME, default "smoke"):
#   1. lab up; Ansible ping through the lab's inventory
#   2. the Xen command line has no crashkernel=; add crashkernel=256M<4G to
#      GRUB_CMDLINE_XEN_DEFAULT in the guest, update-grub, reboot, and check
#      `xl info` xen_commandline and `xl dmesg | grep Kdump`
#   3. (unless --no-crash) load a crash kernel by hand into Xen, `xl debug-keys C`,
#      wait for crash kernel -> capture -> reboot -> Xen, check a dump was written
#   4. lab down
# Prints the measured times; exits non-zero on the first failed check.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
export XENKDUMP_LAB_NAME=${XENKDUMP_LAB_NAME:-smoke}
lab="$here/lab/lab"
ansible=${ANSIBLE:-$here/.venv/bin/ansible}
crash=1
[[ ${1-} == --no-crash ]] && crash=0

say() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { say "FAIL: $*"; exit 1; }
cleanup() { [[ ${KEEP:-0} == 1 ]] || "$lab" down || true; }
trap cleanup EXIT

t=$SECONDS
inv=$("$lab" up)
t_up=$((SECONDS - t))
say "lab up: ${t_up} s, inventory $inv"

ping_out=$("$ansible" -i "$inv" all -m ansible.builtin.ping) || fail "ansible ping: $ping_out"
printf '%s\n' "$ping_out"
grep -q '"ping": "pong"' <<<"$ping_out" || fail "ansible ping did not answer pong"
say "ansible ping: pong"

before=$("$lab" ssh "xl info | sed -n 's/^xen_commandline *: //p'")
say "xen_commandline before: $before"
[[ $before != *crashkernel=* ]] || fail "the fresh lab already has crashkernel= on the Xen line"
"$lab" ssh "grep -q 'multiboot2.*xen' /boot/grub/grub.cfg && grep -q '20_linux_xen' /boot/grub/grub.cfg" \
    || fail "guest grub.cfg is not update-grub's"

# GRUB script treats a bare '<' as a syntax error (update-grub fails, grub.cfg unchanged):
# /etc/default/grub needs crashkernel=256M\<4G; GRUB passes crashkernel=256M<4G to Xen.
"$lab" ssh "sed -i 's/^GRUB_CMDLINE_XEN_DEFAULT=\"\\(.*\\)\"/GRUB_CMDLINE_XEN_DEFAULT=\"\\1 crashkernel=256M\\\\<4G\"/' /etc/default/grub \
    && grep ^GRUB_CMDLINE_XEN_DEFAULT= /etc/default/grub && update-grub 2>&1 | tail -n 2"
"$lab" boot-id >/dev/null
t=$SECONDS
"$lab" ssh "systemctl reboot" || true
"$lab" wait-reboot
t_reboot=$((SECONDS - t))
after=$("$lab" ssh "xl info | sed -n 's/^xen_commandline *: //p'")
say "xen_commandline after reboot (${t_reboot} s): $after"
[[ $after == *"crashkernel=256M<4G"* ]] || fail "new xen_commandline lacks crashkernel=256M<4G"
kd=$("$lab" ssh "xl dmesg | grep Kdump" || true)
say "xl dmesg: $kd"
[[ $kd == *"Kdump:"*"256MB"* ]] || fail "Xen reserved no 256MB crash region"

if (( crash )); then
    # By hand, only to measure crash -> back: never baked into the golden image.
    "$lab" ssh 'set -e
        kver=$(uname -r)
        sed -i "s/^#\?MAKEDUMP_ARGS=.*/MAKEDUMP_ARGS=\"-c -d 0\"/" /etc/default/kdump-tools
        root=$(findmnt -no UUID /)
        kexec -p "/boot/vmlinuz-$kver" --initrd="/var/lib/kdump/initrd.img-$kver" \
            --append="root=UUID=$root ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices systemd.unit=kdump-tools-dump.service"
        echo "crash region bytes: $(kexec --print-ckr-size)"
        rm -rf /var/crash/2*'
    "$lab" boot-id >/dev/null
    t=$SECONDS
    timeout 20 "$lab" ssh 'sync; (sleep 1; xl debug-keys C) >/dev/null 2>&1 &' || true
    "$lab" wait-reboot
    t_crash=$((SECONDS - t))
    dump=$("$lab" ssh 'ls -l /var/crash/2*/ 2>/dev/null' || true)
    say "crash -> back: ${t_crash} s; /var/crash: $dump"
    "$lab" ssh 'f=$(ls /var/crash/2*/dump.* | head -n 1); test -s "$f" && head -c 16 "$f" | od -c | head -n 1' \
        || fail "no non-empty dump in /var/crash"
fi

say "RESULT: up ${t_up} s, reboot ${t_reboot} s${t_crash:+, crash->back ${t_crash} s}"
