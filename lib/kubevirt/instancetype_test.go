package kubevirt

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

func instancetypeMachine(kind, name string) Machine {
	return with(func(m *Machine) {
		m.CPU, m.Memory = 0, resource.Quantity{}
		m.Instancetype = &Matcher{Kind: kind, Name: name}
	})
}

// TestBuildVMInstancetype: an instance type becomes the VM's
// spec.instancetype matcher (an empty kind is the cluster kind, as
// KubeVirt reads it), and the template carries no cpu, guest memory or
// memory request, which KubeVirt refuses next to one.
func TestBuildVMInstancetype(t *testing.T) {
	m := instancetypeMachine("", "u1.medium")
	m.Preference = &Matcher{Kind: KindPreference, Name: "fedora"}
	require.NoError(t, m.Validate())
	vm := BuildVM(testID, testOwner(), m)
	assert.Equal(t, &kubevirtv1.InstancetypeMatcher{Kind: KindClusterInstancetype, Name: "u1.medium"}, vm.Spec.Instancetype)
	assert.Equal(t, &kubevirtv1.PreferenceMatcher{Kind: KindPreference, Name: "fedora"}, vm.Spec.Preference)
	d := vm.Spec.Template.Spec.Domain
	assert.Nil(t, d.CPU)
	assert.Nil(t, d.Memory)
	assert.Empty(t, d.Resources.Requests)

	plain := BuildVM(testID, testOwner(), baseMachine())
	assert.Nil(t, plain.Spec.Instancetype)
	assert.Nil(t, plain.Spec.Preference)
	assert.Equal(t, uint32(2), plain.Spec.Template.Spec.Domain.CPU.Sockets, "vCPUs are sockets (hot-pluggable)")
}

func TestValidateInstancetype(t *testing.T) {
	testValidate(t, []validateCase{
		{"instancetype without cpu and memory", instancetypeMachine(KindInstancetype, "small"), ""},
		{"instancetype without name", instancetypeMachine("", ""), "instancetype.name"},
		{"instancetype of a preference kind", instancetypeMachine(KindClusterPreference, "a"), "instancetype.kind"},
		{"preference of an instancetype kind", with(func(m *Machine) { m.Preference = &Matcher{Kind: KindInstancetype, Name: "a"} }), "preference.kind"},
		{"no instancetype, no cpu", with(func(m *Machine) { m.CPU = 0 }), "cpu"},
	})
}

