#!/usr/bin/env bash
# Builds the real-guest tier's Debian image into bin/guest/ (make guest-image):
#
#   bin/guest/disk.qcow2   a BIOS-bootable disk (MBR): one partition (vda1,
#                          ext4, label root, from 1 MiB to the end of the disk,
#                          so growpart can grow it) holding a debootstrapped
#                          Debian with systemd, systemd-networkd and
#                          systemd-resolved behind netplan (as Debian's own
#                          cloud images are configured), cloud-init,
#                          openssh-server, qemu-guest-agent, cloud-guest-utils
#                          (growpart), iproute2, sudo and the kernel; GRUB
#                          (i386-pc) in the gap before the partition boots it
#   bin/guest/inputs       the hash of this script and its inputs; the image is
#                          rebuilt only when it changes (idempotent)
#   bin/guest/build.txt    what was built, when, its size and build time
#
# The disk boots from BIOS alone (SeaBIOS, what KubeVirt's default firmware
# and a plain qemu run), no -kernel/-initrd and no kernelBoot: GRUB's boot.img
# (first 440 bytes of sector 0, the partition table after it kept) loads
# core.img from sectors 1..2047, and core.img -- made by grub-mkimage with the
# biosdisk, part_msdos, ext2, search_label, linux and boot modules and an
# embedded config -- finds the filesystem labelled root, loads /vmlinuz and
# /initrd.img (the symlinks Debian's kernel package keeps at the filesystem's
# top, so a kernel upgraded inside the guest is the one booted) and boots with
# root=LABEL=root ro console=ttyS0 panic=-1. No grub files go into the guest
# and GRUB is not installed in it (grub-install wants the target mounted):
# boot.img and core.img are dd'ed into the raw disk, the same placement
# grub-bios-setup does (boot.img's kernel sector 1 and core.img's blocklist,
# sector 2 onwards, are the defaults grub-mkimage already writes).
#
# Only Debian tools: debootstrap, chroot apt-get, mkfs.ext4 -d (the filesystem
# is written from the folder, no loop mount), sfdisk, grub-mkimage and the
# i386-pc images of grub-pc-bin (host side), dd, qemu-img. Packages come from
# the Debian mirror apt already uses (GUEST_MIRROR overrides it).
#
# Knobs (environment): GUEST_SUITE (bookworm), GUEST_MIRROR, GUEST_KERNEL
# (linux-image-cloud-amd64: Debian's kernel flavour for virtual machines, the
# one in Debian's genericcloud images; linux-image-amd64 also works, the
# image is then about 300 MB bigger), GUEST_IMAGE_SIZE (1536M: the virtual
# disk size; the Wukong disks the tests boot are bigger, so growpart has work).
# Needs root (debootstrap, chroot).
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
out=$root_dir/bin/guest
suite=${GUEST_SUITE:-bookworm}
kernel=${GUEST_KERNEL:-linux-image-cloud-amd64}
size=${GUEST_IMAGE_SIZE:-1536M}

default_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -r "$f" ] || continue
    uri=$(grep -E -o 'https?://[^ ]+/debian/?( |$)' "$f" | head -n1 | tr -d ' ') || true
    if [ -n "$uri" ]; then
      echo "${uri%/}"
      return
    fi
  done
  echo http://deb.debian.org/debian
}
mirror=${GUEST_MIRROR:-$(default_mirror)}
security=${mirror%/debian}/debian-security

# The packages of the guest. dbus and libpam-systemd: hostnamectl (cloud-init
# sets the hostname through it) and logind sessions; systemd-resolved and
# netplan.io: Debian's cloud images have both (debian-cloud-images
# config_space/bookworm/package_config/SYSTEM_BOOT); iputils-ping: the checks
# reach each NIC's peer.
packages=(
  systemd systemd-sysv systemd-resolved udev dbus libpam-systemd
  netplan.io cloud-init openssh-server qemu-guest-agent cloud-guest-utils
  iproute2 iputils-ping sudo e2fsprogs initramfs-tools "$kernel"
)

# GRUB's BIOS images on the build host (grub-pc-bin; scripts/guest-deps.sh).
grub_dir=${GUEST_GRUB_DIR:-/usr/lib/grub/i386-pc}
if [ ! -f "$grub_dir/boot.img" ] || ! command -v grub-mkimage >/dev/null; then
  echo "guest-image: no $grub_dir/boot.img or grub-mkimage: install grub-pc-bin (scripts/guest-deps.sh)" >&2
  exit 1
fi
grub_version=$(grub-mkimage --version | awk '{print $NF}')

inputs=$( { cat "$0"; echo "$suite $mirror $size ${packages[*]} grub $grub_version"; } | sha256sum | cut -c1-16)
if [ -f "$out/inputs" ] && [ "$(cat "$out/inputs")" = "$inputs" ] && [ -f "$out/disk.qcow2" ]; then
  echo "guest image is up to date: $out/disk.qcow2 ($(head -n1 "$out/build.txt" 2>/dev/null))"
  exit 0
fi

start=$(date +%s)
mkdir -p "$out"
# Built outside the repository: the chroot has /proc mounted while apt runs,
# and tools that walk the tree (the Makefile's find for go.mod) must not
# descend into it.
work=$(mktemp -d "${TMPDIR:-/var/tmp}/wukong-guest-image.XXXXXX")
rootfs=$work/rootfs
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -l "${mounts[$i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

