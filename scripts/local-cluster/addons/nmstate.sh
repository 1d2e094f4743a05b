# shellcheck shell=bash
# Add-on nmstate (SIMULATED; sourced by scripts/local-cluster/up.sh):
# nmstate is packaged and served nowhere here, so test/sandbox/cmd/nmstate-sim
# plays kubernetes-nmstate as the sandbox does (answers
# NodeNetworkConfigurationPolicies, changes nothing on the nodes), so that
# a NodeBridge becomes Ready and Wukong writes the bridge's
# NetworkAttachmentDefinition; the CNI bridge plugin makes the bridge on
# the node when a pod first attaches. Runs with Multus (it is only of use
# with it). LOCAL_CLUSTER_NMSTATE=0 skips it.
want_nmstate() {
  if [ "${LOCAL_CLUSTER_NMSTATE:-1}" = 0 ]; then
    SKIP_REASON="switched off"
    return 1
  fi
  want_multus || { SKIP_REASON="it runs with Multus, and $SKIP_REASON"; return 1; }
}
plan_nmstate() {
  echo "go build test/sandbox/cmd/nmstate-sim; apply the nmstate.io CRDs from test/crds; start nmstate-sim against the cluster;"
  echo "wait for the NodeNetworkState of $NODE_NAME"
}
step_nmstate() {
  local s k
  s=$(date +%s.%N)
  (cd "$ROOT/test" && go build -o "$BIN/nmstate-sim" ./sandbox/cmd/nmstate-sim)
  kc get crd nodenetworkconfigurationpolicies.nmstate.io >/dev/null 2>&1 || mark_restart "NMState's CRDs installed"
  for k in nodenetworkconfigurationpolicies nodenetworkconfigurationenactments nodenetworkstates; do
    kc apply --server-side --force-conflicts -f "$ROOT/test/crds/nmstate.io_$k.yaml" >/dev/null
    kc wait "crd/$k.nmstate.io" --for condition=Established --timeout 60s >/dev/null
  done
  start nmstate-sim "$BIN/nmstate-sim" --kubeconfig "$KUBECONFIG_ADMIN"
  wait_for "the simulated NodeNetworkState of $NODE_NAME" 60 kc get nodenetworkstate "$NODE_NAME"
  log "NMState (SIMULATED) answering policies: $(since "$s") s"
}
