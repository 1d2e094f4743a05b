package controller

import (
	"context"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FallbackClient reads from the informer cache and, for the kinds where an
// object Wukong needs may lack its label, from the API server when the cache
// says NotFound. The manager's cache holds only objects labelled as managed
// by Wukong (so memory grows with Wukongs, not with the cluster's other
// Secrets and PVCs); objects the user brings (an SSH key Secret, a
// NetworkAttachmentDefinition named by nadName), a DataVolume's PVC created
// by CDI, or a node bridge policy someone else created are still found. For
// the kinds only Wukong and KubeVirt create with its labels (VirtualMachine,
// VirtualMachineInstance, DataVolume) the cache is trusted, so waiting for a
// VM costs no API request. Writes go to the API server as usual.
type FallbackClient struct {
	client.Client
	APIReader client.Reader
}

// Get implements client.Reader.
func (c FallbackClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Client.Get(ctx, key, obj, opts...)
	if apierrors.IsNotFound(err) && c.APIReader != nil && mayBeUnlabelled(obj) {
		return c.APIReader.Get(ctx, key, obj, opts...)
	}
	return err
}

func mayBeUnlabelled(obj client.Object) bool {
	switch obj.(type) {
	case *corev1.Secret, *corev1.PersistentVolumeClaim, *nadv1.NetworkAttachmentDefinition, *nmstatev1.NodeNetworkConfigurationPolicy:
		return true
	default:
		return false
	}
}
