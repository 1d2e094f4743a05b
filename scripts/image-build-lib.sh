# shellcheck shell=bash
# Shared by the image builds, scripts/*-build.sh (sourced, not run): the
# pinned versions (scripts/versions.sh), reporting, timing, chroot mounts, a
# Debian root filesystem made with debootstrap and apt-get, the image writer
# (hack/kubevirt-components/imagetool), busybox, manifest edits, module
# downloads for offline builds, and the throwaway containerd of the `check`
# steps. The sourcing script calls image_build_layout NAME (or sets its
# variables itself) and sets, before using them:
#
#   NICE        the nice level builds run at
#   TIMED_WIDTH optional: the width of timed's name column (default 26)

BUILD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/versions.sh
. "$BUILD_ROOT/scripts/versions.sh"

# image_build_layout NAME: the layout of bin/NAME every image build
# shares, as globals: B (bin/NAME), OUT ($B/bin, the binaries), IMAGES
# ($B/images, the docker-archive tars), MANIFESTS ($B/manifests), STAGE
# ($B/stage, image contents being assembled), ROOTFS ($B/rootfs, a Debian
# root filesystem), REPORT ($B/build.txt, every run's times and sizes,
# appended), IMAGETOOL ($B/imagetool, the image writer) and LOG_PREFIX
# (NAME-build, what log lines start with). A build uses the ones it needs.
# shellcheck disable=SC2034 # used by the sourcing scripts
image_build_layout() {
  B=$BUILD_ROOT/bin/$1
  OUT=$B/bin
  IMAGES=$B/images
  MANIFESTS=$B/manifests
  STAGE=$B/stage
  ROOTFS=$B/rootfs
  REPORT=$B/build.txt
  IMAGETOOL=$B/imagetool
  LOG_PREFIX=$1-build
}

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

# ------------------------------------------------------------------ busybox
# ensure_busybox: Debian's busybox-static (the .deb unpacked, not installed
# on the machine) in $BIN_ROOT/busybox/bin/busybox, once; prints its path.
# The shell and cp of Multus's plugin installer, local-path's helper pods,
# cdi-controller's readiness probe (cat).
ensure_busybox() {
  local dir=$BUILD_ROOT/bin/busybox d
  if [ ! -x "$dir/bin/busybox" ]; then
    d=$(mktemp -d)
    chmod 0755 "$d" # apt's _apt user downloads into it
    (cd "$d" && apt-get download busybox-static >/dev/null) || die "apt-get download busybox-static failed (run apt-get update?)"
    rm -rf "$dir" "$dir.tmp"
    dpkg-deb -x "$d"/busybox-static_*.deb "$dir.tmp"
    mkdir -p "$dir/bin"
    cp "$dir.tmp/bin/busybox" "$dir/bin/busybox"
    rm -rf "$d" "$dir.tmp"
  fi
  echo "$dir/bin/busybox"
}

# busybox_dir DIR: a static busybox with the applets the images' scripts use.
busybox_dir() {
  install -D -m 0755 "$(ensure_busybox)" "$1/bin/busybox"
  local a
  for a in sh cp mv rm ls mkdir cat chmod sleep echo test; do ln -sf busybox "$1/bin/$a"; done
}

