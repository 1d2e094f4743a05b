// Package apply writes Kubernetes objects with Server-Side Apply, and only
// when they need it.
//
// Apply compares the fields a controller wants with what the cluster already
// holds (a read, normally from an informer cache) and sends the apply only
// when one of those fields is missing or different, or when the desired
// object itself changed since the last apply (a hash of it is kept in the
// annotation the caller's Identity names). A controller that calls it on
// every reconcile therefore writes nothing at rest; a child edited by hand
// is restored on the next pass (the edited field no longer matches); and a
// field the controller stops setting is removed, as Server-Side Apply
// removes fields a manager owned and no longer sends.
//
// Apply never adopts: when the desired object names a controller (an owner
// reference with controller: true), an existing object of that name is
// written only if its controller reference carries the same UID. Otherwise
// Apply returns a *ConflictError and sends nothing, so an object someone
// else created is never changed, and never garbage-collected with an owner
// it was not created for.
//
// It is shared by the lib/storage, lib/network and lib/kubevirt modules so the
// three agree on one comparison and one ownership rule. None of them holds a
// name of its own: the field manager, the label and annotation keys and the
// managed-by value come from the caller's Identity, which every one of them
// takes.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Result says what Apply did.
type Result int

const (
	// Unchanged: the cluster already held every desired field; nothing was sent.
	Unchanged Result = iota
	// Created: the object did not exist and was created by the apply.
	Created
	// Updated: the object existed and at least one desired field differed.
	Updated
)

func (r Result) String() string {
	switch r {
	case Created:
		return "created"
	case Updated:
		return "updated"
	default:
		return "unchanged"
	}
}

// Apply server-side-applies obj under id.FieldManager with ForceOwnership
// unless the live object already carries every field set in obj; the hash of
// obj is kept in the annotation id.HashAnnotationKey(). obj is a typed
// object whose kind c's scheme knows; on success it is overwritten with the
// live state the server returned (or, when nothing was sent, the state read).
//
// Only the fields obj sets are sent, so fields owned by other managers (and
// status) are left alone. Errors are returned unwrapped from the client so
// callers can test them with apierrors and meta.IsNoMatchError; an invalid id
// gives an error wrapping ErrInvalidIdentity and nothing is read or sent.
// With [IfResourceVersion] the write is conditional (409 Conflict,
// apierrors.IsConflict, when the object changed since).
func Apply(ctx context.Context, c client.Client, obj client.Object, id Identity, opts ...Option) (Result, error) {
	if err := id.Validate(); err != nil {
		return Unchanged, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	hashKey := id.HashAnnotationKey()
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return Unchanged, err
	}
	desired, err := Desired(obj, gvk.GroupVersion().String(), gvk.Kind)
	if err != nil {
		return Unchanged, err
	}
	annotations := desired.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, hashKey) // obj may be a live object from an earlier call
	desired.SetAnnotations(annotations)
	hash, err := hashOf(desired)
	if err != nil {
		return Unchanged, err
	}
	annotations[hashKey] = hash
	desired.SetAnnotations(annotations)

	live, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return Unchanged, fmt.Errorf("%T is not a client.Object", obj)
	}
	result := Created
	switch err := c.Get(ctx, client.ObjectKeyFromObject(obj), live); {
	case err == nil:
		if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
			if err := CheckControlled(live, gvk.Kind, *ref); err != nil {
				return Unchanged, err
			}
		}
		liveU, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
		if err != nil {
			return Unchanged, err
		}
		if Contains(liveU, withoutTypeMeta(desired.Object)) {
			return Unchanged, copyInto(live, obj)
		}
		result = Updated
	case apierrors.IsNotFound(err):
	default:
		return Unchanged, err
	}

	if o.resourceVersion != "" {
		desired.SetResourceVersion(o.resourceVersion)
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(desired),
		client.FieldOwner(id.FieldManager), client.ForceOwnership); err != nil {
		return Unchanged, err
	}
	return result, runtime.DefaultUnstructuredConverter.FromUnstructured(desired.Object, obj)
}

// Option changes how [Apply] writes.
type Option func(*options)

type options struct {
	resourceVersion string
}

