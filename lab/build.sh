#!/usr/bin/env bash
# xenkdump.fleet Xen lab: build the golden disk image (Debian + its Xen) from Debian's packages:
# bookworm -> Xen 4.17, trixie -> Xen 4.20 (XENKDUMP_LAB_SUITE; the Xen packages follow the suite).
# Copyright: xenkdump.fleet developers; GPL-3.0-or-later.
#
# Usage: lab/build.sh <output-dir>     (normally called by `lab/lab build`)
#
# Steps (no loop mounts, no KVM):
#   1. debootstrap a bookworm root, apt-get the Xen/kdump packages in a chroot
#      (debconf preseeded: kexec-tools does not take over reboots, grub-pc never
#      touches a disk), configure ssh key, network, /etc/default/grub.
#   2. Hand-write a first grub.cfg that boots Xen (the chroot cannot run update-grub).
#   3. Make a partitioned raw disk: msdos label (sfdisk), ext4 made from the root
#      directory by `mke2fs -d` at offset 1 MiB, GRUB's boot.img in the MBR (the
#      partition table is kept) and core.img (made by the guest's own grub-mkimage)
#      at sector 1.
#   4. Boot it once under QEMU (Debian's kernel without Xen: much faster under TCG):
#      the first-boot unit runs update-grub (the real Debian grub.cfg, whose default
#      is the 20_linux_xen entry) and builds kdump-tools' initrd, then powers off.
#      The result is the golden image; every `lab up` boots Xen through that grub.cfg.
set -euo pipefail
# shellcheck source=lab/lib.sh
. "$(dirname "$0")/lib.sh"

out=${1:?usage: build.sh <output-dir>}
[[ $(id -u) == 0 ]] || die "the build needs root (debootstrap, chroot, mke2fs -d keeping ownership)"
lab_check_params
lab_ensure_key

