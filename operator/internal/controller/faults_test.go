package controller

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestLauncherRefusedProblem: the namespace refusing the launcher pod is a
// problem on Ready that quotes the API server and says what may change:
// the fields behind the resources it names (and a restart), or the
// namespace's policy alone.
func TestLauncherRefusedProblem(t *testing.T) {
	const (
		quota   = `exceeded quota: compute, requested: requests.memory=1226Mi, used: requests.memory=0, limited: requests.memory=1Gi`
		both    = `exceeded quota: compute, requested: limits.cpu=1,requests.memory=1226Mi, used: limits.cpu=0,requests.memory=0, limited: limits.cpu=500m,requests.memory=1Gi`
		pods    = `exceeded quota: count, requested: pods=1, used: pods=2, limited: pods=2`
		limit   = `spec.containers[0].resources.requests: Invalid value: "1226Mi": must be less than or equal to memory limit of 1Gi`
		psa     = `violates PodSecurity "restricted:latest": seccompProfile (pod or container "compute" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`
		wrapped = `failed to create virtual machine pod: pods "virt-launcher-vm1-x7k2p" is forbidden: `
	)
	tests := []struct {
		name, msg, reason, field string
		parts                    []string
	}{
		{name: "quota on memory", msg: wrapped + quota, reason: v1alpha1.ReasonQuotaExceeded, field: "spec.memory",
			parts: []string{"the namespace's ResourceQuota refuses the VM's virt-launcher pod; the API server says: " + quota,
				"change spec.memory and restart the VM (virtctl restart vm1)", "an administrator changes the namespace's ResourceQuota"}},
		{name: "quota on cpu and memory", msg: wrapped + both, reason: v1alpha1.ReasonQuotaExceeded,
			parts: []string{"the guest's cpu and memory", "change spec.cpu or spec.memory"}},
		{name: "quota on pods", msg: wrapped + pods, reason: v1alpha1.ReasonQuotaExceeded,
			parts: []string{pods, "an administrator must change the namespace's ResourceQuota"}},
		{name: "LimitRange default limit", msg: `failed to create virtual machine pod: Pod "virt-launcher-vm1-x7k2p" is invalid: ` + limit,
			reason: v1alpha1.ReasonLimitRangeExceeded, field: "spec.memory", parts: []string{"LimitRange refuses", limit, "change spec.memory"}},
		{name: "Pod Security", msg: wrapped + psa, reason: v1alpha1.ReasonPodSecurityViolated,
			parts: []string{"PodSecurity refuses", psa, "pod-security.kubernetes.io/enforce"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusal := kubevirt.ParseLauncherRefusal(tt.msg)
			if !assert.NotNil(t, refusal) {
				return
			}
			reason := map[string]string{
				kubevirt.PolicyResourceQuota: kubevirt.ReasonLauncherQuotaExceeded,
				kubevirt.PolicyLimitRange:    kubevirt.ReasonLauncherLimitRange,
				kubevirt.PolicyPodSecurity:   kubevirt.ReasonLauncherPodSecurity,
			}[refusal.Policy]
			field := ""
			if len(refusal.Resources) == 1 {
				field = refusal.Resources[0]
			}
			p := problemOf(fromKubeVirt, testWukong(), apply.Stalled(reason, refusal).On("", field))
			assert.Equal(t, v1alpha1.ReadyCondition, p.Condition)
			assert.Equal(t, tt.reason, p.Reason)
			assert.Equal(t, tt.field, p.Field)
			assert.False(t, p.External, "the VMI is watched: its next sync shows the fix")
			for _, part := range tt.parts {
				assert.Contains(t, p.Message, part)
			}
			assert.NotContains(t, p.Message, "virt-launcher-vm1-x7k2p", "no generated pod name")
		})
	}
}

