package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/apply"
)

// The API server's refusals, as virt-controller v1.9.0 words the VMI's
// Synchronized=False FailedCreate message around them
// (pkg/virt-controller/watch/vmi/lifecycle.go).
const (
	refusedQuota = `failed to create virtual machine pod: pods "virt-launcher-vm1-x7k2p" is forbidden: exceeded quota: compute, ` +
		`requested: requests.memory=1226Mi, used: requests.memory=0, limited: requests.memory=1Gi`
	refusedQuotaBoth = `failed to create virtual machine pod: pods "virt-launcher-vm1-x7k2p" is forbidden: exceeded quota: compute, ` +
		`requested: limits.cpu=1,requests.memory=1226Mi, used: limits.cpu=0,requests.memory=0, limited: limits.cpu=500m,requests.memory=1Gi`
	refusedQuotaPods = `failed to create virtual machine pod: pods "virt-launcher-vm1-x7k2p" is forbidden: exceeded quota: count, ` +
		`requested: pods=1, used: pods=2, limited: pods=2`
	refusedLimitDefault = `failed to create virtual machine pod: Pod "virt-launcher-vm1-x7k2p" is invalid: spec.containers[0].resources.requests: ` +
		`Invalid value: "1226Mi": must be less than or equal to memory limit of 1Gi`
	refusedLimitMin = `failed to create virtual machine pod: pods "virt-launcher-vm1-x7k2p" is forbidden: minimum cpu usage per Container is 500m, but request is 100m`
	refusedPSA      = `failed to create pod for vmi ns1/vm1, it needs a privileged namespace to run: pods "virt-launcher-vm1-x7k2p" is forbidden: ` +
		`violates PodSecurity "restricted:latest": seccompProfile (pod or container "compute" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`
)

func TestParseLauncherRefusal(t *testing.T) {
	tests := []struct {
		name, msg string
		want      *LauncherRefusedError
	}{
		{name: "quota on memory", msg: refusedQuota, want: &LauncherRefusedError{Policy: PolicyResourceQuota, Resources: []string{"memory"},
			Message: "exceeded quota: compute, requested: requests.memory=1226Mi, used: requests.memory=0, limited: requests.memory=1Gi"}},
		{name: "quota on cpu and memory", msg: refusedQuotaBoth, want: &LauncherRefusedError{Policy: PolicyResourceQuota, Resources: []string{"cpu", "memory"},
			Message: "exceeded quota: compute, requested: limits.cpu=1,requests.memory=1226Mi, used: limits.cpu=0,requests.memory=0, limited: limits.cpu=500m,requests.memory=1Gi"}},
		{name: "quota on the number of pods names no resource", msg: refusedQuotaPods, want: &LauncherRefusedError{Policy: PolicyResourceQuota,
			Message: "exceeded quota: count, requested: pods=1, used: pods=2, limited: pods=2"}},
		{name: "quota tracking limits the pod lacks", msg: `failed to create virtual machine pod: pods "p" is forbidden: failed quota: q: must specify limits.memory`,
			want: &LauncherRefusedError{Policy: PolicyResourceQuota, Resources: []string{"memory"}, Message: "failed quota: q: must specify limits.memory"}},
		{name: "LimitRange default limit below the request", msg: refusedLimitDefault, want: &LauncherRefusedError{Policy: PolicyLimitRange, Resources: []string{"memory"},
			Message: `spec.containers[0].resources.requests: Invalid value: "1226Mi": must be less than or equal to memory limit of 1Gi`}},
		{name: "LimitRange minimum", msg: refusedLimitMin, want: &LauncherRefusedError{Policy: PolicyLimitRange, Resources: []string{"cpu"},
			Message: "minimum cpu usage per Container is 500m, but request is 100m"}},
		{name: "LimitRange ratio", msg: `failed to create virtual machine pod: pods "p" is forbidden: memory max limit to request ratio per Container is 1, but provided ratio is 2.000000`,
			want: &LauncherRefusedError{Policy: PolicyLimitRange, Resources: []string{"memory"}, Message: "memory max limit to request ratio per Container is 1, but provided ratio is 2.000000"}},
		{name: "Pod Security", msg: refusedPSA, want: &LauncherRefusedError{Policy: PolicyPodSecurity,
			Message: `violates PodSecurity "restricted:latest": seccompProfile (pod or container "compute" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`}},
		{name: "an API hiccup is no refusal", msg: "failed to create virtual machine pod: etcdserver: request timed out"},
		{name: "a manifest that cannot be rendered is no refusal", msg: "failed to render launch manifest: unable to find the network binding plugin 'x' in Kubevirt configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ParseLauncherRefusal(tt.msg))
		})
	}
}

func TestLauncherRefusal(t *testing.T) {
	vm := &kubevirtv1.VirtualMachine{}
	vmi := func(phase kubevirtv1.VirtualMachineInstancePhase, reason, msg string) *kubevirtv1.VirtualMachineInstance {
		v := &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{Phase: phase}}
		v.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{
			Type: kubevirtv1.VirtualMachineInstanceSynchronized, Status: corev1.ConditionFalse, Reason: reason, Message: msg}}
		return v
	}

	err := Observe(vm, vmi(kubevirtv1.Pending, "FailedCreate", refusedQuota)).LauncherRefusal()
	f, ok := apply.AsFailure(err)
	require.True(t, ok, "a stalled *apply.Failure: %v", err)
	assert.True(t, f.Stalled)
	assert.Equal(t, ReasonLauncherQuotaExceeded, f.Reason)
	assert.Equal(t, "memory", f.Field)
	var refused *LauncherRefusedError
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, PolicyResourceQuota, refused.Policy)

	f, _ = apply.AsFailure(Observe(vm, vmi(kubevirtv1.Pending, "FailedCreate", refusedQuotaBoth)).LauncherRefusal())
	assert.Empty(t, f.Field, "two resources: no one field")
	f, _ = apply.AsFailure(Observe(vm, vmi(kubevirtv1.Pending, "FailedCreate", refusedPSA)).LauncherRefusal())
	assert.Equal(t, ReasonLauncherPodSecurity, f.Reason)
	f, _ = apply.AsFailure(Observe(vm, vmi(kubevirtv1.Pending, "FailedCreate", refusedLimitDefault)).LauncherRefusal())
	assert.Equal(t, ReasonLauncherLimitRange, f.Reason)

	assert.NoError(t, Observe(vm, nil).LauncherRefusal(), "no VMI")
	assert.NoError(t, Observe(vm, vmi(kubevirtv1.Pending, "FailedCreate", "failed to create virtual machine pod: etcdserver: request timed out")).LauncherRefusal())
	assert.NoError(t, Observe(vm, vmi(kubevirtv1.Failed, "FailedCreate", refusedQuota)).LauncherRefusal(), "a final VMI")
	assert.NoError(t, Observe(vm, vmi(kubevirtv1.Pending, "Synchronizing with the Domain failed.", refusedQuota)).LauncherRefusal(), "not virt-controller's FailedCreate")
	deleting := vmi(kubevirtv1.Pending, "FailedCreate", refusedQuota)
	deleting.DeletionTimestamp = &metav1.Time{}
	assert.NoError(t, Observe(vm, deleting).LauncherRefusal(), "a VMI being deleted")
}
