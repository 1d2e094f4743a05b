package kubevirt_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
)

// myID is the calling controller's identity: field manager, managed-by
// value and label domain. The package has none of its own.
var myID = apply.Identity{FieldManager: "my-controller", Domain: "vm.example.com"}

// Reconcile applies the cloud-init Secret and the VirtualMachine under the
// caller's identity and reports what KubeVirt says; a second call writes
// nothing. The fake client stands in for a manager's client (its scheme must
// know kubevirt.io/v1); with no KubeVirt running, no instance exists.
func ExampleReconcile() {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), kubevirtv1.AddToScheme(scheme)); err != nil {
		fmt.Println(err)
		return
	}
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "1234"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(owner).Build()

	m := kubevirt.Machine{
		Name:               "web",
		CPU:                1,
		Memory:             resource.MustParse("1Gi"),
		RunStrategy:        kubevirtv1.RunStrategyHalted,
		ContainerDiskImage: "quay.io/containerdisks/fedora:40",
		PodNetwork:         true,
	}
	obs, err := kubevirt.Reconcile(ctx, c, myID, owner, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	reason, _ := obs.NotReadyReason()
	fmt.Println("exists:", obs.Exists(), "instance:", obs.HasInstance(), "ready:", obs.Ready(), "reason:", reason)

	vm := &kubevirtv1.VirtualMachine{}
	_ = c.Get(ctx, client.ObjectKey{Namespace: "prod", Name: "web"}, vm)
	fmt.Println("labels:", vm.Labels)
	fmt.Println("runStrategy:", *vm.Spec.RunStrategy, vm.Annotations[myID.Key(kubevirt.KeyAppliedRunStrategy)])
	// Output:
	// exists: true instance: false ready: false reason: Stopped
	// labels: map[app.kubernetes.io/managed-by:my-controller vm.example.com/owner:web]
	// runStrategy: Halted Halted
}

func ExampleBuildVM() {
	owner := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "1234"},
	}
	rs := kubevirtv1.RunStrategyRerunOnFailure
	m := kubevirt.Machine{
		Name:        "web",
		CPU:         2,
		Memory:      resource.MustParse("4096Mi"),
		RunStrategy: rs,
		Disks:       []kubevirt.Disk{{Name: "root", ClaimName: "web-root", DataVolume: true, Boot: true}},
		PodNetwork:  true,
		NICs:        []kubevirt.NIC{{Name: "lan", NAD: "net/lan", MAC: "02:aa:bb:cc:dd:01"}},
		CloudInit: kubevirt.CloudInit{
			User:    &kubevirt.User{Name: "ops", Password: "secret"},
			SSHKeys: []string{"ssh-ed25519 AAAA ops@example"},
		},
	}
	vm := kubevirt.BuildVM(myID, owner, m)
	spec := vm.Spec.Template.Spec
	fmt.Println("vm:", vm.Name, "runStrategy:", *vm.Spec.RunStrategy)
	fmt.Println("sockets:", spec.Domain.CPU.Sockets, "memory:", spec.Domain.Memory.Guest)
	for _, d := range spec.Domain.Devices.Disks {
		fmt.Println("disk:", d.Name, "bootOrder set:", d.BootOrder != nil)
	}
	for _, n := range spec.Networks {
		fmt.Println("network:", n.Name)
	}

	secret, err := kubevirt.BuildCloudInitSecret(myID, owner, m)
	if err != nil {
		panic(err)
	}
	user := string(secret.Data[kubevirt.UserDataKey])
	fmt.Println("secret:", secret.Name, "first line:", strings.SplitN(user, "\n", 2)[0])
	fmt.Println("plain password stored:", strings.Contains(user, "secret\n"))
	// Output:
	// vm: web runStrategy: RerunOnFailure
	// sockets: 2 memory: 4Gi
	// disk: root bootOrder set: true
	// disk: cloudinitdisk bootOrder set: false
	// network: default
	// network: lan
	// secret: web-cloudinit first line: #cloud-config
	// plain password stored: false
}
