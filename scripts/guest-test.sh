#!/usr/bin/env bash
# make guest-test: installs the host tools (guest-deps.sh), builds or reuses
# the cached Debian guest image (guest-image.sh), then boots the test Wukongs
# under qemu (TCG) and checks them from inside (test/guest, build tag guest).
#
# Every process and network namespace the Go test makes is also written to a
# state file; the trap below kills and deletes whatever is left of them on
# any exit (failure, Ctrl-C, a go test timeout), and deleting a namespace
# deletes its tap devices. Extra arguments go to `go test` (e.g. -run).
# Needs root. .ci/run never calls it: this tier is not part of make test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/guest-deps.sh"
"$root/scripts/guest-image.sh"

state=$(mktemp -d /tmp/wukong-guest-state.XXXXXX)
cleanup() {
  local kind id
  if [ -f "$state/resources" ]; then
    while read -r kind id; do
      if [ "$kind" = pid ] && kill -0 "$id" 2>/dev/null; then
        kill -KILL "$id" 2>/dev/null || true
      fi
    done <"$state/resources"
    while read -r kind id; do
      if [ "$kind" = netns ] && ip netns list | grep -qw "$id"; then
        ip netns del "$id" 2>/dev/null || true
      fi
    done <"$state/resources"
  fi
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The test's temporary files (disk overlays, seeds, logs) go under the state
# directory too, so the trap removes them whatever happens.
mkdir -p "$state/tmp"
cd "$root/test"
TMPDIR=$state/tmp GUEST_STATE_DIR=$state go test -tags guest -count=1 -timeout "${GUEST_TEST_TIMEOUT:-60m}" -v -run '^TestGuest$' ./guest/ "$@"