// TestDiskQuotaProblem: a claim a ResourceQuota refuses is a problem on
// VolumesBound naming the disk's size with the quota's numbers, or the
// disk itself when the quota counts claims.
func TestDiskQuotaProblem(t *testing.T) {
	w := testWukong()
	storageFull := &storage.QuotaExceededError{Disk: "root", Storage: true,
		Message: "exceeded quota: storage, requested: requests.storage=10Gi, used: requests.storage=0, limited: requests.storage=5Gi"}
	p := problemOf(fromStorage, w, apply.Stalled(storage.ReasonQuotaExceeded, storageFull).On("root", storageFull.Field()))
	assert.Equal(t, v1alpha1.VolumesBoundCondition, p.Condition)
	assert.Equal(t, v1alpha1.ReasonQuotaExceeded, p.Reason)
	assert.Equal(t, "spec.disks[0].size", p.Field)
	assert.True(t, p.External, "quotas are not watched: a refused write of Wukong's own is tried again after StalledRetry")
	assert.Contains(t, p.Message, "the API server says: "+storageFull.Message)
	assert.Contains(t, p.Message, "an administrator raises the quota, after which the disk is made by itself; or replace the disk by a smaller one of another name: spec.disks[0].size cannot shrink")

	claims := &storage.QuotaExceededError{Disk: "root", Message: "exceeded quota: q, requested: persistentvolumeclaims=1, used: persistentvolumeclaims=2, limited: persistentvolumeclaims=2"}
	p = problemOf(fromStorage, w, apply.Stalled(storage.ReasonQuotaExceeded, claims).On("root", claims.Field()))
	assert.Equal(t, "spec.disks[0]", p.Field)
	assert.Contains(t, p.Message, "the quota counts claims")
}

// TestComputeStatusVMNotWritten: a running VM whose update fails for a
// reason a retry may fix (KubeVirt's webhook unreachable) keeps what was
// observed (Running, node, addresses, Ready) and says in Reconciling that
// the change waits, quoting the error; observedGeneration stays.
func TestComputeStatusVMNotWritten(t *testing.T) {
	const webhook = `cannot apply VirtualMachine: Internal error occurred: failed calling webhook "virtualmachines-mutator.kubevirt.io": ` +
		`failed to call webhook: Post "https://virt-api.kubevirt.svc:443/virtualmachines-mutate?timeout=10s": dial tcp 10.96.0.5:443: connect: connection refused`
	w := testWukong()
	w.Status.ObservedGeneration = 2
	notWritten := errors.New(webhook)
	s := &scope{w: w, net: netOK, netDone: true, vols: bound, volsDone: true, notWritten: notWritten, transient: notWritten,
		vm: kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, true), runningVMI("node-1"))}
	computeStatus(w, s)
	assert.Equal(t, v1alpha1.PhaseRunning, w.Status.Phase)
	assert.Equal(t, "node-1", w.Status.NodeName)
	if assert.NotEmpty(t, w.Status.Networks) {
		assert.Equal(t, "10.244.1.5", w.Status.Networks[0].IPAddress)
	}
	assert.Equal(t, metav1.ConditionTrue, conditions.Get(w, v1alpha1.ReadyCondition).Status)
	rec := conditions.Get(w, v1alpha1.ReconcilingCondition)
	if assert.NotNil(t, rec) {
		assert.Equal(t, metav1.ConditionTrue, rec.Status)
		assert.Equal(t, v1alpha1.ReasonVMUpdatePending, rec.Reason)
		assert.Equal(t, "the change waits for the VirtualMachine update, retried with backoff: "+webhook, rec.Message)
	}
	assert.Nil(t, conditions.Get(w, v1alpha1.StalledCondition))
	assert.Equal(t, int64(2), w.Status.ObservedGeneration, "the change has not landed")

	// A VM that could not be created yet says so.
	w = testWukong()
	computeStatus(w, &scope{w: w, net: netOK, netDone: true, vols: bound, volsDone: true, notWritten: notWritten, transient: notWritten})
	if rec := conditions.Get(w, v1alpha1.ReconcilingCondition); assert.NotNil(t, rec) {
		assert.Contains(t, rec.Message, "the change waits for the VirtualMachine create")
	}
}
