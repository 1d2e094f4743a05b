package e2e_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// clusterInstancetype creates a VirtualMachineClusterInstancetype of a
// unique name (prefix plus a suffix) with cpu guest vCPUs and memory, and
// deletes it at the end.
func clusterInstancetype(t *testing.T, prefix string, cpu uint32, memory string) *instancetypev1beta1.VirtualMachineClusterInstancetype {
	t.Helper()
	requireKinds(t, instancetypev1beta1.SchemeGroupVersion.WithKind("VirtualMachineClusterInstancetype"))
	it := &instancetypev1beta1.VirtualMachineClusterInstancetype{
		ObjectMeta: metav1.ObjectMeta{Name: prefix + randSuffix()},
		Spec: instancetypev1beta1.VirtualMachineInstancetypeSpec{
			CPU:    instancetypev1beta1.CPUInstancetype{Guest: cpu},
			Memory: instancetypev1beta1.MemoryInstancetype{Guest: resource.MustParse(memory)},
		},
	}
	require.NoError(t, k.Create(ctxT(t), it))
	t.Cleanup(func() { _ = k.Delete(t.Context(), it) })
	return it
}

// sizedBy is a Wukong sized by the instance type named name instead of
// cpu and memory.
func sizedBy(ns, name, instancetype string) *v1alpha1.Wukong {
	w := newWukong(ns, name)
	w.Spec.CPU, w.Spec.Memory = 0, resource.Quantity{}
	w.Spec.Instancetype = &v1alpha1.InstancetypeRef{Name: instancetype}
	return w
}

// TestInstancetypeResolvedIntoStatus: a Wukong sized by a cluster instance
// type runs with the instance type's guest vCPUs and memory; the VM
// references it (spec.instancetype, no cpu or memory of its own), KubeVirt
// (the sandbox playing virt-controller v1.9) captured it in a
// ControllerRevision named in the VM's status, and status.resources shows
// the resolved size and that revision. An edit of the instance type
// afterwards changes nothing (the revision sizes the VM), and Wukong's
// repair of the VM keeps the revision KubeVirt recorded.
func TestInstancetypeResolvedIntoStatus(t *testing.T) {
	ns := newNamespace(t)
	it := clusterInstancetype(t, "e2e.medium-", 2, "512Mi")
	w := sizedBy(ns, "sized", it.Name)
	create(t, w)
	waitRunning(t, key(w))
	// KubeVirt records the revision in the VM's status; the Wukong shows it
	// once it has seen that status.
	var res *v1alpha1.ResourcesStatus
	eventually(t, 1, func(c *assert.CollectT) {
		res = getWukong(c, k, key(w)).Status.Resources
		if assert.NotNil(c, res, "status.resources") {
			assert.NotEmpty(c, res.RevisionName, "status.resources.revisionName")
		}
	})
	assert.Equal(t, int32(2), res.CPU)
	if assert.NotNil(t, res.Memory) {
		assert.Zero(t, res.Memory.Cmp(resource.MustParse("512Mi")), "memory %s", res.Memory)
	}
	assert.Equal(t, v1alpha1.ResourcesFromVirtualMachineInstance, res.Source)
	assert.Equal(t, &v1alpha1.InstancetypeRef{Kind: v1alpha1.KindClusterInstancetype, Name: it.Name}, res.Instancetype)

	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), vm))
	assert.Equal(t, &kubevirtv1.InstancetypeMatcher{Kind: v1alpha1.KindClusterInstancetype, Name: it.Name}, vm.Spec.Instancetype)
	assert.Nil(t, vm.Spec.Template.Spec.Domain.CPU, "the VM sets no cpu of its own")
	assert.Nil(t, vm.Spec.Template.Spec.Domain.Memory, "nor memory")
	if assert.NotNil(t, vm.Status.InstancetypeRef) && assert.NotNil(t, vm.Status.InstancetypeRef.ControllerRevisionRef) {
		assert.Equal(t, res.RevisionName, vm.Status.InstancetypeRef.ControllerRevisionRef.Name)
	}
	rev := &appsv1.ControllerRevision{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: res.RevisionName}, rev))
	assert.True(t, metav1.IsControlledBy(rev, vm), "the revision is the VM's")
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctxT(t), key(w), vmi))
	if assert.NotNil(t, vmi.Spec.Domain.CPU) && assert.NotNil(t, vmi.Spec.Domain.Memory) {
		assert.Equal(t, uint32(2), vmi.Spec.Domain.CPU.Sockets*vmi.Spec.Domain.CPU.Cores*vmi.Spec.Domain.CPU.Threads)
		assert.Equal(t, "512Mi", vmi.Spec.Domain.Memory.Guest.String())
	}

	// The instance type grows; the VM keeps its captured revision.
	live := &instancetypev1beta1.VirtualMachineClusterInstancetype{}
	require.NoError(t, k.Get(ctxT(t), client.ObjectKeyFromObject(it), live))
	live.Spec.CPU.Guest = 4
	require.NoError(t, k.Update(ctxT(t), live))
	poke(t, key(w))
	assert.Never(t, func() bool {
		cur := getWukong(t, k, key(w))
		v := &kubevirtv1.VirtualMachine{}
		if err := k.Get(ctxT(t), key(w), v); err != nil || v.Status.InstancetypeRef == nil || v.Status.InstancetypeRef.ControllerRevisionRef == nil {
			return true
		}
		return cur.Status.Resources == nil || cur.Status.Resources.CPU != 2 || v.Status.InstancetypeRef.ControllerRevisionRef.Name != res.RevisionName
	}, scaled(3*poll*5), poll, "the captured revision sizes the VM after the instance type changed")
	for _, c := range vm.Status.Conditions {
		assert.NotEqual(t, kubevirtv1.VirtualMachineFailure, c.Type, "VM Failure: %s", c.Message)
	}
}

