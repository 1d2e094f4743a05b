package apply

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// LabelManagedBy is the Kubernetes recommended label naming the tool that
// manages an object (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels);
// its value is Identity.ManagedBy.
const LabelManagedBy = "app.kubernetes.io/managed-by"

// Identity is who writes: the names a controller gives the objects it
// creates through lib/apply, lib/storage, lib/network and lib/kubevirt. The
// libs hold no names of their own; every call takes the caller's Identity,
// so two controllers using the libs never claim each other's fields or
// objects.
//
// FieldManager and Domain are required; the other fields have defaults
// derived from them (see each field).
type Identity struct {
	// FieldManager is the Server-Side Apply field manager of every write,
	// e.g. "my-controller" (at most 128 characters, the API server's limit).
	FieldManager string
	// ManagedBy is the value of LabelManagedBy on every object written;
	// empty means FieldManager.
	ManagedBy string
	// Domain is the DNS subdomain prefix of every label and annotation key
	// the libs write: "<Domain>/<name>", e.g. "vm.example.com" gives
	// "vm.example.com/disk".
	Domain string
	// OwnerLabel is the key of the label holding the owner's name on every
	// namespaced object written for it; empty means Key("owner").
	OwnerLabel string
	// NamePrefix starts the names of cluster-scoped objects the libs name
	// themselves (lib/network's NodeNetworkConfigurationPolicies are
	// "<NamePrefix>br-<bridge>"); empty means FieldManager + "-".
	NamePrefix string
	// HashAnnotation is the annotation in which Apply keeps the hash of the
	// last applied desired object; empty means Key("desired-hash").
	HashAnnotation string
}

// ErrInvalidIdentity wraps every error of Identity.Validate.
var ErrInvalidIdentity = errors.New("invalid identity")

// Validate reports a missing or malformed field, naming it; the error wraps
// ErrInvalidIdentity. Keys must be qualified names (prefix/name) as the API
// server checks them for labels (k8s.io/apimachinery/pkg/util/validation).
func (id Identity) Validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalidIdentity, field, why) }
	switch {
	case id.FieldManager == "":
		return bad("FieldManager", "is required")
	case len(id.FieldManager) > 128:
		return bad("FieldManager", "is longer than 128 characters")
	case id.Domain == "":
		return bad("Domain", "is required")
	}
	if errs := validation.IsDNS1123Subdomain(id.Domain); len(errs) > 0 {
		return bad("Domain", strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(id.managedBy()); len(errs) > 0 {
		return bad("ManagedBy", strings.Join(errs, "; "))
	}
	for _, k := range []struct{ field, key string }{{"OwnerLabel", id.OwnerLabelKey()}, {"HashAnnotation", id.HashAnnotationKey()}} {
		if errs := validation.IsQualifiedName(k.key); len(errs) > 0 {
			return bad(k.field, strings.Join(errs, "; "))
		}
	}
	return nil
}

// Key is the label or annotation key "<Domain>/<name>".
func (id Identity) Key(name string) string { return id.Domain + "/" + name }

// OwnerLabelKey is OwnerLabel, or Key("owner") when it is empty.
func (id Identity) OwnerLabelKey() string {
	if id.OwnerLabel != "" {
		return id.OwnerLabel
	}
	return id.Key("owner")
}

// HashAnnotationKey is HashAnnotation, or Key("desired-hash") when it is empty.
func (id Identity) HashAnnotationKey() string {
	if id.HashAnnotation != "" {
		return id.HashAnnotation
	}
	return id.Key("desired-hash")
}

// Name is NamePrefix (default FieldManager + "-") followed by name.
func (id Identity) Name(name string) string {
	if id.NamePrefix != "" {
		return id.NamePrefix + name
	}
	return id.FieldManager + "-" + name
}

// managedBy is ManagedBy, or FieldManager when it is empty.
func (id Identity) managedBy() string {
	if id.ManagedBy != "" {
		return id.ManagedBy
	}
	return id.FieldManager
}

// ManagedByLabels is the one label every object written carries:
// {LabelManagedBy: ManagedBy}.
func (id Identity) ManagedByLabels() map[string]string {
	return map[string]string{LabelManagedBy: id.managedBy()}
}

// OwnerLabels is ManagedByLabels plus {OwnerLabelKey(): ownerName}: the
// labels of a namespaced object written for an owner.
func (id Identity) OwnerLabels(ownerName string) map[string]string {
	l := id.ManagedByLabels()
	l[id.OwnerLabelKey()] = ownerName
	return l
}

// ManagedSelector selects every object written under this identity (for a
// cache or a watch).
func (id Identity) ManagedSelector() labels.Selector {
	return labels.SelectorFromSet(id.ManagedByLabels())
}
