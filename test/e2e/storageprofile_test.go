package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// TestStorageProfileIncomplete: CDI cannot make the claim of a DataVolume
// whose StorageClass's StorageProfile has no access modes (a provisioner
// CDI does not know); the Wukong is Stalled naming
// spec.disks[0].storageClassName with CDI's words, and once an
// administrator completes the profile CDI goes on (here the claim then waits
// for a provisioner nobody runs) and the Wukong is no longer Stalled.
func TestStorageProfileIncomplete(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	if !inSandbox {
		t.Skip("uses the sandbox's StorageClass of an unknown provisioner")
	}
	ns := newNamespace(t)
	w := newWukong(ns, "noprofile")
	w.Spec.Disks = []v1alpha1.DiskSpec{{
		Name: "root", Size: resource.MustParse("5Gi"), Image: "https://images.example.com/disk.qcow2",
		StorageClassName: sandbox.StorageClassUnknownProvisioner,
	}}
	create(t, w)
	waitStalled(t, key(w), "spec.disks[0].storageClassName", v1alpha1.ReasonStorageProfileIncomplete)
	got := getWukong(t, k, key(w))
	assert.Contains(t, cond(got, v1alpha1.StalledCondition).Message,
		"no accessMode specified in StorageProfile "+sandbox.StorageClassUnknownProvisioner)

	// The administrator's fix: the profile's spec.claimPropertySets (CDI's
	// controller copies them to status). Undone afterwards: other tests
	// rely on the profile being incomplete (context.Background: the
	// test's context is done when cleanups run).
	setProfile := func(sets []cdiv1.ClaimPropertySet) {
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sp := &cdiv1.StorageProfile{}
			if err := k.Get(context.Background(), types.NamespacedName{Name: sandbox.StorageClassUnknownProvisioner}, sp); err != nil {
				return err
			}
			sp.Spec.ClaimPropertySets = sets
			return k.Update(context.Background(), sp)
		}))
	}
	setProfile(sandbox.ClaimPropertySets())
	t.Cleanup(func() { setProfile(nil) })
	eventually(t, 2, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assert.Nil(c, cond(got, v1alpha1.StalledCondition), "Stalled once the profile is complete")
		assert.Equal(c, string(v1alpha1.ReasonVolumesPending), cond(got, v1alpha1.VolumesBoundCondition).Reason)
	}, "Wukong %s to wait for its claim", key(w))
}
