package e2e_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/examples"
)

// What the guest is given (issue 14): a containerDisk the kubelet can pull,
// exactly one default route, and the QEMU guest agent.

// TestContainerDiskImageReference: an osImage in the docker:// form boots as
// a containerDisk with the plain reference; an invalid reference stalls the
// Wukong naming spec.osImage with no VM; an http(s) osImage without disks is
// refused at admission.
func TestContainerDiskImageReference(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)

	w := newWukong(ns, "cdisk")
	w.Spec.Disks = nil
	w.Spec.OSImage = "docker://quay.io/containerdisks/fedora:40"
	create(t, w)
	eventually(t, 1, func(c *assert.CollectT) {
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(ctxT(t), key(w), vm))
		var image string
		for _, v := range vm.Spec.Template.Spec.Volumes {
			if v.ContainerDisk != nil {
				image = v.ContainerDisk.Image
			}
		}
		assert.Equal(c, "quay.io/containerdisks/fedora:40", image, "containerDisk.image is the plain reference")
	}, "the VirtualMachine of %s with its containerDisk", key(w))

	bad := newWukong(ns, "badref")
	bad.Spec.Disks = nil
	bad.Spec.OSImage = "docker://quay.io/ContainerDisks/Fedora:40"
	create(t, bad)
	waitStalled(t, key(bad), "spec.osImage", v1alpha1.ReasonInvalidSpec)

	url := newWukong(ns, "urlboot")
	url.Spec.Disks = nil
	url.Spec.OSImage = "https://images.example.org/guest.qcow2"
	err := k.Create(ctxT(t), url)
	require.Error(t, err, "an http(s) osImage without disks must be refused")
	assert.True(t, apierrors.IsInvalid(err), "want Invalid, got %v", err)
	assert.Contains(t, err.Error(), "spec.osImage")
}

// TestExampleWebOneDefaultRoute applies example web (pod network plus a
// static NIC with a gateway; its NIC on a user NAD instead of the example's
// node bridge, so it runs anywhere) and reads the cloud-init Secret: the pod
// network keeps the only default route. With defaultRoute on the NIC, the
// NIC's gateway is the only one and the pod network's DHCP ignores routes.
// The user data installs the guest agent, and the NIC's address is reported
// with its source.
func TestExampleWebOneDefaultRoute(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume, kindNAD)
	needInternet(t)
	needSecondaryNICGuests(t)
	t.Parallel()
	ns := newNamespace(t)
	create(t, userNAD(ns, "lan-net"))
	web := exampleWukong(t, "web")
	web.Namespace = ns
	for i := range web.Spec.Networks {
		n := &web.Spec.Networks[i]
		n.NADName, n.BridgeName, n.PhysicalInterface, n.VLANID = "lan-net", "", "", 0
	}
	require.NotNil(t, web.Spec.Networks[0].IPConfig)
	gateway := web.Spec.Networks[0].IPConfig.Gateway
	require.NotEmpty(t, gateway, "example web has a gateway on its NIC")
	create(t, web)

	// The Secret is written with the VM; it is complete once the VM exists.
	secretOf := func(c require.TestingT) *corev1.Secret {
		s := &corev1.Secret{}
		require.NoError(c, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: web.Name + "-" + kubevirt.CloudInitSecretSuffix}, s))
		return s
	}
	eventually(t, 1.5, func(c *assert.CollectT) {
		require.NoError(c, k.Get(ctxT(t), key(web), &kubevirtv1.VirtualMachine{}))
		routes := defaultRoutes(c, secretOf(c).Data[kubevirt.NetworkDataKey])
		assert.Equal(c, []string{kubevirt.PodNetworkName + " via dhcp"}, routes, "exactly one default route, the pod network's")
	}, "web's cloud-init Secret with one default route")

	user := string(secretOf(t).Data[kubevirt.UserDataKey])
	assert.Contains(t, user, "qemu-guest-agent", "user data installs the guest agent")

	w := waitRunning(t, key(web))
	lan := networkStatus(w, "lan")
	require.NotNil(t, lan)
	assert.Equal(t, "192.168.100.10", lan.IPAddress)
	// Seen by the guest agent, or (until it reports) only configured.
	assert.Contains(t, []v1alpha1.IPSource{v1alpha1.IPSourceGuestAgent, v1alpha1.IPSourceConfigured}, lan.IPSource,
		"the NIC's address says where it comes from")

	// The NIC asks for the default route: it becomes the only one.
	updateWukong(t, key(web), func(w *v1alpha1.Wukong) {
		w.Spec.Networks[0].IPConfig.DefaultRoute = true
		w.Spec.GuestAgent = &v1alpha1.GuestAgent{Install: new(bool)}
	})
	eventually(t, 1, func(c *assert.CollectT) {
		s := secretOf(c)
		assert.Equal(c, []string{"lan via " + gateway}, defaultRoutes(c, s.Data[kubevirt.NetworkDataKey]),
			"exactly one default route, the NIC's")
		assert.NotContains(c, string(s.Data[kubevirt.UserDataKey]), "qemu-guest-agent", "guestAgent.install false")
	}, "web's cloud-init Secret with the NIC's default route")
}

// exampleWukong is the Wukong named name from examples/.
func exampleWukong(t *testing.T, name string) *v1alpha1.Wukong {
	t.Helper()
	objs, err := examples.Load(examplesDir)
	require.NoError(t, err)
	for _, o := range objs {
		if o.GetKind() == "Wukong" && o.GetName() == name {
			w := &v1alpha1.Wukong{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, w))
			return w
		}
	}
	t.Fatalf("no example Wukong %s in %s", name, examplesDir)
	return nil
}

// defaultRoutes lists, sorted, the default routes of cloud-init network data
// version 2 as "<interface> via <gateway|dhcp>": routes to 0.0.0.0/0, ::/0
// or default, gateway4/gateway6, and dhcp4 without use-routes: false.
func defaultRoutes(c require.TestingT, data []byte) []string {
	var cfg struct {
		Ethernets map[string]struct {
			DHCP4          bool             `json:"dhcp4"`
			DHCP4Overrides map[string]any   `json:"dhcp4-overrides"`
			Gateway4       string           `json:"gateway4"`
			Gateway6       string           `json:"gateway6"`
			Routes         []map[string]any `json:"routes"`
		} `json:"ethernets"`
	}
	require.NoError(c, yaml.Unmarshal(data, &cfg), "network data:\n%s", data)
	var out []string
	for name, e := range cfg.Ethernets {
		if e.DHCP4 && e.DHCP4Overrides["use-routes"] != false {
			out = append(out, name+" via dhcp")
		}
		for _, gw := range []string{e.Gateway4, e.Gateway6} {
			if gw != "" {
				out = append(out, name+" via "+gw)
			}
		}
		for _, r := range e.Routes {
			switch r["to"] {
			case "0.0.0.0/0", "::/0", "default":
				out = append(out, fmt.Sprintf("%s via %v", name, r["via"]))
			}
		}
	}
	sort.Strings(out)
	return out
}
