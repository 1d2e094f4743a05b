package manager

import (
	"context"
	"reflect"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/operator/internal/controller"
)

// FallbackClient is the client New gives the reconcilers, beside the
// label-filtered cache New configures. It reads from the informer cache and,
// for the kinds where an object Wukong needs may lack its label (the
// Labelled kinds of controller.CachedKinds), from the API server when the cache says NotFound. The manager's cache holds only objects labelled as managed
// by Wukong (so memory grows with Wukongs, not with the cluster's other
// Secrets and PVCs); objects the user brings (an SSH key Secret, a
// NetworkAttachmentDefinition named by nadName), a DataVolume's PVC created
// by CDI, and any object someone else created under a name Wukong wants
// (a VirtualMachine, DataVolume, PVC, Secret, NAD or policy it must not
// adopt) are still found. A fallback read costs one API request, and only
// while the object is missing from the cache: a Wukong's own children are
// labelled, so a running Wukong's passes read only the cache (a stopped VM
// has no instance: its passes read one from the API server). Writes go to
// the API server as usual.
//
// The cache holds an object another actor labelled as Wukong's as a
// metadata-only stub (ChildTransform); Get reads such an object whole from
// the API server too, so a caller never sees a stub's empty data or spec.
// No informer on every Secret (or other Labelled kind) is ever started: a
// Secret the operator only reads (spec.sshKeySecret) comes from the API
// server, one request per read. The kinds of controller.UncachedKind
// (namespaced instance types and preferences) are always read from the API
// server, so no informer on them is started either.
type FallbackClient struct {
	client.Client
	APIReader client.Reader
	// Namespaces are the cache's (Options.Namespaces; empty: all). An object
	// of those kinds in another namespace, which the cache cannot hold (a
	// NetworkAttachmentDefinition of a global namespace), is read from the
	// API server directly.
	Namespaces []string
}

// Get implements client.Reader.
func (c FallbackClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if c.APIReader != nil && controller.UncachedKind(obj) {
		return c.APIReader.Get(ctx, key, obj, opts...)
	}
	if len(c.Namespaces) > 0 && key.Namespace != "" && !slices.Contains(c.Namespaces, key.Namespace) &&
		c.APIReader != nil && controller.IsLabelledKind(obj) {
		return c.APIReader.Get(ctx, key, obj, opts...)
	}
	err := c.Client.Get(ctx, key, obj, opts...)
	if c.APIReader == nil || !controller.IsLabelledKind(obj) {
		return err
	}
	if apierrors.IsNotFound(err) || (err == nil && IsStub(obj)) {
		// Decoding into a filled object would merge its maps (the stub's
		// annotation would stay): start from a zero object.
		v := reflect.ValueOf(obj).Elem()
		v.Set(reflect.Zero(v.Type()))
		return c.APIReader.Get(ctx, key, obj, opts...)
	}
	return err
}
