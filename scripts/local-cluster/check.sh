#!/usr/bin/env bash
# Checks a running local cluster (scripts/local-cluster/up.sh) across its
# nodes, and removes what it made: every node Ready; one pod on each node
# (busybox from Debian's busybox-static, imported on every node); each pod
# pings the others across nodes; and, when the class wukong-csi-shared
# exists (make csi-images), one ReadWriteMany claim mounted by every pod:
# a file written on one node is read on the others; a pod reaches
# kubernetes.default. Prints one line per
# check with its time; exits non-zero on the first failure.
#
# Usage: scripts/local-cluster/check.sh   (root: it imports into the nodes' containerd)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/local-cluster/lib.sh
source "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
[ -f "$KUBECONFIG_ADMIN" ] || die "no $KUBECONFIG_ADMIN: is the cluster up?"
NS=wukong-check
IMAGE=localhost/wukong/check-busybox:1
t0=$(date +%s.%N)
ok() { printf '%6.1f s  ok: %s\n' "$(since "$t0")" "$*"; }

cleanup() { kc delete namespace "$NS" --wait=true --timeout 120s >/dev/null 2>&1 || true; }
trap cleanup EXIT

mapfile -t nodes < <(kc get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
[ ${#nodes[@]} -gt 0 ] || die "no nodes"
for n in "${nodes[@]}"; do
  node_ready "$n" || die "node $n is not Ready"
  ok "node $n Ready, InternalIP $(kc get node "$n" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')"
done

# busybox as an image: the static binary and a shell link, by mkimage
# (hack/local-images, built by the images step).
dir=$LC/check
if [ ! -f "$dir/images/busybox.tar" ]; then
  rm -rf "$dir" && mkdir -p "$dir/images"
  deb=$(mktemp -d)
  chmod 0755 "$deb" # apt's _apt user downloads into it
  (cd "$deb" && apt-get download busybox-static >/dev/null) || die "apt-get download busybox-static failed"
  dpkg-deb -x "$deb"/busybox-static_*.deb "$dir/root"
  rm -rf "$deb"
  "$IMG_DIR/mkimage" -ref "$IMAGE" -out "$dir/images/busybox.tar" -file "$dir/root/bin/busybox=/bin/busybox:0755" -entrypoint /bin/busybox
fi
import_tars "$dir/images" check-

shared=0
kc get storageclass wukong-csi-shared >/dev/null 2>&1 && shared=1
kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
if [ "$shared" = 1 ]; then
  kc -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: shared}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: wukong-csi-shared
  resources: {requests: {storage: 64Mi}}
YAML
fi
for n in "${nodes[@]}"; do
  {
    cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: on-$n}
spec:
  nodeSelector: {kubernetes.io/hostname: $n}
  terminationGracePeriodSeconds: 1
  containers:
  - name: box
    image: $IMAGE
    imagePullPolicy: Never
    command: [/bin/busybox, sleep, "3600"]
YAML
    if [ "$shared" = 1 ]; then
      cat <<YAML
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - name: shared
    persistentVolumeClaim: {claimName: shared}
YAML
    fi
  } | kc -n "$NS" apply -f - >/dev/null
done
for n in "${nodes[@]}"; do
  kc -n "$NS" wait "pod/on-$n" --for condition=Ready --timeout 180s >/dev/null ||
    { kc -n "$NS" describe pod "on-$n" | tail -20 >&2; die "pod on-$n not Ready"; }
  ok "pod on-$n Running on $(kc -n "$NS" get pod "on-$n" -o jsonpath='{.spec.nodeName}') with IP $(kc -n "$NS" get pod "on-$n" -o jsonpath='{.status.podIP}')"
done
for a in "${nodes[@]}"; do
  for b in "${nodes[@]}"; do
    [ "$a" = "$b" ] && continue
    ip=$(kc -n "$NS" get pod "on-$b" -o jsonpath='{.status.podIP}')
    out=$(kc -n "$NS" exec "on-$a" -- /bin/busybox ping -c 3 -W 2 "$ip" 2>&1) || { echo "$out" >&2; die "ping from on-$a to on-$b ($ip) failed"; }
    ok "on-$a -> on-$b ($ip): $(grep -o '[0-9]* packets received' <<<"$out"), $(grep -o 'min/avg/max = [0-9./]* ms' <<<"$out")"
  done
done
# kubernetes.default from a pod: our DNAT (no kube-proxy) to the apiserver.
out=$(kc -n "$NS" exec "on-${nodes[-1]}" -- /bin/busybox nc -w 3 "$SERVICE_IP" 443 </dev/null 2>&1 && echo connected) ||
  { echo "$out" >&2; die "on-${nodes[-1]} cannot reach kubernetes.default ($SERVICE_IP:443)"; }
ok "on-${nodes[-1]} reaches kubernetes.default $SERVICE_IP:443 (DNAT to $APISERVER_IP:$APISERVER_PORT): $out"
if [ "$shared" = 1 ]; then
  pv=$(kc -n "$NS" get pvc shared -o jsonpath='{.spec.volumeName}')
  aff=$(kc get pv "$pv" -o jsonpath='{.spec.nodeAffinity}')
  ok "claim shared Bound to $pv ($(kc -n "$NS" get pvc shared -o jsonpath='{.status.accessModes}'), node affinity: ${aff:-none})"
  for n in "${nodes[@]}"; do
    kc -n "$NS" exec "on-$n" -- /bin/busybox sh -c "echo written-on-$n > /shared/$n"
  done
  for a in "${nodes[@]}"; do
    for b in "${nodes[@]}"; do
      got=$(kc -n "$NS" exec "on-$a" -- /bin/busybox cat "/shared/$b")
      [ "$got" = "written-on-$b" ] || die "on-$a reads '$got' from /shared/$b, want written-on-$b"
    done
    ok "on-$a (node $a) reads every node's file in the RWX volume: $(kc -n "$NS" exec "on-$a" -- /bin/busybox ls /shared | xargs)"
  done
else
  echo "       skipped: the RWX check (no StorageClass wukong-csi-shared: make csi-images, then up)"
fi
cleanup
trap - EXIT
ok "cleaned up namespace $NS"
