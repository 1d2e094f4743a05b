#!/usr/bin/env bash
# Installs, from Debian's packages, what the real-guest tier (make guest-image,
# make guest-test) needs on the host, when a command is missing:
#   qemu-system-x86  qemu-system-x86_64 (software emulation, TCG)
#   qemu-utils       qemu-img (qcow2 base image and per-run overlays)
#   debootstrap      the guest's root filesystem from the Debian mirror
#   e2fsprogs fdisk  mkfs.ext4 -d (filesystem from a folder), sfdisk (partition table)
#   grub-pc-bin      grub-mkimage and GRUB's BIOS images (boot.img, modules) in
#                    /usr/lib/grub/i386-pc: the image's bootloader
#   xorriso          xorrisofs: the NoCloud seed ISO, as KubeVirt's virt-launcher makes it
#   openssh-client   ssh, ssh-keygen: the checks log in with the Wukong's key
#   dnsmasq-base     dnsmasq: the DHCP server behind the DHCP NIC (no service installed)
#   iproute2         ip netns / tuntap: the test's network namespace and tap devices
# Needs root (apt-get). .ci/run never calls it: this tier is not part of make test.
set -euo pipefail

declare -A pkg_of=(
  [qemu-system-x86_64]=qemu-system-x86
  [qemu-img]=qemu-utils
  [debootstrap]=debootstrap
  [mkfs.ext4]=e2fsprogs
  [sfdisk]=fdisk
  [grub-mkimage]=grub-pc-bin
  [xorrisofs]=xorriso
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [dnsmasq]=dnsmasq-base
  [ip]=iproute2
)
missing=()
for cmd in "${!pkg_of[@]}"; do
  if ! PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1; then
    missing+=("${pkg_of[$cmd]}")
  fi
done
# grub-mkimage comes with grub-common, the BIOS images with grub-pc-bin.
[ -f /usr/lib/grub/i386-pc/boot.img ] || missing+=(grub-pc-bin)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "guest-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
