package apply_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/novasphere/wukong/lib/apply"
)

// testID is the identity of this package's tests.
var testID = apply.Identity{FieldManager: "test", Domain: "test.example.com"}

func TestIdentityDefaults(t *testing.T) {
	id := apply.Identity{FieldManager: "my-controller", Domain: "vm.example.com"}
	require.NoError(t, id.Validate())
	assert.Equal(t, "vm.example.com/disk", id.Key("disk"))
	assert.Equal(t, "vm.example.com/owner", id.OwnerLabelKey())
	assert.Equal(t, "vm.example.com/desired-hash", id.HashAnnotationKey())
	assert.Equal(t, "my-controller-br-x", id.Name("br-x"))
	assert.Equal(t, map[string]string{apply.LabelManagedBy: "my-controller", "vm.example.com/owner": "vm1"}, id.OwnerLabels("vm1"))
	assert.Equal(t, "app.kubernetes.io/managed-by=my-controller", id.ManagedSelector().String())

	id = apply.Identity{FieldManager: "fm", ManagedBy: "mb", Domain: "d.example.com", OwnerLabel: "d.example.com/vm",
		NamePrefix: "p-", HashAnnotation: "h.example.com/hash"}
	require.NoError(t, id.Validate())
	assert.Equal(t, "d.example.com/vm", id.OwnerLabelKey())
	assert.Equal(t, "h.example.com/hash", id.HashAnnotationKey())
	assert.Equal(t, "p-br-x", id.Name("br-x"))
	assert.Equal(t, map[string]string{apply.LabelManagedBy: "mb"}, id.ManagedByLabels())
}

func TestIdentityValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		id    apply.Identity
		field string
	}{
		{"no field manager", apply.Identity{Domain: "a.example.com"}, "FieldManager"},
		{"no domain", apply.Identity{FieldManager: "x"}, "Domain"},
		{"domain not a DNS subdomain", apply.Identity{FieldManager: "x", Domain: "A_B"}, "Domain"},
		{"managed-by not a label value", apply.Identity{FieldManager: "x", Domain: "a.example.com", ManagedBy: "a b"}, "ManagedBy"},
		{"owner label not a qualified name", apply.Identity{FieldManager: "x", Domain: "a.example.com", OwnerLabel: "a/b/c"}, "OwnerLabel"},
		{"hash annotation not a qualified name", apply.Identity{FieldManager: "x", Domain: "a.example.com", HashAnnotation: "-x"}, "HashAnnotation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.Validate()
			require.ErrorIs(t, err, apply.ErrInvalidIdentity)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}
