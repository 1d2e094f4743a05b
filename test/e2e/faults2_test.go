package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Issue #33: faults real users met, second batch. The namespace's own
// policies (a ResourceQuota, a LimitRange, Pod Security) refusing what
// Wukong's VM needs are Stalled, naming what can change, and heal by
// themselves once the policy or the spec changes. In the sandbox the
// refusals are the real API server's admission; virt-controller's and
// CDI's reports of them are played as KubeVirt and CDI write them.

// assertStalled checks the Stalled contract of a problem on condition t:
// t False and Stalled True with reason, the message containing each of
// parts, phase Error, no Reconciling.
func assertStalled(c *assert.CollectT, w *v1alpha1.Wukong, t, reason string, parts ...string) {
	got, stalled := cond(w, t), cond(w, v1alpha1.StalledCondition)
	if !assert.NotNil(c, got, t) || !assert.NotNil(c, stalled, "Stalled") {
		return
	}
	assert.Equal(c, metav1.ConditionFalse, got.Status, t)
	assert.Equal(c, reason, got.Reason, t)
	assert.Equal(c, metav1.ConditionTrue, stalled.Status, "Stalled")
	assert.Equal(c, reason, stalled.Reason, "Stalled")
	for _, p := range parts {
		assert.Contains(c, got.Message, p, t)
	}
	assert.Equal(c, v1alpha1.PhaseError, w.Status.Phase)
	assert.Nil(c, cond(w, v1alpha1.ReconcilingCondition), "Reconciling")
}

// quota creates a ResourceQuota in ns and waits until the quota controller
// has counted its usage (until then the API server refuses everything it
// covers with "status unknown for quota").
func quota(t *testing.T, ns string, hard corev1.ResourceList) *corev1.ResourceQuota {
	t.Helper()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "compute"}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	create(t, q)
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, k.Get(context.Background(), key(q), q))
		assert.Len(c, q.Status.Used, len(hard), "the quota's usage is counted")
	}, "ResourceQuota %s counted", q.Name)
	return q
}

// restartVM asks for what `virtctl restart` asks of a VM whose run
// strategy is Always: stop this VMI, then start (virt-api's restart
// subresource adds both state change requests).
func restartVM(t *testing.T, nn types.NamespacedName) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vm, vmi := &kubevirtv1.VirtualMachine{}, &kubevirtv1.VirtualMachineInstance{}
		if err := k.Get(context.Background(), nn, vm); err != nil {
			return err
		}
		if err := k.Get(context.Background(), nn, vmi); err != nil {
			return err
		}
		vm.Status.StateChangeRequests = append(vm.Status.StateChangeRequests,
			kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StopRequest, UID: &vmi.UID},
			kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StartRequest})
		return k.Status().Update(context.Background(), vm)
	}))
}

// TestLauncherRefusedByQuota: a ResourceQuota on requests.memory with no
// room for the launcher pod (the guest's 256Mi plus KubeVirt's overhead is
// more than 512Mi in the sandbox; on a real cluster the quota is 384Mi, as
// real KubeVirt's overhead is well above 128Mi, GetMemoryOverhead):
// virt-controller cannot create the pod and retries; the Wukong is Stalled
// QuotaExceeded on Ready naming spec.memory with the API server's numbers,
// and runs once an administrator raises the quota.
func TestLauncherRefusedByQuota(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	limit := "512Mi"
	if !inSandbox {
		limit = "384Mi"
	}
	ns := newNamespace(t)
	q := quota(t, ns, corev1.ResourceList{corev1.ResourceRequestsMemory: resource.MustParse(limit)})
	w := newWukong(ns, "quota")
	create(t, w)

	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertStalled(c, got, v1alpha1.ReadyCondition, v1alpha1.ReasonQuotaExceeded,
			"spec.memory: the namespace's ResourceQuota refuses the VM's virt-launcher pod; the API server says: exceeded quota: compute, requested: requests.memory=",
			"limited: requests.memory="+limit, "change spec.memory and restart the VM (virtctl restart quota)")
		if r := cond(got, v1alpha1.ReadyCondition); r != nil {
			assert.NotContains(c, r.Message, "virt-launcher-quota-", "no generated pod name")
		}
	}, "the Wukong Stalled on the quota")

	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k.Get(ctxT(t), key(q), q); err != nil {
			return err
		}
		q.Spec.Hard[corev1.ResourceRequestsMemory] = resource.MustParse("2Gi")
		return k.Update(ctxT(t), q)
	}))
	waitRunning(t, key(w))
}

// TestLauncherRefusedByLimitsQuota: a ResourceQuota on limits.memory makes
// KubeVirt give the launcher pod a memory limit itself (twice its request),
// which the quota has no room for: Stalled QuotaExceeded naming spec.memory
// with the quota's limits.memory numbers. 768Mi is below twice the guest's
// 256Mi plus any overhead above 128Mi, so it holds on a real cluster too.
func TestLauncherRefusedByLimitsQuota(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	quota(t, ns, corev1.ResourceList{corev1.ResourceLimitsMemory: resource.MustParse("768Mi")})
	w := newWukong(ns, "limquota")
	create(t, w)
	eventually(t, 1, func(c *assert.CollectT) {
		assertStalled(c, getWukong(c, k, key(w)), v1alpha1.ReadyCondition, v1alpha1.ReasonQuotaExceeded,
			"spec.memory: the namespace's ResourceQuota refuses the VM's virt-launcher pod; the API server says: exceeded quota: compute, requested: limits.memory=",
			"limited: limits.memory=768Mi")
	}, "the Wukong Stalled on the limits quota")
}

