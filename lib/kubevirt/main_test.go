package kubevirt

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/testenv"
)

// env is the one API server of the package, with the real KubeVirt CRDs.
var env *testenv.Env

// testID is the identity the tests write under: Wukong's, so the assertions
// read as the operator's objects do.
var testID = apply.Identity{FieldManager: "wukong", Domain: "vm.novasphere.dev", OwnerLabel: "vm.novasphere.dev/wukong", NamePrefix: "wukong-"}

func testScheme() *runtime.Scheme {
	return testenv.Scheme(kubevirtv1.AddToScheme, instancetypev1beta1.AddToScheme)
}

func TestMain(m *testing.M) {
	testenv.Main(m, testScheme(), func(e *testenv.Env) { env = e })
}

// newNamespace creates a fresh namespace and an owner ConfigMap "web" in
// it (testenv.Owner).
func newNamespace(t *testing.T, c client.Client) (string, *corev1.ConfigMap) {
	owner := testenv.Owner(t, c, "kv-", "web")
	return owner.Namespace, owner
}