// TestInstancetypeWithCPURefused: cpu (or memory) next to an instance type
// is refused by the API server, the message naming the fields.
func TestInstancetypeWithCPURefused(t *testing.T) {
	ns := newNamespace(t)
	w := sizedBy(ns, "both", "u1.medium")
	w.Spec.CPU = 2
	err := k.Create(ctxT(t), w)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.instancetype")
	assert.Contains(t, err.Error(), "spec.cpu and spec.memory cannot be set with spec.instancetype")
	w = sizedBy(ns, "both", "u1.medium")
	w.Spec.Memory = resource.MustParse("1Gi")
	err = k.Create(ctxT(t), w)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.cpu and spec.memory cannot be set with spec.instancetype")
}

// TestInstancetypeNotAllowedOrMissing: in a namespace whose administrator
// lists the cluster instance types it may use (the Namespace annotation),
// a Wukong naming an existing instance type that is not listed and one
// naming a missing one are Stalled the same way (InstancetypeNotAllowed,
// naming spec.instancetype.name, one message but for the name); where
// everything is allowed, a missing one is InstancetypeNotFound. No VM is
// made for any of them; a listed one runs.
func TestInstancetypeNotAllowedOrMissing(t *testing.T) {
	listed := clusterInstancetype(t, "e2e.small-", 1, "256Mi")
	other := clusterInstancetype(t, "e2e.large-", 2, "512Mi")
	ns := newNamespace(t)
	nsObj := &corev1.Namespace{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: ns}, nsObj))
	if nsObj.Annotations == nil {
		nsObj.Annotations = map[string]string{}
	}
	nsObj.Annotations[v1alpha1.AnnotationAllowedClusterInstancetypes] = listed.Name + ",u1.nano"
	require.NoError(t, k.Update(ctxT(t), nsObj))

	exists, missing := sizedBy(ns, "exists", other.Name), sizedBy(ns, "missing", "e2e.nope-"+randSuffix())
	create(t, exists)
	create(t, missing)
	msgExists := stalledMessage(t, k, key(exists), "spec.instancetype.name", v1alpha1.ReasonInstancetypeNotAllowed)
	msgMissing := stalledMessage(t, k, key(missing), "spec.instancetype.name", v1alpha1.ReasonInstancetypeNotAllowed)
	assert.Equal(t, strings.ReplaceAll(msgExists, other.Name, "NAME"), strings.ReplaceAll(msgMissing, missing.Spec.Instancetype.Name, "NAME"),
		"the refusal does not tell whether the instance type exists")

	ok := sizedBy(ns, "listed", listed.Name)
	create(t, ok)
	got := waitRunning(t, key(ok))
	if assert.NotNil(t, got.Status.Resources) {
		assert.Equal(t, int32(1), got.Status.Resources.CPU)
	}

	open := newNamespace(t)
	gone := sizedBy(open, "gone", "e2e.nope-"+randSuffix())
	create(t, gone)
	msg := stalledMessage(t, k, key(gone), "spec.instancetype.name", v1alpha1.ReasonInstancetypeNotFound)
	assert.Contains(t, msg, gone.Spec.Instancetype.Name)
	assert.Contains(t, msg, "not found")
}
