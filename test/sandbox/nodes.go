package sandbox

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AddNode creates a Ready simulated Node name with InternalIP address, the
// labels a KubeVirt node has (hostname, linux/amd64,
// kubevirt.io/schedulable=true) and taints, and its NodeNetworkState. The
// sandbox's own nodes are made with it; a test may add one to play a node
// that differs (e.g. annotations NodeKernelWithout), tainted so that only
// its own VMs go there, and delete it afterwards. annotations are added to
// SimulatedAnnotation.
func AddNode(ctx context.Context, c client.Client, name, address string, annotations map[string]string, taints []corev1.Taint) error {
	node := &corev1.Node{ObjectMeta: simulatedMeta(name, "")}
	for k, v := range annotations {
		node.Annotations[k] = v
	}
	// virt-handler's first heartbeat (see nodeloss.go).
	node.Annotations[kubevirtv1.VirtHandlerHeartbeat] = time.Now().UTC().Format(time.RFC3339)
	node.Labels = map[string]string{
		corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
		"kubevirt.io/schedulable": "true",
	}
	if err := c.Create(ctx, node); err != nil {
		return fmt.Errorf("creating Node %s: %w", name, err)
	}
	// Big nodes: the real scheduler counts every launcher pod's
	// requests, and the benchmarks place a thousand VMs on two nodes.
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("256"),
		corev1.ResourceMemory: resource.MustParse("2Ti"),
		corev1.ResourcePods:   resource.MustParse("2000"),
	}
	// macvtap-cni's device plugin with its default (empty) configuration
	// offers one resource per link of the node, named after it, with
	// capacity 100 (kubevirt/macvtap-cni README, "Deployment": "If the
	// configuration is empty, the device plugin will expose all the
	// physical interfaces"; pkg/deviceplugin). No SR-IOV VFs and no
	// bridge-marker resources: a NIC asking for one leaves the launcher
	// pod Pending, Insufficient <resource>, as on a node without them.
	for _, link := range append([]string{PrimaryInterface}, SecondaryInterfaces...) {
		capacity[corev1.ResourceName(MacvtapResourcePrefix+link)] = resource.MustParse("100")
	}
	now := metav1.Now()
	created := node.DeepCopy()
	node.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "simulated node is ready", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: address}},
		NodeInfo: corev1.NodeSystemInfo{
			Architecture: "amd64", OperatingSystem: "linux", KubeletVersion: "v1.37.2",
			OSImage: "simulated",
		},
	}
	// Patches: the virt-handler heartbeat simulator may write the node
	// meanwhile.
	if err := c.Status().Patch(ctx, node, client.MergeFrom(created)); err != nil {
		return fmt.Errorf("setting Node %s ready: %w", name, err)
	}
	// The API server taints new nodes not-ready; the node lifecycle
	// controller (not run here) would lift it once they are Ready.
	base := node.DeepCopy()
	node.Spec.Taints = taints
	if err := c.Patch(ctx, node, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("untainting Node %s: %w", name, err)
	}
	return createNodeState(ctx, c, node)
}
