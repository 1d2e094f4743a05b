package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Bad references: a missing StorageClass, NAD or SSH key Secret stalls the
// Wukong with the field named and no VM; creating the object fixes it.

func TestStalledMissingStorageClass(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	class := "e2e-missing-" + randSuffix()
	w := newWukong(ns, "nosc")
	w.Spec.Disks[0].StorageClassName = class
	create(t, w)
	waitStalled(t, key(w), "spec.disks[0].storageClassName", v1alpha1.ReasonStorageClassNotFound)

	sc := cloneDefaultStorageClass(t, class)
	create(t, sc)
	t.Cleanup(func() { _ = k.Delete(context.Background(), sc) })
	// A blank disk is a CDI DataVolume (#30): the new class's
	// StorageProfile needs what the default class's has (an
	// administrator's claimPropertySets, where CDI does not know the
	// provisioner).
	copyStorageProfile(t, defaultStorageClass(t).Name, class)
	// No poke: the operator watches StorageClasses, and the new class wakes
	// the Wukongs Stalled on it (their timed retry is a minute or more away).
	waitRunning(t, key(w))
}

func TestStalledMissingNAD(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD)
	needSecondaryNICGuests(t)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "nonad")
	w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", NADName: "later-net"}}
	create(t, w)
	waitStalled(t, key(w), "spec.networks[0].nadName", v1alpha1.ReasonNADNotFound)

	create(t, userNAD(ns, "later-net"))
	poke(t, key(w)) // user NADs are not watched: the timed retry is 1m or more away
	w = waitRunning(t, key(w))
	lan := networkStatus(w, "lan")
	require.NotNil(t, lan)
	assert.Equal(t, ns+"/later-net", lan.NADName)
}

// TestStalledMissingSSHSecret does not poke: it checks the operator's own
// timed retry (about a minute) notices the Secret it does not watch.
func TestStalledMissingSSHSecret(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "nokeys")
	w.Spec.SSHKeySecret = "later-keys"
	create(t, w)
	waitStalled(t, key(w), "spec.sshKeySecret", v1alpha1.ReasonSecretNotFound)
	// Let every event-driven pass (disk bound, ...) happen first, so only the
	// timed retry can notice the Secret.
	eventually(t, 1, func(c *assert.CollectT) {
		assertConsumable(c, volumeStatus(getWukong(c, k, key(w)), "root"))
	}, "the disk of the stalled Wukong to be bound (or waiting for its first consumer)")
	time.Sleep(2 * time.Second)

	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later-keys", Labels: map[string]string{v1alpha1.SSHAuthorizedKeysLabel: "true"}},
		Data:       map[string][]byte{"alice": []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@example.com")},
	})
	start := time.Now()
	eventually(t, 2, func(c *assert.CollectT) { assertRunning(c, getWukong(c, k, key(w))) },
		"the operator's timed retry (~1m) to notice the Secret")
	t.Logf("converged %s after the Secret was created (timed retry, no poke)", time.Since(start).Round(time.Second))
}

// waitStalled waits for phase Error, Stalled True and Ready False with field
// in both messages, then checks no VM was created.
func waitStalled(t *testing.T, nn types.NamespacedName, field, reason string) {
	t.Helper()
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, nn)
		assert.Equal(c, v1alpha1.PhaseError, w.Status.Phase, "phase")
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration, "observedGeneration")
		stalled := cond(w, v1alpha1.StalledCondition)
		if assert.NotNil(c, stalled, "Stalled condition") {
			assert.Equal(c, metav1.ConditionTrue, stalled.Status, "Stalled")
			assert.Contains(c, stalled.Message, field, "Stalled message names the field")
			assert.Equal(c, reason, stalled.Reason, "Stalled reason")
		}
		ready := cond(w, v1alpha1.ReadyCondition)
		if assert.NotNil(c, ready, "Ready condition") {
			assert.Equal(c, metav1.ConditionFalse, ready.Status, "Ready")
			assert.Contains(c, ready.Message, field, "Ready message names the field")
		}
		assert.Nil(c, cond(w, v1alpha1.ReconcilingCondition), "Reconciling is absent while Stalled")
		res, err := status.Compute(wukongUnstructured(c, nn))
		require.NoError(c, err)
		assert.Equal(c, status.FailedStatus, res.Status, "kstatus of a Stalled Wukong")
	}, "Wukong %s to be Stalled on %s", nn, field)
	assertGone(t, &kubevirtv1.VirtualMachine{}, nn)
}

// defaultStorageClass is the cluster's default StorageClass.
func defaultStorageClass(t *testing.T) *storagev1.StorageClass {
	t.Helper()
	list := &storagev1.StorageClassList{}
	require.NoError(t, k.List(ctxT(t), list))
	for i, sc := range list.Items {
		if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			return &list.Items[i]
		}
	}
	require.FailNow(t, "the cluster has no default StorageClass")
	return nil
}

// cloneDefaultStorageClass copies the cluster's default StorageClass under
// a new name (so it provisions on any cluster).
func cloneDefaultStorageClass(t *testing.T, name string) *storagev1.StorageClass {
	t.Helper()
	sc := defaultStorageClass(t)
	return &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e.novasphere.dev/suite": "true"}},
		Provisioner:          sc.Provisioner,
		Parameters:           sc.Parameters,
		ReclaimPolicy:        sc.ReclaimPolicy,
		VolumeBindingMode:    sc.VolumeBindingMode,
		AllowVolumeExpansion: sc.AllowVolumeExpansion,
	}
}

// copyStorageProfile gives the StorageProfile of class to (made by CDI's
// controller for a new class) the spec.claimPropertySets of from's, as an
// administrator completes a profile; nothing when from's has none.
func copyStorageProfile(t *testing.T, from, to string) {
	t.Helper()
	src := &cdiv1.StorageProfile{}
	if err := k.Get(ctxT(t), types.NamespacedName{Name: from}, src); err != nil || len(src.Spec.ClaimPropertySets) == 0 {
		return
	}
	eventually(t, 1, func(c *assert.CollectT) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sp := &cdiv1.StorageProfile{}
			if err := k.Get(context.Background(), types.NamespacedName{Name: to}, sp); err != nil {
				return err
			}
			sp.Spec.ClaimPropertySets = src.Spec.ClaimPropertySets
			return k.Update(context.Background(), sp)
		})
		assert.NoError(c, err)
	}, "the new class's StorageProfile to be completed")
}