work="$LAB_CACHE/tmp/build.$$"
root="$work/root"
mounted=()
cleanup() {
    local m
    for ((i=${#mounted[@]}-1; i>=0; i--)); do m=${mounted[i]}; umount -l "$m" 2>/dev/null || true; done
    if [[ -d $work ]]; then
        # --one-file-system: never descend into anything still mounted.
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
mkdir -p "$work" "$LAB_CACHE/debs" "$LAB_CACHE/apt-archives/partial"
t0=$SECONDS

in_root() { LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"; }
mount_in_root() { mount "$@"; mounted+=("${!#}"); }

log "1/4 debootstrap $LAB_SUITE from $LAB_MIRROR"
debootstrap --variant=minbase --cache-dir="$LAB_CACHE/debs" \
    --include=systemd-sysv,dbus,udev,kmod,iproute2,procps,openssh-server,python3,python3-pyelftools,less,zstd,xz-utils,debconf-utils,e2fsprogs \
    "$LAB_SUITE" "$root" "$LAB_MIRROR" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
log "    debootstrap done ($((SECONDS - t0)) s)"

mount_in_root -t proc proc "$root/proc"
mount_in_root -t sysfs sysfs "$root/sys"
mount_in_root --bind "$LAB_CACHE/apt-archives" "$root/var/cache/apt/archives"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
{
    echo "deb $LAB_MIRROR $LAB_SUITE main"
    echo "deb $LAB_MIRROR $LAB_SUITE-updates main"
    echo "deb $LAB_SECURITY_MIRROR $LAB_SUITE-security main"
} > "$root/etc/apt/sources.list"
in_root debconf-set-selections < "$LAB_DIR/guest/debconf.seed"
in_root apt-get -q update > "$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get update failed"; }
apt_install() {
    in_root apt-get -q -y -o Dpkg::Options::=--force-confold --no-install-recommends install "$@" \
        >> "$work/apt.log" 2>&1 || { tail -n 40 "$work/apt.log" >&2; die "apt-get install $* failed"; }
}
# The kernel first: kdump-tools' kernel hook (MODULES=dep) cannot work in a chroot.
apt_install linux-image-amd64 initramfs-tools
in_root apt-get -q -y upgrade >> "$work/apt.log" 2>&1 || die "apt-get upgrade failed"
# xen-system-amd64 pulls the suite's own xen-hypervisor-4.NN-amd64 + xen-utils-4.NN (bookworm 4.17,
# trixie 4.20), so no version is written here; xen-hypervisor-common holds /etc/default/grub.d/xen.cfg
# (Xen entry as GRUB default).
apt_install grub-pc xen-system-amd64 xen-hypervisor-common kexec-tools kdump-tools makedumpfile
# No `apt-get clean` here: the archives dir is the cache, bind-mounted (the image gets an empty one).
rm -f "$root/usr/sbin/policy-rc.d"
log "    packages installed ($((SECONDS - t0)) s)"

kver=$(basename "$(ls -1 "$root"/boot/vmlinuz-* | sort -V | tail -n 1)"); kver=${kver#vmlinuz-}
xen_gz=$(cd "$root/boot" && ls -1 xen-*.gz | sort -V | tail -n 1)
[[ -n $kver && -n $xen_gz && -s $root/boot/initrd.img-$kver ]] || die "kernel/initrd/xen missing in /boot"
uuid=$(cat /proc/sys/kernel/random/uuid)

log "2/4 configure guest (kernel $kver, $xen_gz)"
echo xenlab > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\txenlab\n' > "$root/etc/hosts"
printf 'UUID=%s\t/\text4\terrors=remount-ro\t0\t1\n' "$uuid" > "$root/etc/fstab"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$LAB_KEY.pub" "$root/root/.ssh/authorized_keys"
install -m 644 "$LAB_DIR/guest/50-lab.network" "$root/etc/systemd/network/50-lab.network"
sed "s|@XEN_OPTS@|$LAB_XEN_OPTS|" "$LAB_DIR/guest/default-grub" > "$root/etc/default/grub"
# kexec-tools must not turn reboots into kexec reboots (debconf says so too).
sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' "$root/etc/default/kexec"
install -m 755 "$LAB_DIR/guest/firstboot.sh" "$root/usr/local/sbin/xenkdump-lab-firstboot"
install -m 644 "$LAB_DIR/guest/xenkdump-lab-firstboot.service" "$root/etc/systemd/system/"
in_root systemctl enable systemd-networkd.service xenkdump-lab-firstboot.service >/dev/null 2>&1
# Faster, quieter boots under TCG: no periodic jobs in a throwaway lab.
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer >/dev/null 2>&1 || true
echo 'XENKDUMP_LAB=1' > "$root/etc/xenkdump-lab"
{ echo "recipe=$(basename "$out")"; echo "kernel=$kver"; echo "xen=$xen_gz"; echo "root_uuid=$uuid"; } \
    >> "$root/etc/xenkdump-lab"

# GRUB: modules where grub-install would put them, core.img from the guest's own GRUB.
mkdir -p "$root/boot/grub/i386-pc"
cp -a "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst "$root/boot/grub/i386-pc/"
in_root grub-editenv /boot/grub/grubenv create   # as grub-install does (grub-reboot, savedefault)
in_root grub-mkimage -O i386-pc -o /tmp/core.img -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2
mv "$root/tmp/core.img" "$work/core.img"
cp "$root/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
# First grub.cfg, by hand (the chroot cannot run grub-probe); replaced by update-grub on first boot.
# Entry 0 boots Debian's kernel WITHOUT Xen for the one provisioning boot: a PV dom0 under TCG
# forks ~10x slower than a native kernel, and update-grub/mkinitramfs are fork-heavy. Neither
# depends on the running kernel (grub-mkconfig reads /boot and /etc/default/grub; MODULES=dep
# looks at the same virtio disk). Entry 1 is the same Xen boot update-grub will generate.
cat > "$root/boot/grub/grub.cfg" <<CFG
# Initial grub.cfg written by xenkdump lab/build.sh; the first boot replaces it with update-grub's.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry 'Debian GNU/Linux (lab provisioning boot, no Xen)' {
	insmod part_msdos
	insmod ext2
	set root=(hd0,msdos1)
	linux /boot/vmlinuz-${kver} root=UUID=${uuid} ro console=ttyS0,115200
	initrd /boot/initrd.img-${kver}
}
menuentry 'Debian GNU/Linux, with Xen hypervisor (hand-written)' {
	insmod gzio
	insmod part_msdos
	insmod ext2
	set root=(hd0,msdos1)
	echo 'Loading Xen ${xen_gz} ...'
	multiboot2 /boot/${xen_gz} placeholder ${LAB_XEN_OPTS}
	echo 'Loading Linux ${kver} ...'
	module2 /boot/vmlinuz-${kver} placeholder root=UUID=${uuid} ro console=hvc0 earlyprintk=xen
	echo 'Loading initial ramdisk ...'
	module2 --nounzip /boot/initrd.img-${kver}
}
CFG

for ((i=${#mounted[@]}-1; i>=0; i--)); do umount "${mounted[i]}"; done
mounted=()

log "3/4 make the disk (${LAB_DISK_MB} MiB, msdos label, ext4 at 1 MiB, GRUB i386-pc)"
disk="$work/disk.img"
truncate -s "${LAB_DISK_MB}M" "$disk"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
mke2fs -q -F -t ext4 -O ^metadata_csum_seed -L xenlab-root -U "$uuid" -d "$root" \
    -E offset=1048576 "$disk" "$((LAB_DISK_MB - 1))M"
core_size=$(stat -c %s "$work/core.img")
(( core_size < 2047 * 512 )) || die "core.img is $core_size bytes; it must fit before the partition (1 MiB)"
# boot.img's first 440 bytes only: bytes 440..511 hold the disk signature and partition table.
dd if="$work/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
rm -rf --one-file-system "$root"
log "    disk ready ($((SECONDS - t0)) s)"

log "4/4 first boot: update-grub and kdump-tools initrd inside the guest (TCG, a few minutes)"
serial="$work/firstboot-serial.log"
set +e
timeout "$LAB_FIRSTBOOT_TIMEOUT" "$LAB_QEMU" -nodefaults -machine q35 -accel tcg,thread=multi -cpu max,-smap \
    -smp "$LAB_CPUS" -m 1536 -no-reboot \
    -drive file="$disk",if=virtio,format=raw,cache=unsafe \
    -serial file:"$serial" -display none -vga none -monitor none
rc=$?
set -e
mkdir -p "$LAB_CACHE/logs"
cp "$serial" "$LAB_CACHE/logs/firstboot-$(basename "$out").log"
if ! grep -q XENKDUMP_LAB_FIRSTBOOT_OK "$serial"; then
    tail -n 60 "$serial" >&2
    die "first boot did not finish (qemu rc=$rc); serial log: $LAB_CACHE/logs/firstboot-$(basename "$out").log"
fi
# Check the result from outside: the guest's Debian-generated grub.cfg is in place.
debugfs -R 'cat /boot/grub/grub.cfg' "$disk?offset=1048576" 2>/dev/null > "$work/grub.cfg"
grep -q '^### BEGIN /etc/grub.d/20_linux_xen ###' "$work/grub.cfg" || die "grub.cfg on the disk was not made by update-grub"
grep -q 'set default="Debian GNU/Linux, with Xen hypervisor"' "$work/grub.cfg" || die "grub.cfg's default entry is not the Xen one"
log "    first boot done ($((SECONDS - t0)) s)"

{
    echo "recipe=$(basename "$out")"
    echo "kernel=$kver"
    echo "xen=$xen_gz"
    echo "root_uuid=$uuid"
    echo "xen_opts=$LAB_XEN_OPTS"
    echo "suite=$LAB_SUITE"
    echo "built=$(date -u +%FT%TZ)"
    echo "build_seconds=$((SECONDS - t0))"
} > "$work/build-info"
mkdir -p "$(dirname "$out")"
rm -rf "$out.new"; mkdir "$out.new"
mv "$disk" "$work/build-info" "$work/grub.cfg" "$out.new/"
mv "$out.new" "$out"
log "golden image ready: $out/disk.img ($((SECONDS - t0)) s)"
