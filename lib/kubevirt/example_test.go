package kubevirt_test

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/kubevirt"
)

func ExampleBuildVM() {
	owner := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "1234"},
	}
	rs, err := kubevirt.RunStrategy("", nil, "OnFailure")
	if err != nil {
		panic(err)
	}
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
	vm := kubevirt.BuildVM(owner, m)
	spec := vm.Spec.Template.Spec
	fmt.Println("vm:", vm.Name, "runStrategy:", *vm.Spec.RunStrategy)
	fmt.Println("cores:", spec.Domain.CPU.Cores, "memory:", spec.Domain.Memory.Guest)
	for _, d := range spec.Domain.Devices.Disks {
		fmt.Println("disk:", d.Name, "bootOrder set:", d.BootOrder != nil)
	}
	for _, n := range spec.Networks {
		fmt.Println("network:", n.Name)
	}

	secret, err := kubevirt.BuildCloudInitSecret(owner, m)
	if err != nil {
		panic(err)
	}
	user := string(secret.Data[kubevirt.UserDataKey])
	fmt.Println("secret:", secret.Name, "first line:", strings.SplitN(user, "\n", 2)[0])
	fmt.Println("plain password stored:", strings.Contains(user, "secret\n"))
	// Output:
	// vm: web runStrategy: RerunOnFailure
	// cores: 2 memory: 4Gi
	// disk: root bootOrder set: true
	// disk: cloudinitdisk bootOrder set: false
	// network: default
	// network: lan
	// secret: web-cloudinit first line: #cloud-config
	// plain password stored: false
}