# passwd_nonroot DIR [NAME UID]...: /etc/passwd and /etc/group with root
# and each NAME:UID (uid = gid), no login shells.
passwd_nonroot() {
  local d=$1
  shift
  mkdir -p "$d/etc"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$d/etc/passwd"
  printf 'root:x:0:\n' >"$d/etc/group"
  while [ $# -ge 2 ]; do
    printf '%s:x:%s:%s:%s:/home/%s:/sbin/nologin\n' "$1" "$2" "$2" "$1" "$1" >>"$d/etc/passwd"
    printf '%s:x:%s:\n' "$1" "$2" >>"$d/etc/group"
    shift 2
  done
  chmod 0644 "$d/etc/passwd" "$d/etc/group"
}

# ------------------------------------------------------------------ manifests
# sub FILE OLD NEW: replaces every line equal to OLD after its leading
# spaces by NEW (which may have several lines), each line of NEW indented as
# OLD was; dies when OLD is not there, so an upstream change cannot slip
# through unadapted.
sub() {
  OLD=$2 NEW=$3 awk '
    { line = $0; ind = line; sub(/[^ ].*$/, "", ind) }
    substr(line, length(ind) + 1) == ENVIRON["OLD"] {
      n = split(ENVIRON["NEW"], parts, "\n"); for (i = 1; i <= n; i++) print ind parts[i]; found = 1; next
    }
    { print }
    END { exit !found }' "$1" >"$1.sub" || { rm -f "$1.sub"; die "$1: no line '$2' to adapt"; }
  mv "$1.sub" "$1"
}

# ------------------------------------------------------------------ downloads
# go_download MODDIR PKG...: downloads into the module cache every module
# that building PKG... from MODDIR needs, under the environment this runs
# in (CGO_ENABLED, GOOS, GOARCH and GOFLAGS' -tags decide which files, so
# which imports, count: cgo-only imports are listed only with CGO_ENABLED=1).
# For builds that then run with GOPROXY=off (e.g. in a chroot), so that they
# do not depend on what a warm cache happened to hold.
go_download() {
  local mod=$1 mods
  shift
  mods=$(env -C "$mod" GOWORK=off go list -deps -f '{{with .Module}}{{if not .Main}}{{if not .Replace}}{{.Path}}@{{.Version}}{{else if .Replace.Version}}{{.Replace.Path}}@{{.Replace.Version}}{{end}}{{end}}{{end}}' "$@" | sort -u) ||
    die "go list -deps $* in $mod failed"
  if [ -n "$mods" ]; then
    # shellcheck disable=SC2086 # one module@version per word
    env -C "$mod" GOWORK=off go mod download $mods || die "go mod download for $* failed"
  fi
  log "module cache $(go env GOMODCACHE) holds the $(printf '%s\n' "$mods" | grep -c .) modules of $* (CGO_ENABLED=$(go env CGO_ENABLED))"
}

# module_dir MODDIR MODULE[@VERSION]: the directory of MODULE's source in
# the module cache, downloaded first (`go list -m -f {{.Dir}}` answers
# nothing for a module not downloaded yet, e.g. when a manifests step runs
# alone); MODDIR's go.mod pins the version when none is given.
module_dir() {
  local dir
  dir=$(env -C "$1" GOWORK=off go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then die "go mod download $2 (in $1) gave no source directory"; fi
  echo "$dir"
}

# ------------------------------------------------------------------ check
# A THROWAWAY containerd (its own root, state and socket under a temporary
# directory, CRI off, runc state there too; never the local cluster's) for
# the build scripts' `check` steps: check_start, then crun/crun_usage per
# command, check_cleanup at the end (also on exit).
CHECK_PID=
check_cleanup() {
  if [ -n "$CHECK_PID" ]; then
    kill "$CHECK_PID" 2>/dev/null || true
    wait "$CHECK_PID" 2>/dev/null || true
    CHECK_PID=
  fi
  if [ -n "${CHECK_DIR:-}" ] && [ -d "$CHECK_DIR" ]; then
    # overlay mounts of running or dead containers under its root
    { grep -o " ${CHECK_DIR}[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    rm -rf "$CHECK_DIR" 2>/dev/null || { sleep 1; rm -rf "$CHECK_DIR"; } || log "could not remove $CHECK_DIR"
  fi
  # the namespace's (empty) cgroups that runc made for `ctr run`
  local c
  for c in /sys/fs/cgroup/*/wukong-check /sys/fs/cgroup/wukong-check; do
    [ -d "$c" ] && { find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || log "could not remove the cgroup $c"; }
  done
  return 0
}

# check_start TAR...: starts the throwaway containerd and imports TARs.
check_start() {
  command -v containerd >/dev/null || die "no containerd (apt-get install containerd)"
  CHECK_DIR=$(mktemp -d /tmp/image-check.XXXXXX)
  CHECK_SOCK=$CHECK_DIR/containerd.sock
  trap 'check_cleanup; cleanup' EXIT
  cat >"$CHECK_DIR/config.toml" <<CONF
version = 2
root = "$CHECK_DIR/root"
state = "$CHECK_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CHECK_SOCK"
[ttrpc]
  address = "$CHECK_DIR/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
CONF
  containerd --config "$CHECK_DIR/config.toml" >"$CHECK_DIR/containerd.log" 2>&1 &
  CHECK_PID=$!
  local i t
  for i in $(seq 1 100); do
    ctr -a "$CHECK_SOCK" version >/dev/null 2>&1 && break
    [ "$i" = 100 ] && die "the throwaway containerd did not start: $(tail -5 "$CHECK_DIR/containerd.log")"
    sleep 0.2
  done
  report "check: throwaway containerd $(containerd --version | awk '{print $3}') at $CHECK_SOCK (CRI off)"
  for t in "$@"; do
    timed "import ${t##*/}" ctr -a "$CHECK_SOCK" -n wukong-check images import "$t" >/dev/null
  done
}

# crun NAME REF CMD...: runs CMD in a container of REF, prints its output
# indented; fails when the command fails.
crun() {
  local name=$1 ref=$2 out rc=0
  shift 2
  out=$(ctr -a "$CHECK_SOCK" -n wukong-check run --rm --runc-root "$CHECK_DIR/runc" "$ref" "check-$name" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | head -n 4 | sed "s/^/    [$name] /" | tee -a "$REPORT" >&2
  [ "$rc" = 0 ] || die "check $name ($ref: $*) exited $rc"
}

# crun_usage NAME REF CMD...: as crun for a Go command asked for --help,
# which prints its flags and exits 0, 2 (the flag package) or 1 (pflag in
# install_multus): accepts those when the output is a usage text.
crun_usage() {
  local name=$1 ref=$2 out rc=0
  shift 2
  out=$(ctr -a "$CHECK_SOCK" -n wukong-check run --rm --runc-root "$CHECK_DIR/runc" "$ref" "check-$name" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | head -n 3 | sed "s/^/    [$name rc=$rc] /" | tee -a "$REPORT" >&2
  if [ "$rc" -gt 2 ] || ! printf '%s' "$out" | grep -qiE -- '^ *-.*|usage'; then
    die "check $name ($ref: $*) exited $rc without a usage text"
  fi
}

# run_steps NAME-OF-SCRIPT DEFAULT-STEPS -- STEP...: runs each STEP (or the
# DEFAULT-STEPS, a space-separated list) as the function build_<step>
# (dashes as underscores); dies naming the known steps on an unknown one.
run_steps() {
  local script=$1 defaults=$2 s fn
  shift 3
  local steps=("$@")
  # shellcheck disable=SC2206 # a space-separated list
  [ ${#steps[@]} -gt 0 ] || steps=($defaults)
  report "== $(date -u +%FT%TZ) $script ${steps[*]}"
  for s in "${steps[@]}"; do
    fn=build_${s//-/_}
    declare -F "$fn" >/dev/null || die "unknown step '$s': want one of: $defaults check"
    "$fn"
  done
}
