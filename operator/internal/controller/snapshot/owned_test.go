package snapshot

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

// TestOwned: readOwned and createOwned, the read-or-create both
// controllers do for their KubeVirt object, and wukongVM.
func TestOwned(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, kubevirtv1.AddToScheme, snapshotv1.AddToScheme} {
		require.NoError(t, add(scheme))
	}
	ctx := context.Background()
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "team-a", Name: name, UID: types.UID("uid-" + name)}
	}
	mine := &v1alpha1.WukongSnapshot{ObjectMeta: meta("s1")}
	other := &v1alpha1.WukongSnapshot{ObjectMeta: meta("s2")}
	foreign := &snapshotv1.VirtualMachineSnapshot{ObjectMeta: meta("s2")}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(mine, other, foreign).Build()

	conflict := false
	found, absent, err := readOwned(ctx, c, mine, &snapshotv1.VirtualMachineSnapshot{}, &conflict)
	require.NoError(t, err)
	assert.True(t, absent, "none yet")
	assert.False(t, found || conflict)

	vms := &snapshotv1.VirtualMachineSnapshot{ObjectMeta: ownedMeta(mine, "vm"), Spec: snapshotv1.VirtualMachineSnapshotSpec{Source: vmRef("vm")}}
	assert.Equal(t, client.ObjectKeyFromObject(mine), client.ObjectKeyFromObject(vms), "named like its owner")
	assert.Equal(t, identity.Wukong.OwnerLabels("vm"), vms.Labels)
	assert.Equal(t, "kubevirt.io", *vms.Spec.Source.APIGroup)
	assert.Equal(t, "VirtualMachine", vms.Spec.Source.Kind)
	created, err := createOwned(ctx, c, mine, vms, errCreateVMS)
	require.NoError(t, err)
	assert.True(t, created)
	assert.True(t, metav1.IsControlledBy(vms, mine))
	created, err = createOwned(ctx, c, mine, &snapshotv1.VirtualMachineSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "s1"}}, errCreateVMS)
	require.NoError(t, err, "AlreadyExists is no error")
	assert.False(t, created)

	found, absent, err = readOwned(ctx, c, mine, &snapshotv1.VirtualMachineSnapshot{}, &conflict)
	require.NoError(t, err)
	assert.True(t, found)
	assert.False(t, absent || conflict)

	found, absent, err = readOwned(ctx, c, other, &snapshotv1.VirtualMachineSnapshot{}, &conflict)
	require.NoError(t, err)
	assert.True(t, conflict, "a VirtualMachineSnapshot of that name not controlled by the WukongSnapshot")
	assert.False(t, found || absent)

	w := &v1alpha1.Wukong{ObjectMeta: meta("vm")}
	vm, err := wukongVM(ctx, c, w)
	require.NoError(t, err)
	assert.Nil(t, vm, "no VM")
	require.NoError(t, c.Create(ctx, &kubevirtv1.VirtualMachine{ObjectMeta: meta("vm")}))
	vm, err = wukongVM(ctx, c, w)
	require.NoError(t, err)
	assert.Nil(t, vm, "a VM the Wukong does not control is not its")
}
