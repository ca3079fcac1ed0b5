#!/bin/sh
# First boot of the xenkdump lab golden image (run once, during `lab/lab build`).
# Things that cannot be done in a chroot: update-grub (grub-probe needs the
# real root device) and kdump-tools' initrd (mkinitramfs MODULES=dep needs it too).
# On success it prints XENKDUMP_LAB_FIRSTBOOT_OK and powers the machine off.
set -u
status=FAIL
finish() {
    echo "XENKDUMP_LAB_FIRSTBOOT_${status}" > /dev/console
    sync
    systemctl --no-block poweroff
}
trap finish EXIT
set -ex
kver=$(uname -r)
update-grub
grep -q 'multiboot2.*xen' /boot/grub/grub.cfg
grep -q 'set default="Debian GNU/Linux, with Xen hypervisor"' /boot/grub/grub.cfg
# kdump-tools' kernel hook builds /var/lib/kdump/initrd.img-<kver> (MODULES=dep).
/etc/kernel/postinst.d/kdump-tools "$kver"
test -s "/var/lib/kdump/initrd.img-$kver"
# What `kdump-config load` records after its first run on a host: without it, every lab
# boot's kdump-tools.service (which sees Debian's crashkernel= on the dom0 line) would
# rebuild that initrd (~7 min under TCG) before failing to load (no Xen crash region).
cp /etc/kdump/sysctl.conf "/var/lib/kdump/latest_sysctls-$kver"
kdump-config symlinks "$kver"
# Nothing from this boot should leak into the labs booted from the golden image.
journalctl --rotate >/dev/null 2>&1 || true
rm -rf /var/log/journal/* /var/tmp/* /tmp/* || true
mkdir -p /var/lib/xenkdump-lab
date -u +%FT%TZ > /var/lib/xenkdump-lab/firstboot.done
systemctl disable xenkdump-lab-firstboot.service
fstrim -av || true
status=OK
