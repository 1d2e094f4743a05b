package manager

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKeySecretMeta: of a watched SSH key Secret the cache keeps its name,
// namespace, UID and resourceVersion only: not its labels, nor annotations
// such as kubectl's last-applied-configuration, which holds its data.
func TestKeySecretMeta(t *testing.T) {
	in := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: "ns", UID: "u1", ResourceVersion: "7",
			Labels:        map[string]string{"vm.novasphere.dev/ssh-authorized-keys": "true"},
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"k":"c3NoLWVkMjU1MTk="}}`},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
	}
	out, err := keySecretMeta(in)
	require.NoError(t, err)
	assert.Equal(t, &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: "ns", UID: "u1", ResourceVersion: "7"},
	}, out)
}