// TestLauncherRefusedByLimitRange: a LimitRange whose default memory limit
// (512Mi) is below the launcher pod's request: the API server's pod
// validation refuses the pod once the LimitRanger gave it that limit. The
// Wukong is Stalled LimitRangeExceeded naming spec.memory; lowering
// spec.memory and restarting the VM runs it (in the sandbox by the state
// change requests virt-api's restart subresource writes, on a real cluster
// by that subresource, as virtctl restart does).
func TestLauncherRefusedByLimitRange(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	create(t, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mem"}, Spec: corev1.LimitRangeSpec{
		Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Default: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}},
	}})
	w := newWukong(ns, "limits")
	create(t, w)

	eventually(t, 1, func(c *assert.CollectT) {
		assertStalled(c, getWukong(c, k, key(w)), v1alpha1.ReadyCondition, v1alpha1.ReasonLimitRangeExceeded,
			"spec.memory: the namespace's LimitRange refuses the VM's virt-launcher pod; the API server says: spec.containers[0].resources.requests: Invalid value: ",
			"must be less than or equal to memory limit of 512Mi", "change spec.memory")
	}, "the Wukong Stalled on the LimitRange")

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.Memory = resource.MustParse("128Mi") })
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
		assert.Equal(c, metav1.ConditionTrue, condStatus(got, v1alpha1.RestartRequiredCondition), "the running VMI keeps its memory until a restart")
		assert.Equal(c, metav1.ConditionTrue, condStatus(got, v1alpha1.StalledCondition), "still refused until the restart")
	}, "the change to wait for a restart")
	if inSandbox {
		restartVM(t, key(w))
	} else {
		vmSubresource(t, key(w), "restart")
	}
	waitRunning(t, key(w))
}

// TestLauncherRefusedByPodSecurity: a namespace enforcing Pod Security
// "restricted" refuses KubeVirt's launcher pod (it runs without a seccomp
// profile). The Wukong is Stalled PodSecurityViolated, naming no field of
// its own, and runs once the namespace's level is baseline.
func TestLauncherRefusedByPodSecurity(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	setNamespaceLabel(t, ns, "pod-security.kubernetes.io/enforce", "restricted")
	w := newWukong(ns, "psa")
	create(t, w)

	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertStalled(c, got, v1alpha1.ReadyCondition, v1alpha1.ReasonPodSecurityViolated,
			`the namespace's PodSecurity refuses the VM's virt-launcher pod; the API server says: violates PodSecurity "restricted:latest": `,
			"seccompProfile", "pod-security.kubernetes.io/enforce")
		if r := cond(got, v1alpha1.ReadyCondition); r != nil {
			assert.NotContains(c, r.Message, "spec.", "no field of the Wukong's")
		}
	}, "the Wukong Stalled on Pod Security")

	setNamespaceLabel(t, ns, "pod-security.kubernetes.io/enforce", "baseline")
	waitRunning(t, key(w))
}

func setNamespaceLabel(t *testing.T, ns, label, value string) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := &corev1.Namespace{}
		if err := k.Get(ctxT(t), types.NamespacedName{Name: ns}, n); err != nil {
			return err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[label] = value
		return k.Update(ctxT(t), n)
	}))
}

// diskQuotaWukong creates a ResourceQuota of 1Gi of requests.storage (1.5Gi
// on a real cluster) in a new namespace and a Wukong whose 2Gi disk does not
// fit it: CDI cannot
// create the DataVolume's claim (the API server's quota admission refuses
// it) and reports ErrExceededQuota; the Wukong is Stalled QuotaExceeded on
// VolumesBound naming spec.disks[0].size with the quota's numbers.
func diskQuotaWukong(t *testing.T, name string) (*v1alpha1.Wukong, *corev1.ResourceQuota) {
	t.Helper()
	ns := newNamespace(t)
	// Real CDI asks for the disk plus its file-system overhead (2Gi:
	// 2276332667 bytes, 1Gi: 1138166334 with the default 5.5%), so on a
	// real cluster the quota sits between the two.
	limit, requested := "1Gi", "requests.storage=2Gi, "
	if !inSandbox {
		limit, requested = "1536Mi", "requests.storage="
	}
	q := quota(t, ns, corev1.ResourceList{corev1.ResourceRequestsStorage: resource.MustParse(limit)})
	w := newWukong(ns, name)
	w.Spec.Disks[0].Size = resource.MustParse("2Gi")
	create(t, w)
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertStalled(c, got, v1alpha1.VolumesBoundCondition, v1alpha1.ReasonQuotaExceeded,
			"spec.disks[0].size: the namespace's ResourceQuota has no room for the disk's claim; the API server says: exceeded quota: compute, requested: "+requested,
			"used: requests.storage=0, limited: requests.storage="+limit,
			"an administrator raises the quota", "replace the disk by a smaller one of another name")
		if r := cond(got, v1alpha1.ReadyCondition); assert.NotNil(c, r) {
			assert.Equal(c, v1alpha1.ReasonQuotaExceeded, r.Reason, "Ready says the same")
		}
	}, "the Wukong Stalled on the storage quota")
	return w, q
}