// TestReconcileInstancetype runs the references against the real
// instancetype.kubevirt.io CRDs: a cluster instance type outside the
// allowed list is refused before any lookup (the same message whether it
// exists or not), a missing one is InstancetypeNotFound, a missing
// preference PreferenceNotFound; a found one is referenced by the VM, its
// guest size is the observation's until a VMI runs, and a revision
// KubeVirt captured (status.instancetypeRef) or a revisionName set on the
// VM survive the next apply.
func TestReconcileInstancetype(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	ns, owner := newNamespace(t, c)
	medium := &instancetypev1beta1.VirtualMachineClusterInstancetype{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "u1.medium-"},
		Spec: instancetypev1beta1.VirtualMachineInstancetypeSpec{
			CPU:    instancetypev1beta1.CPUInstancetype{Guest: 2},
			Memory: instancetypev1beta1.MemoryInstancetype{Guest: resource.MustParse("4Gi")},
		},
	}
	require.NoError(t, c.Create(ctx, medium))
	t.Cleanup(func() { _ = c.Delete(context.Background(), medium) })

	failure := func(m Machine) *apply.Failure {
		t.Helper()
		_, err := Reconcile(ctx, c, testID, owner, m)
		f, ok := apply.AsFailure(err)
		require.True(t, ok, "want a failure, got %v", err)
		return f
	}
	restricted := func(name string) Machine {
		m := instancetypeMachine("", name)
		m.RestrictClusterInstancetypes, m.AllowedClusterInstancetypes = true, []string{"u1.small"}
		return m
	}
	existing, missing := failure(restricted(medium.Name)), failure(restricted("u1.nope"))
	assert.Equal(t, ReasonInstancetypeNotAllowed, existing.Reason)
	assert.Equal(t, "instancetype.name", existing.Field)
	assert.Equal(t, "VirtualMachineClusterInstancetype \""+medium.Name+"\" is not allowed in this namespace", existing.Error())
	assert.Equal(t, ReasonInstancetypeNotAllowed, missing.Reason, "refused before the lookup")

	f := failure(instancetypeMachine("", "u1.nope"))
	assert.Equal(t, ReasonInstancetypeNotFound, f.Reason)
	assert.Equal(t, "instancetype.name", f.Field)
	f = failure(instancetypeMachine(KindInstancetype, medium.Name))
	assert.Equal(t, ReasonInstancetypeNotFound, f.Reason, "a namespaced kind is looked up in the owner's namespace only")
	withPref := instancetypeMachine("", medium.Name)
	withPref.Preference = &Matcher{Name: "nope"}
	f = failure(withPref)
	assert.Equal(t, ReasonPreferenceNotFound, f.Reason)
	assert.Equal(t, "preference.name", f.Field)
	vm := &kubevirtv1.VirtualMachine{}
	require.Error(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, vm), "nothing written while refused")

	// A VM sized by the instance type from the start.
	_, owner2 := newNamespace(t, c)
	obs, err := Reconcile(ctx, c, testID, owner2, instancetypeMachine("", medium.Name))
	require.NoError(t, err)
	assert.Equal(t, SizeFromInstancetype, obs.Size().From)

	// A VM first sized by cpu and memory, then by the instance type: the
	// apply drops the template's cpu and memory it owned.
	_, err = Reconcile(ctx, c, testID, owner, baseMachine())
	require.NoError(t, err)
	m := restricted(medium.Name)
	m.AllowedClusterInstancetypes = append(m.AllowedClusterInstancetypes, medium.Name)
	obs, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	assert.Equal(t, int32(2), obs.Size().CPU)
	size := obs.Size()
	assert.Equal(t, "4Gi", size.Memory.String())
	assert.Equal(t, SizeFromInstancetype, obs.Size().From)
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, vm))
	assert.Equal(t, medium.Name, vm.Spec.Instancetype.Name)
	assert.Nil(t, vm.Spec.Template.Spec.Domain.CPU, "the cpu Wukong owned is gone")
	assert.Nil(t, vm.Spec.Template.Spec.Domain.Memory)
	assert.Empty(t, vm.Spec.Template.Spec.Domain.Resources.Requests)

	// virt-controller v1.9 records the revision in status; a user may pin
	// spec.instancetype.revisionName. Neither is undone.
	vm.Status.InstancetypeRef = &kubevirtv1.InstancetypeStatusRef{Kind: KindClusterInstancetype, Name: medium.Name,
		ControllerRevisionRef: &kubevirtv1.ControllerRevisionRef{Name: "web-" + medium.Name + "-v1beta1-uid-1"}}
	require.NoError(t, c.Status().Update(ctx, vm))
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(vm), vm))
	vm.Spec.Instancetype.RevisionName = "web-" + medium.Name + "-v1beta1-uid-1"
	require.NoError(t, c.Update(ctx, vm, client.FieldOwner("user")))
	obs, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(vm), vm))
	assert.Equal(t, "web-"+medium.Name+"-v1beta1-uid-1", vm.Spec.Instancetype.RevisionName, "revisionName kept")
	assert.Equal(t, "web-"+medium.Name+"-v1beta1-uid-1", obs.Size().RevisionName)
}

func TestResolveSize(t *testing.T) {
	it := &instancetypev1beta1.VirtualMachineInstancetypeSpec{
		CPU:    instancetypev1beta1.CPUInstancetype{Guest: 4},
		Memory: instancetypev1beta1.MemoryInstancetype{Guest: resource.MustParse("8Gi")},
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	guest := resource.MustParse("8192Mi")
	vmi.Spec.Domain.CPU = &kubevirtv1.CPU{Cores: 1, Sockets: 4, Threads: 1}
	vmi.Spec.Domain.Memory = &kubevirtv1.Memory{Guest: &guest}
	for _, tc := range []struct {
		name string
		got  Size
		want Size
	}{
		{"machine", resolveSize(baseMachine(), nil, nil, nil), Size{CPU: 2, Memory: resource.MustParse("4Gi"), From: SizeFromMachine}},
		{"instance type", resolveSize(Machine{}, it, nil, nil), Size{CPU: 4, Memory: resource.MustParse("8Gi"), From: SizeFromInstancetype}},
		{"running instance", resolveSize(Machine{}, it, nil, vmi), Size{CPU: 4, Memory: resource.MustParse("8Gi"), From: SizeFromInstance}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want.CPU, tc.got.CPU)
			assert.Equal(t, tc.want.From, tc.got.From)
			assert.Zero(t, tc.want.Memory.Cmp(tc.got.Memory), "memory %s, want %s", tc.got.Memory.String(), tc.want.Memory.String())
		})
	}
}
