# shellcheck shell=bash
# Shared by scripts/kubevirt-build.sh and scripts/cdi-build.sh (sourced, not
# run): reporting, timing, chroot mounts, a Debian root filesystem made with
# debootstrap and apt-get, and the image writer (hack/kubevirt-components/
# imagetool). The sourcing script sets, before using them:
#
#   LOG_PREFIX  the name log lines start with
#   REPORT      the file report appends to (build.txt)
#   NICE        the nice level builds run at
#   IMAGETOOL   where the image writer is built
#   TIMED_WIDTH optional: the width of timed's name column (default 26)

log() { printf '%s: %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { log "$*"; exit 1; }
# report LINE: to stderr and appended to $REPORT.
report() { printf '%s\n' "$*" | tee -a "$REPORT" >&2; }
# human PATH: its apparent size (du -sh), e.g. 143M.
human() { du -sh --apparent-size "$1" | cut -f1; }

# ------------------------------------------------------------------ mounts
# Every mount the script makes is remembered and undone on exit, deepest first.
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || log "could not unmount ${MOUNTS[i]}"
  done
  MOUNTS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bind SRC DEST [ro]: bind-mounts SRC at DEST (created) and remembers it.
bind() {
  mkdir -p "$2"
  mount --bind "$1" "$2"
  MOUNTS+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

# chroot_mounts DIR: /proc, /dev and /sys (read-only) for apt and go inside
# DIR, and the machine's resolv.conf.
chroot_mounts() {
  mkdir -p "$1/proc"
  mount -t proc proc "$1/proc"
  MOUNTS+=("$1/proc")
  bind /dev "$1/dev"
  bind /sys "$1/sys" ro
  cp /etc/resolv.conf "$1/etc/resolv.conf"
}

# timed NAME CMD...: runs CMD under `nice -n $NICE`, reports its wall and CPU
# (user + system) seconds; dies naming NAME when CMD fails.
timed() {
  local name=$1 tf wall user sys
  shift
  tf=$(mktemp)
  if ! /usr/bin/time -f '%e %U %S' -o "$tf" nice -n "$NICE" "$@"; then
    rm -f "$tf"
    die "$name failed"
  fi
  read -r wall user sys <"$tf"
  rm -f "$tf"
  report "$(printf "%-${TIMED_WIDTH:-26}s wall %7.1f s  cpu %7.1f s" "$name" "$wall" "$(awk -v a="$user" -v b="$sys" 'BEGIN{print a+b}')")"
}

# ------------------------------------------------------------------ rootfs
# debian_mirror: the Debian mirror this machine's apt uses.
debian_mirror() {
  local mirror
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}"
  echo "$mirror"
}

# debian_rootfs DIR SUITE LOGDIR PACKAGE...: a Debian SUITE (minbase) in DIR
# with PACKAGEs installed by apt-get (--no-install-recommends), its apt cache
# cleaned; logs in LOGDIR/debootstrap.log and LOGDIR/apt.log. The debootstrap
# half is kept across a failed apt half (DIR/.debootstrapped). Plain
# debootstrap, then apt-get in the chroot: bookworm's debootstrap with
# --include= of such packages fails on trixie's systemd ("systemd
# pre-depends on libsystemd-shared ... unpacked, but has never been
# configured"); apt-get orders them right (docs/notes/real-kubevirt.md, obstacle 3).
debian_rootfs() {
  local dir=$1 suite=$2 logs=$3 mirror
  shift 3
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null
  mirror=$(debian_mirror)
  if [ ! -f "$dir/.debootstrapped" ]; then
    rm -rf "$dir"
    timed "debootstrap $suite" debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$logs/debootstrap.log" 2>&1
    touch "$dir/.debootstrapped"
  fi
  echo "deb $mirror $suite main" >"$dir/etc/apt/sources.list"
  chroot_mounts "$dir"
  timed "apt-get install (rootfs)" chroot "$dir" sh -c \
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*" \
    >"$logs/apt.log" 2>&1
  chroot "$dir" apt-get clean
  cleanup
}

# ------------------------------------------------------------------ images
# ensure_imagetool: builds hack/kubevirt-components/imagetool into
# $IMAGETOOL when missing or older than its source.
ensure_imagetool() {
  local src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../hack/kubevirt-components/imagetool" && pwd)
  if [ ! -x "$IMAGETOOL" ] || [ -n "$(find "$src" -newer "$IMAGETOOL" -type f)" ]; then
    env -C "$src" GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$IMAGETOOL" .
  fi
}

# image REF FILE ARGS...: writes $IMAGES/FILE.tar (imagetool $IMAGETOOL,
# reference REF, ARGS its layers and config) and reports its size.
image() {
  local ref=$1 file=$2
  shift 2
  timed "image $file" "$IMAGETOOL" -ref "$ref" -out "$IMAGES/$file.tar" "$@"
  report "$(printf '%-44s %s' "  $ref" "$(human "$IMAGES/$file.tar")")"
}
