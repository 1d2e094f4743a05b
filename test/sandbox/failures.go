package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Two ways a machine keeps failing to start on a real node, played as the
// real systems play them (issue #21: both were seen on a real node with
// KubeVirt v1.9.0, Multus v4.2.3 thick and the CNI plugins v1.10.0):
//
//   - The kubelet cannot create the launcher pod's sandbox because a CNI
//     plugin a NetworkAttachmentDefinition names is not installed on the
//     node (CNIPlugins lists what is): Multus' delegate fails with libcni's
//     `failed to find plugin "<type>" in path [/opt/cni/bin]`
//     (containernetworking/cni pkg/invoke/find.go), which the kubelet records
//     as a Warning Event FailedCreatePodSandBox on the pod in Multus thick's
//     wording (see podSandboxFailure). The pod never runs, so the VMI stays
//     Scheduling and the VM Starting, with nothing about it in their status.
//   - virt-handler cannot set up the VMI's network because the node's kernel
//     cannot make a link KubeVirt's bridge binding needs (NodeKernelWithout):
//     it records a Warning Event SyncFailed on the VMI, "failed to configure
//     vmi network: setup failed, err: Critical network error: LinkAdd:
//     operation not supported" (pkg/virt-handler/vm.go; bridgeBindingSpec in
//     pkg/network/setup/netpod/netpod.go adds a bridge and a dummy link for
//     every bridge-bound interface), and a critical network error fails the
//     VMI (handleSyncError: Synchronized=False). The VM controller then
//     counts a start failure, deletes the VMI and starts a new one after a
//     backoff, showing CrashLoopBackOff meanwhile (startFailure).

// CNIPlugins are the CNI plugin types installed on every simulated node
// (/opt/cni/bin): the reference plugins (containernetworking/plugins
// v1.10.0: main, IPAM and meta plugins), Multus, and the ones a KubeVirt
// cluster's network addons install (macvtap-cni, ovs-cni, sriov-cni,
// whereabouts). A NetworkAttachmentDefinition naming another type (for
// example cnv-bridge, OpenShift's name for the bridge plugin) makes the
// kubelet fail the launcher pod's sandbox.
var CNIPlugins = []string{
	"bandwidth", "bridge", "dhcp", "dummy", "firewall", "host-device", "host-local", "ipvlan", "loopback",
	"macvlan", "portmap", "ptp", "sbr", "static", "tap", "tuning", "vlan", "vrf",
	"multus", "multus-shim", "macvtap", "ovs", "sriov", "whereabouts",
}

// NodeKernelWithout is the annotation a test puts on a Node it creates to
// say which link types the node's kernel cannot create (comma-separated:
// "dummy" for a kernel built without CONFIG_DUMMY, "bridge" without
// CONFIG_BRIDGE). virt-handler on such a node fails every VMI with a
// bridge-bound interface (see above).
const NodeKernelWithout = "sandbox.novasphere.dev/kernel-without"

const (
	// ReasonSyncFailed is virt-handler's Event reason (kubevirtv1.SyncFailed).
	ReasonSyncFailed = "SyncFailed"
	// ReasonFailedCreatePodSandBox is the kubelet's Event reason
	// (pkg/kubelet/events).
	ReasonFailedCreatePodSandBox = "FailedCreatePodSandBox"
	// MessageLinkAddNotSupported is virt-handler's SyncFailed message when
	// the kernel cannot add a link the bridge binding needs.
	MessageLinkAddNotSupported = "failed to configure vmi network: setup failed, err: Critical network error: LinkAdd: operation not supported"
	// MessageVMICrashed is virt-handler's Warning Event Stopped on a VMI
	// that became Failed (VMICrashed, pkg/virt-handler/controller.go).
	MessageVMICrashed = "The VirtualMachineInstance crashed."
	// reasonSyncDomainFailed is the VMI Synchronized=False reason
	// virt-handler's handleSyncError writes.
	reasonSyncDomainFailed = "Synchronizing with the Domain failed."
	// defaultMaxCrashLoopBackoffDelaySeconds is KubeVirt's cap on the
	// start failure backoff (pkg/virt-controller/watch/vm/vm.go).
	defaultMaxCrashLoopBackoffDelaySeconds = 300
)

// networkSetupFails returns virt-handler's SyncFailed message for vmi on
// node, or "": a bridge-bound interface on a node whose kernel cannot add a
// bridge or dummy link.
func networkSetupFails(vmi *kubevirtv1.VirtualMachineInstance, node *corev1.Node) string {
	lacks := strings.Split(node.Annotations[NodeKernelWithout], ",")
	if !slices.Contains(lacks, "dummy") && !slices.Contains(lacks, "bridge") {
		return ""
	}
	for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
		if iface.Bridge != nil {
			return MessageLinkAddNotSupported
		}
	}
	return ""
}