// IfResourceVersion makes Apply's write conditional on the object still
// being at resourceVersion rv, the version the caller read when it computed
// obj from the live object (e.g. a field another actor may change, such as
// a VirtualMachine's spec.runStrategy that virtctl sets). The API server
// then refuses the apply with 409 Conflict (apierrors.IsConflict) if the
// object changed since, instead of overwriting that change with a value
// computed from a stale read (a cached client lags behind the server);
// retry with a fresh read. The API server takes metadata.resourceVersion in a
// patch body, an apply's included, as that precondition
// (kubernetes/kubernetes#63104). An empty rv (the object did not exist when
// read) sets no precondition.
func IfResourceVersion(rv string) Option {
	return func(o *options) { o.resourceVersion = rv }
}

// ConflictError: an object exists under the name a controller wants to
// write, and it is not controlled by that controller's owner. Nothing was
// written. Test with errors.As.
type ConflictError struct {
	// Kind, Namespace and Name identify the existing object.
	Kind      string
	Namespace string
	Name      string
	// Controller is the existing object's controller reference, nil when it
	// has none (created by hand or by another tool).
	Controller *metav1.OwnerReference
	// Predecessor is true when that controller has the wanted owner's kind and
	// name but another UID: the child of a deleted owner of the same name,
	// which the garbage collector will delete. Waiting resolves it.
	Predecessor bool
}

func (e *ConflictError) Error() string {
	what := e.Kind + " " + e.Name
	if e.Namespace != "" {
		what = e.Kind + " " + e.Namespace + "/" + e.Name
	}
	switch {
	case e.Predecessor:
		return fmt.Sprintf("%s still belongs to a deleted %s of the same name (uid %s) and is being garbage-collected", what, e.Controller.Kind, e.Controller.UID)
	case e.Controller != nil:
		return fmt.Sprintf("%s exists and is controlled by %s %s; it is left untouched", what, e.Controller.Kind, e.Controller.Name)
	default:
		return fmt.Sprintf("%s exists and was not created for this object; it is left untouched", what)
	}
}

// CheckControlled returns nil when live's controller reference is owner (same
// UID), else a *ConflictError. kind is live's kind, for the message.
func CheckControlled(live client.Object, kind string, owner metav1.OwnerReference) error {
	ref := metav1.GetControllerOfNoCopy(live)
	if ref != nil && ref.UID == owner.UID {
		return nil
	}
	e := &ConflictError{Kind: kind, Namespace: live.GetNamespace(), Name: live.GetName()}
	if ref != nil {
		e.Controller = ref.DeepCopy()
		e.Predecessor = ref.Kind == owner.Kind && ref.Name == owner.Name &&
			groupOf(ref.APIVersion) == groupOf(owner.APIVersion)
	}
	return e
}

func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return apiVersion
	}
	return gv.Group
}

// Desired turns a typed object into the unstructured apply body: apiVersion
// and kind set; status, resourceVersion, uid, creationTimestamp and
// managedFields removed, since an apply must not claim them.
func Desired(obj runtime.Object, apiVersion, kind string) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	delete(u.Object, "status")
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "managedFields", "generation"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	return u, nil
}

// Contains reports whether live holds every field of want with an equal
// value. Maps may have extra keys in live (defaults, other managers' fields);
// lists must have the same length and match element by element; nil and empty
// values in want match an absent field.
func Contains(live, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, _ := live.(map[string]any)
		for k, wv := range w {
			lv, found := l[k]
			if !found {
				if isEmpty(wv) {
					continue
				}
				return false
			}
			if !Contains(lv, wv) {
				return false
			}
		}
		return true
	case []any:
		l, _ := live.([]any)
		if len(l) != len(w) {
			return false
		}
		for i := range w {
			if !Contains(l[i], w[i]) {
				return false
			}
		}
		return true
	case nil:
		return isEmpty(live)
	default:
		return reflect.DeepEqual(normalizeNumber(live), normalizeNumber(want))
	}
}

// hashOf is a short, stable hash of the desired object (JSON of a map has
// sorted keys).
func hashOf(u *unstructured.Unstructured) (string, error) {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12]), nil
}

// withoutTypeMeta drops apiVersion and kind: typed clients clear them on
// Get for built-in kinds, and the object's identity was already matched by
// the Get itself.
func withoutTypeMeta(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != "apiVersion" && k != "kind" {
			out[k] = v
		}
	}
	return out
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	default:
		return false
	}
}

// normalizeNumber makes int64(2) and float64(2) compare equal: JSON numbers
// may come back either way.
func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int32:
		return float64(n)
	case int:
		return float64(n)
	default:
		return v
	}
}

func copyInto(src, dst client.Object) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(src)
	if err != nil {
		return err
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(m, dst)
}
