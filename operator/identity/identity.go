// Package identity holds the names Wukong writes its children under: the
// one apply.Identity the operator passes to lib/apply, lib/storage,
// lib/network and lib/kubevirt, and that the manager's cache selects on.
// The libs hold no names of their own; this is the only place Wukong's are
// set.
package identity

import (
	"github.com/novasphere/wukong/lib/apply"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Wukong is the operator's identity:
//
//   - field manager and app.kubernetes.io/managed-by value "wukong";
//   - label and annotation keys under the API group, vm.novasphere.dev/<name>
//     (disk, nic, bridge, bridge-state, disk-size, anti-affinity,
//     applied-run-strategy);
//   - the owner label vm.novasphere.dev/wukong=<Wukong name>;
//   - NodeNetworkConfigurationPolicies named wukong-br-<bridge>;
//   - the applied-object hash in apply.novasphere.dev/desired-hash.
//
// Changing any of these renames what existing clusters hold: the operator
// would no longer recognise its own children's labels, policies or hashes.
var Wukong = apply.Identity{
	FieldManager:   "wukong",
	ManagedBy:      "wukong",
	Domain:         v1alpha1.GroupVersion.Group,
	OwnerLabel:     v1alpha1.GroupVersion.Group + "/wukong",
	NamePrefix:     "wukong-",
	HashAnnotation: "apply.novasphere.dev/desired-hash",
}

// ManagedSelector selects the objects Wukong writes (its managed-by label);
// the manager's cache holds only those for the kinds it filters.
func ManagedSelector() labels.Selector { return Wukong.ManagedSelector() }
