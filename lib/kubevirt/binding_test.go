package kubevirt

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestReconcileMacvtapBinding: a macvtap NIC needs the macvtap binding
// plugin registered in a KubeVirt CR. Without one Reconcile writes nothing
// and says what is missing; once registered the VM is created with
// `binding: {name: macvtap}` and accepted by the real CRD schema.
func TestReconcileMacvtapBinding(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	m := baseMachine()
	m.NICs = []NIC{
		{Name: "lan", NAD: ns + "/web-lan", MAC: "02:aa:bb:cc:dd:01"},
		{Name: "direct", NAD: ns + "/web-direct", MAC: "02:aa:bb:cc:dd:02", Binding: BindingMacvtap},
	}
	vmKey := client.ObjectKey{Namespace: ns, Name: m.Name}

	nothingWritten := func(t *testing.T) {
		t.Helper()
		err := c.Get(ctx, vmKey, &kubevirtv1.VirtualMachine{})
		assert.True(t, apierrors.IsNotFound(err), "no VM: %v", err)
		err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: CloudInitSecretName(owner)}, &corev1.Secret{})
		assert.True(t, apierrors.IsNotFound(err), "no cloud-init Secret: %v", err)
	}

	_, err := Reconcile(ctx, c, testID, owner, m)
	var notRegistered *BindingNotRegisteredError
	require.True(t, errors.As(err, &notRegistered), "got %v", err)
	assert.Equal(t, "direct", notRegistered.NIC)
	assert.Equal(t, "macvtap", notRegistered.Binding)
	assert.Equal(t, 0, notRegistered.KubeVirtCRs)
	assert.Contains(t, err.Error(), "no KubeVirt CR")
	assert.Contains(t, err.Error(), "spec.configuration.network.binding.macvtap")
	nothingWritten(t)

	kv := &kubevirtv1.KubeVirt{ObjectMeta: metav1.ObjectMeta{Name: "kubevirt", Namespace: ns}}
	require.NoError(t, c.Create(ctx, kv))
	t.Cleanup(func() { _ = c.Delete(context.Background(), kv) })
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.True(t, errors.As(err, &notRegistered), "got %v", err)
	assert.Equal(t, 1, notRegistered.KubeVirtCRs)
	assert.Contains(t, err.Error(), "the KubeVirt CR does not register it")
	nothingWritten(t)

	kv.Spec.Configuration.NetworkConfiguration = &kubevirtv1.NetworkConfiguration{
		Binding: map[string]kubevirtv1.InterfaceBindingPlugin{
			"passt":   {SidecarImage: "quay.io/kubevirt/network-passt-binding:v1.5.0"},
			"macvtap": {DomainAttachmentType: kubevirtv1.Tap},
		},
	}
	require.NoError(t, c.Update(ctx, kv))
	names, crs, err := RegisteredBindings(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, []string{"macvtap", "passt"}, names)
	assert.Equal(t, 1, crs)

	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, vmKey, vm))
	ifs := vm.Spec.Template.Spec.Domain.Devices.Interfaces
	require.Len(t, ifs, 3)
	assert.NotNil(t, ifs[1].Bridge, "a bridge NIC keeps the bridge binding")
	assert.Equal(t, &kubevirtv1.PluginBinding{Name: "macvtap"}, ifs[2].Binding)
	assert.Nil(t, ifs[2].Bridge, "never the bridge binding for macvtap")
}
