package kubevirt

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/testenv"
)

// env is the one API server of the package, with the real KubeVirt CRDs.
var env *testenv.Env

// testID is the identity the tests write under: Wukong's, so the assertions
// read as the operator's objects do.
var testID = apply.Identity{FieldManager: "wukong", Domain: "vm.novasphere.dev", OwnerLabel: "vm.novasphere.dev/wukong", NamePrefix: "wukong-"}

func testScheme() *runtime.Scheme { return testenv.Scheme(kubevirtv1.AddToScheme) }

func TestMain(m *testing.M) {
	testenv.Main(m, testScheme(), func(e *testenv.Env) { env = e })
}

// newNamespace creates a fresh namespace and an owner ConfigMap in it (the
// stand-in for a Wukong: envtest has no garbage collector, so any kind
// works as owner).
func newNamespace(t *testing.T, c client.Client) (string, *corev1.ConfigMap) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kv-"}}
	require.NoError(t, c.Create(ctx, ns))
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns.Name}}
	require.NoError(t, c.Create(ctx, owner))
	return ns.Name, owner
}