// TestDiskRefusedByQuotaSmallerDisk: a disk's size cannot shrink (the CRD
// refuses it), so the user replaces the disk by a smaller one of another
// name, which fits the quota, and the VM runs.
func TestDiskRefusedByQuotaSmallerDisk(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	t.Parallel()
	w, _ := diskQuotaWukong(t, "smaller")
	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.Disks[0] = v1alpha1.DiskSpec{Name: "small", Size: resource.MustParse("1Gi")}
	})
	waitRunning(t, key(w))
}

// TestDiskRefusedByQuotaRaised: an administrator raising the quota lets CDI
// make the claim on its next try; the VM runs without a change to the
// Wukong.
func TestDiskRefusedByQuotaRaised(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	t.Parallel()
	w, q := diskQuotaWukong(t, "raised")
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k.Get(ctxT(t), key(q), q); err != nil {
			return err
		}
		q.Spec.Hard[corev1.ResourceRequestsStorage] = resource.MustParse("5Gi")
		return k.Update(ctxT(t), q)
	}))
	waitRunning(t, key(w))
}

// TestKubeVirtWebhookUnreachable: KubeVirt's webhooks cannot be called (as
// while virt-api restarts during an upgrade) when a running Wukong changes.
// The API server refuses the VirtualMachine's update ("failed calling
// webhook ... connection refused"); the Wukong keeps what it observed
// (Running, its node, its addresses, Ready) and says in Reconciling that
// the change waits for the VirtualMachine update, quoting the error. Once
// the webhooks answer again the change lands without anything done. The
// webhook configuration is cluster-wide, so the test does not run in
// parallel with others.
func TestKubeVirtWebhookUnreachable(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	if !inSandbox || box == nil {
		t.Skip("takes KubeVirt's admission server away: sandbox only")
	}
	ns := newNamespace(t)
	w := newWukong(ns, "webhook")
	create(t, w)
	before := waitRunning(t, key(w))
	require.NotEmpty(t, before.Status.Networks, "the pod network's address")

	require.NoError(t, box.SetKubeVirtAdmissionReachable(false))
	t.Cleanup(func() { _ = box.SetKubeVirtAdmissionReachable(true) })
	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.CPU = 2 })

	eventually(t, 1, func(c *assert.CollectT) {
		assertVMUpdatePending(c, before, getWukong(c, k, key(w)),
			"the change waits for the VirtualMachine update, retried with backoff: cannot apply VirtualMachine: ",
			"failed calling webhook", "connect: connection refused")
	}, "the Wukong to keep what it observed and say the change waits")

	require.NoError(t, box.SetKubeVirtAdmissionReachable(true))
	eventually(t, 2, func(c *assert.CollectT) {
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm))
		if assert.NotNil(c, vm.Spec.Template.Spec.Domain.CPU) {
			assert.Equal(c, uint32(2), vm.Spec.Template.Spec.Domain.CPU.Sockets, "the change landed")
		}
		got := getWukong(c, k, key(w))
		assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
		assert.Nil(c, cond(got, v1alpha1.ReconcilingCondition), "Reconciling")
		assert.Equal(c, metav1.ConditionTrue, condStatus(got, v1alpha1.RestartRequiredCondition), "cpu takes effect after a restart")
	}, "the change to land once the webhooks answer")
}

// assertVMUpdatePending: got, a change of the running Wukong before that
// the API server refused to write into the VirtualMachine, keeps what
// before observed (Running, node, addresses, Ready; not Stalled), has not
// observed its generation, and says in Reconciling (VMUpdatePending) that
// the change waits, with each of parts in the message.
func assertVMUpdatePending(c *assert.CollectT, before, got *v1alpha1.Wukong, parts ...string) *metav1.Condition {
	assert.Equal(c, v1alpha1.PhaseRunning, got.Status.Phase, "phase")
	assert.Equal(c, before.Status.NodeName, got.Status.NodeName, "node")
	assert.Equal(c, before.Status.Networks, got.Status.Networks, "addresses")
	assert.Equal(c, metav1.ConditionTrue, condStatus(got, v1alpha1.ReadyCondition), "Ready")
	assert.Nil(c, cond(got, v1alpha1.StalledCondition), "Stalled")
	assert.Less(c, got.Status.ObservedGeneration, got.Generation, "the change has not landed")
	rec := cond(got, v1alpha1.ReconcilingCondition)
	if assert.NotNil(c, rec, "Reconciling") {
		assert.Equal(c, v1alpha1.ReasonVMUpdatePending, rec.Reason)
		for _, p := range parts {
			assert.Contains(c, rec.Message, p)
		}
	}
	return rec
}
