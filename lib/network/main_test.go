package network_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/testenv"
)

// testID is the identity the tests write under: Wukong's, so the assertions
// read as the operator's objects do.
var testID = apply.Identity{FieldManager: "wukong", Domain: "vm.novasphere.dev", OwnerLabel: "vm.novasphere.dev/wukong", NamePrefix: "wukong-"}

var (
	env    *testenv.Env
	scheme = runtime.NewScheme()
	nsSeq  atomic.Int64
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, nadv1.AddToScheme, nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

func TestMain(m *testing.M) {
	testenv.Main(m, scheme, func(e *testenv.Env) { env = e })
}

// namespace creates a fresh namespace and returns an owner in it (a
// ConfigMap without TypeMeta: Reconcile takes the kind from the scheme).
func newOwner(t *testing.T, c client.Client, name string) *corev1.ConfigMap {
	t.Helper()
	ns := fmt.Sprintf("t%d", nsSeq.Add(1))
	require.NoError(t, client.IgnoreAlreadyExists(c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})))
	return ownerIn(t, c, ns, name)
}

func ownerIn(t *testing.T, c client.Client, ns, name string) *corev1.ConfigMap {
	t.Helper()
	o := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	require.NoError(t, c.Create(context.Background(), o))
	return o
}

type corev1Namespace struct{}

func (corev1Namespace) ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
