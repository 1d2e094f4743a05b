package network_test

import (
	"sync/atomic"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/testenv"
)

// testID is the identity the tests write under: Wukong's, so the assertions
// read as the operator's objects do.
var testID = apply.Identity{FieldManager: "wukong", Domain: "vm.novasphere.dev", OwnerLabel: "vm.novasphere.dev/wukong", NamePrefix: "wukong-"}

var (
	env    *testenv.Env
	scheme = testenv.Scheme(nadv1.AddToScheme, nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme)
	nsSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	testenv.Main(m, scheme, func(e *testenv.Env) { env = e })
}

// newOwner creates a fresh namespace and returns an owner in it
// (testenv.Owner: a ConfigMap without TypeMeta, so Reconcile takes the kind
// from the scheme).
func newOwner(t *testing.T, c client.Client, name string) *corev1.ConfigMap {
	return testenv.Owner(t, c, "t-", name)
}

type corev1Namespace struct{}

func (corev1Namespace) ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