echo "guest-image: debootstrap $suite from $mirror (minbase) ..." >&2
debootstrap --variant=minbase --components=main "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF
for m in proc sys dev dev/pts; do
  case $m in
    proc) mount -t proc proc "$rootfs/proc" ;;
    sys) mount -t sysfs sys "$rootfs/sys" ;;
    *) mount --bind "/$m" "$rootfs/$m" ;;
  esac
  mounts+=("$rootfs/$m")
done
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"

echo "guest-image: apt-get install ${packages[*]} ..." >&2
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 sh -ec '
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@"
  apt-get clean
' sh "${packages[@]}" >"$work/apt.log" 2>&1 || { tail -n 40 "$work/apt.log" >&2; exit 1; }

echo "guest-image: configuring ..." >&2
rm -f "$rootfs/usr/sbin/policy-rc.d"
cat >"$rootfs/etc/fstab" <<'EOF'
LABEL=root / ext4 defaults,discard,errors=remount-ro 0 1
EOF
# First boot is cloud-init's: no hostname, no machine id, no host keys (cloud-init
# makes them), no network config but what cloud-init renders (netplan ->
# systemd-networkd), DNS through systemd-resolved like Debian's cloud images.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs/etc/hostname" "$rootfs"/etc/ssh/ssh_host_*
ln -sf /run/systemd/resolve/resolv.conf "$rootfs/etc/resolv.conf"
# A system locale that needs no generation: without one, cloud-init's locale
# module asks Debian's locale-gen for en_US.UTF-8 (which ignores arguments)
# and update-locale then fails, marking the boot as an error.
echo "LANG=C.UTF-8" >"$rootfs/etc/default/locale"
chroot "$rootfs" systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
chroot "$rootfs" passwd -l root >/dev/null
# NoCloud only: the seed is a disk labelled cidata, as KubeVirt's
# cloudInitNoCloud volume is (skips probing other clouds' metadata services).
cat >"$rootfs/etc/cloud/cloud.cfg.d/90_wukong_guest.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
EOF
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
# GRUB boots the symlinks the kernel package keeps at the top of the
# filesystem (linux-update-symlinks; /etc/kernel-img.conf absent: links in /).
for l in vmlinuz initrd.img; do
  target=$(readlink "$rootfs/$l") || target=
  if [ -z "$target" ] || [ ! -f "$rootfs/${target#/}" ]; then
    echo "guest-image: /$l in the guest is not a symlink to the kernel or initramfs in /boot" >&2
    exit 1
  fi
done
vmlinuz=$(readlink "$rootfs/vmlinuz")
kver=${vmlinuz##*/vmlinuz-}
cloudinit=$(chroot "$rootfs" dpkg-query -W -f "\${Version}" cloud-init)
for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}"; done
mounts=()

echo "guest-image: mkfs.ext4 -d, partition table and GRUB ..." >&2
# The partition starts at 1 MiB and runs to the end of the disk; growpart
# later extends it to the end of whatever bigger disk the image lands on.
# It is marked active: SeaBIOS and GRUB's boot.img do not need it, BIOSes
# that look for an active partition before running the MBR code do.
total=$(numfmt --from=iec "${size%B}")
part_start=$((1024 * 1024))
part_size=$((total - part_start))
mkfs.ext4 -q -F -L root -d "$rootfs" "$work/root.ext4" "$((part_size / 1024))k"
truncate -s "$total" "$work/disk.raw"
echo "start=2048, type=83, bootable" | sfdisk -q "$work/disk.raw"
dd if="$work/root.ext4" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
# core.img: GRUB's kernel with the modules the embedded config needs (no
# prefix directory is read: the config boots or GRUB stops at its rescue
# prompt, the error on the serial console). The search is by label, the
# first BIOS disk's first partition (the disk SeaBIOS booted) its hint.
cat >"$work/grub.cfg" <<'GRUB'
search.fs_label root root hd0,msdos1
linux /vmlinuz root=LABEL=root ro console=ttyS0 panic=-1
initrd /initrd.img
boot
GRUB
grub-mkimage -O i386-pc -d "$grub_dir" -p /boot/grub -c "$work/grub.cfg" -o "$work/core.img" \
  biosdisk part_msdos ext2 search_label linux boot
core_bytes=$(stat -c %s "$work/core.img")
if [ "$core_bytes" -gt $((part_start - 512)) ]; then
  echo "guest-image: GRUB's core.img ($core_bytes bytes) does not fit before the partition at $part_start" >&2
  exit 1
fi
# boot.img's code only (440 bytes: the disk signature and the partition table
# after it stay), core.img from sector 1.
dd if="$grub_dir/boot.img" of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$work/disk.raw" bs=512 seek=1 conv=notrunc status=none
qemu-img convert -O qcow2 "$work/disk.raw" "$work/disk.qcow2"

mv "$work/disk.qcow2" "$out/disk.qcow2"
# The kernel and initramfs of the former direct-kernel-boot layout.
rm -f "$out/vmlinuz" "$out/initrd.img"
elapsed=$(($(date +%s) - start))
bytes=$(stat -c %s "$out/disk.qcow2")
{
  echo "debian $suite, kernel $kver, cloud-init $cloudinit, GRUB $grub_version (BIOS): disk.qcow2 $((bytes / 1024 / 1024)) MiB on disk, $size virtual; built in ${elapsed}s"
  echo "built $(date -u +%FT%TZ) from $mirror"
  echo "packages: ${packages[*]}"
} >"$out/build.txt"
echo "$inputs" >"$out/inputs"
echo "guest-image: $(head -n1 "$out/build.txt")"