// failVMISync plays virt-handler failing vmi on node with msg: the Warning
// Events SyncFailed (msg) and Stopped ("The VirtualMachineInstance
// crashed."), then phase Failed with Synchronized=False.
func (r *kubevirtSim) failVMISync(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, node, msg string, before *kubevirtv1.VirtualMachineInstanceStatus) error {
	vmi.Status.Phase = kubevirtv1.Failed
	vmi.Status.NodeName = node
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized, corev1.ConditionFalse, reasonSyncDomainFailed, msg)
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "PodNotReady", "")
	if err := r.recordWarning(ctx, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", ReasonSyncFailed, msg, "virt-handler", node); err != nil {
		return err
	}
	// recordPhaseChangeEvent on the phase Failed, in the same second.
	if err := r.recordWarning(ctx, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", string(kubevirtv1.Stopped), MessageVMICrashed, "virt-handler", node); err != nil {
		return err
	}
	log.FromContext(ctx).Info("virt-handler: VMI failed", "reason", ReasonSyncFailed, "message", msg)
	return r.updateVMIStatus(ctx, vmi, before)
}

// podSandboxFailure returns the kubelet's FailedCreatePodSandBox message
// for pod when a network of vmi names a CNI plugin not in CNIPlugins, or "".
// The wording is the chain a real node produces: the kubelet's "Failed to
// create pod sandbox: %v" (kuberuntime_manager.go), containerd's "failed to
// setup network for sandbox %q", libcni's `plugin type=%q name=%q failed
// (add)`, Multus' shim "CmdAdd (shim): CNI request failed with status 400:
// '%s'" (pkg/server/api/api.go) around the daemon's "<args> ERRORED: error
// configuring pod [%s/%s] networking: [%s/%s/%s:%s]: error adding container
// to network %q: %v" (pkg/server/server.go, pkg/multus/multus.go) and the
// shim's ": StdinData: %s" (pkg/server/api/shim.go).
func (r *kubevirtSim) podSandboxFailure(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, pod *corev1.Pod) (string, error) {
	for _, n := range vmi.Spec.Networks {
		if n.Multus == nil {
			continue
		}
		ns, name, ok := strings.Cut(n.Multus.NetworkName, "/")
		if !ok {
			ns, name = vmi.Namespace, n.Multus.NetworkName
		}
		nad := &nadv1.NetworkAttachmentDefinition{}
		if err := r.live.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, nad); err != nil {
			if apierrors.IsNotFound(err) {
				continue // real Multus fails differently; not played here
			}
			return "", err
		}
		netName, missing := missingPlugin(nad)
		if missing == "" {
			continue
		}
		id := fmt.Sprintf("%064x", hash(string(pod.UID)))[:64]
		netns := fmt.Sprintf("/var/run/netns/cni-%08x-0000-0000-0000-%012x", hash(string(pod.UID)+"ns"), hash(pod.Name))
		args := fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s", pod.Namespace, pod.Name, id, pod.UID)
		cniErr := fmt.Sprintf("error configuring pod [%s/%s] networking: [%s/%s/%s:%s]: error adding container to network %q: failed to find plugin %q in path [/opt/cni/bin]",
			pod.Namespace, pod.Name, pod.Namespace, pod.Name, pod.UID, netName, netName, missing)
		return fmt.Sprintf("Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox %q: "+
			`plugin type="multus-shim" name="multus-cni-network" failed (add): CmdAdd (shim): CNI request failed with status 400: `+
			`'ContainerID:%q Netns:%q IfName:"eth0" Args:%q Path:"" ERRORED: %s`+"\n"+`': StdinData: `+
			`{"binDir":"/opt/cni/bin","clusterNetwork":"/host/etc/cni/net.d/10-kindnet.conflist","cniVersion":"0.3.1","logLevel":"verbose","logToStderr":true,"name":"multus-cni-network","type":"multus-shim"}`,
			id, id, netns, args, cniErr), nil
	}
	return "", nil
}

