package manager

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClusterIdentityNamespace is the namespace whose UID identifies the
// cluster: every Kubernetes cluster has it (the API server creates it at
// start, pkg/controlplane's system namespaces), its UID is random per
// cluster and it is never deleted, so it is what the Kubernetes community
// uses as a cluster ID (e.g. the kube-system UID of KEP-2149's
// ClusterProperty id.k8s.io).
const ClusterIdentityNamespace = metav1.NamespaceSystem

// ClusterIdentity reads the UID of namespace kube-system through c (the
// manager's uncached reader: one GET at start; the manager's RBAC has get
// on namespaces). An error says how to do without it (--cluster-id).
func ClusterIdentity(ctx context.Context, c client.Reader) (string, error) {
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: ClusterIdentityNamespace}, ns); err != nil {
		return "", fmt.Errorf("cannot read the cluster's identity (the UID of namespace %s, mixed into NIC MACs): %w; "+
			"grant get on that namespace or set --cluster-id (chart value clusterID)", ClusterIdentityNamespace, err)
	}
	if ns.UID == "" {
		return "", fmt.Errorf("namespace %s has no UID: set --cluster-id (chart value clusterID)", ClusterIdentityNamespace)
	}
	return string(ns.UID), nil
}