// missingPlugin returns the network name Multus uses for nad (its config's
// name, else the NAD's) and the first plugin type its CNI config names
// (the plugin, each plugin of a list, and their IPAM) that CNIPlugins
// lacks, or "".
func missingPlugin(nad *nadv1.NetworkAttachmentDefinition) (netName, missing string) {
	type plugin struct {
		Type string `json:"type"`
		IPAM struct {
			Type string `json:"type"`
		} `json:"ipam"`
	}
	var conf struct {
		plugin
		Name    string   `json:"name"`
		Plugins []plugin `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(nad.Spec.Config), &conf); err != nil {
		return "", ""
	}
	netName = conf.Name
	if netName == "" {
		netName = nad.Name
	}
	for _, p := range append([]plugin{conf.plugin}, conf.Plugins...) {
		for _, t := range []string{p.Type, p.IPAM.Type} {
			if t != "" && !slices.Contains(CNIPlugins, t) {
				return netName, t
			}
		}
	}
	return netName, ""
}

// recordWarning creates a core/v1 Warning Event on obj as component on host
// records it (the Event shape client-go's recorder writes).
func (r *kubevirtSim) recordWarning(ctx context.Context, obj client.Object, apiVersion, kind, reason, msg, component, host string) error {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s.%x", obj.GetName(), now.UnixNano()),
			Namespace:   obj.GetNamespace(),
			Annotations: map[string]string{SimulatedAnnotation: "true"},
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: apiVersion, Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Reason: reason, Message: msg, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: component, Host: host},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: component, ReportingInstance: host,
	}
	if err := r.c.Create(ctx, ev); err != nil {
		return fmt.Errorf("recording Event %s: %w", reason, err)
	}
	return nil
}

// failedVMI plays the VM controller on a VMI that failed: a VMI that never
// ran is a start failure (syncStartFailureStatus), the VM shows
// CrashLoopBackOff, and for Always and RerunOnFailure the VMI is deleted so
// that a new one starts once the backoff is over (Once keeps it).
//
// A VMI that ran and failed (its pod or node gone) is no start failure
// (vmiFailedEarly is false, shouldClearStartFailure clears the count): the
// VM shows Stopped (isVirtualMachineStatusStopped: the VMI is final) and,
// for Always and RerunOnFailure, gets a new VMI at once.
func (r *kubevirtSim) failedVMI(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, before *kubevirtv1.VirtualMachineStatus) (ctrl.Result, error) {
	if wasRunning(vmi) {
		vm.Status.StartFailure = nil
		stoppedStatus(vm, true)
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStopped
	} else {
		countStartFailure(vm, vmi, time.Now())
		crashLoopStatus(vm, true)
	}
	trimStateChangeRequest(vm, vmi)
	if err := r.updateVMStatus(ctx, vm, before); err != nil {
		return ctrl.Result{}, err
	}
	rs := deref(vm.Spec.RunStrategy)
	restarts := rs == kubevirtv1.RunStrategyAlways || rs == kubevirtv1.RunStrategyRerunOnFailure ||
		vm.Spec.RunStrategy == nil && deref(vm.Spec.Running) //nolint:staticcheck // the deprecated field still works
	if restarts && vmi.DeletionTimestamp == nil {
		if err := r.c.Delete(ctx, vmi); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
		if vm.Status.StartFailure != nil {
			log.FromContext(ctx).Info("VMI failed before it ran: deleted it, start failure counted",
				"consecutiveFailCount", vm.Status.StartFailure.ConsecutiveFailCount)
		} else {
			log.FromContext(ctx).Info("VMI that ran failed: deleted it, a new one starts", "reason", vmi.Status.Reason)
		}
	}
	return ctrl.Result{}, nil
}

// countStartFailure records vmi's failure in vm.status.startFailure once
// (pkg/virt-controller/watch/vm/vm.go, syncStartFailureStatus).
func countStartFailure(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, now time.Time) {
	sf := vm.Status.StartFailure
	if sf != nil && sf.LastFailedVMIUID == vmi.UID {
		return
	}
	count := 1
	if sf != nil {
		count = sf.ConsecutiveFailCount + 1
	}
	retry := metav1.NewTime(now.Add(time.Duration(startBackoffSeconds(count, defaultMaxCrashLoopBackoffDelaySeconds)) * time.Second))
	vm.Status.StartFailure = &kubevirtv1.VirtualMachineStartFailure{LastFailedVMIUID: vmi.UID, RetryAfterTimestamp: &retry, ConsecutiveFailCount: count}
}

// startBackoffSeconds is KubeVirt's calculateStartBackoffTime: max(maxDelay/30,
// 10) times failCount squared, plus up to half of that at random, at most
// maxDelay.
func startBackoffSeconds(failCount, maxDelay int) int {
	failCount = max(failCount, 1)
	interval := max(maxDelay/30, 10)
	delay := interval * int(math.Pow(float64(failCount), 2))
	delay += rand.IntN(delay/2 + 1) //nolint:gosec // jitter, as KubeVirt's
	return min(delay, maxDelay)
}

// startBackoffLeft is how long the VM controller still waits before it
// starts a new VMI (startFailureBackoffTimeLeft), 0 when it may.
func startBackoffLeft(vm *kubevirtv1.VirtualMachine, now time.Time) time.Duration {
	sf := vm.Status.StartFailure
	if sf == nil || sf.RetryAfterTimestamp == nil {
		return 0
	}
	return max(sf.RetryAfterTimestamp.Sub(now), 0)
}

// crashLoopStatus is the status of a VM whose VMI failed before it ran and
// is gone or final: printableStatus CrashLoopBackOff
// (isVirtualMachineStatusCrashLoopBackOff), Ready=False VMINotExists, no
// Failure condition: the reason is only in the VMI's Events.
func crashLoopStatus(vm *kubevirtv1.VirtualMachine, vmiExists bool) {
	vm.Status.Created = vmiExists
	vm.Status.Ready = false
	vm.Status.RunStrategy = deref(vm.Spec.RunStrategy)
	vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusCrashLoopBackOff
	setVMCondition(vm, kubevirtv1.VirtualMachineReady, corev1.ConditionFalse, "VMINotExists", "VMI does not exist")
	removeVMCondition(vm, kubevirtv1.VirtualMachineRestartRequired)
	removeVMCondition(vm, conditionPodScheduled)
	removeVMCondition(vm, kubevirtv1.VirtualMachineFailure)
}
