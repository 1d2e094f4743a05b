package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/testenv"
)

var k8s client.Client

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	_ = corev1.AddToScheme(scheme)
	env, err := testenv.Start(scheme, filepath.Join("..", "..", "config", "crd"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "val-"}}
	require.NoError(t, k8s.Create(context.Background(), ns))
	return ns.Name
}

// create applies a Wukong manifest given as YAML (so tests can write what a
// user writes, including values the Go types cannot hold) with opts.
func create(t *testing.T, ns, manifest string, opts ...client.CreateOption) error {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(manifest), &u.Object))
	u.SetNamespace(ns)
	return k8s.Create(context.Background(), u, opts...)
}

const header = "apiVersion: vm.novasphere.dev/v1alpha1\nkind: Wukong\nmetadata:\n  name: %s\n"

// numberedWukongs creates, in namespace ns, the i-th spec (YAML from
// "spec:" on) as a Wukong named <prefix>-<i>: checkAdmission's create for
// Wukong cases.
func numberedWukongs(ns, prefix string) func(t *testing.T, i int, spec string) error {
	return func(t *testing.T, i int, spec string) error {
		return create(t, ns, fmt.Sprintf(header, fmt.Sprintf("%s-%d", prefix, i))+spec)
	}
}

// requireAccepted creates a Wukong of each spec (YAML from "spec:" on),
// the i-th named <prefix>-<i>, and requires the API server to accept every
// one.
func requireAccepted(t *testing.T, ns, prefix string, specs ...string) {
	t.Helper()
	createNth := numberedWukongs(ns, prefix)
	for i, spec := range specs {
		require.NoError(t, createNth(t, i, spec), "manifest %d", i)
	}
}

// TestOriginalManifestsStayValid applies manifests written against the
// original design's field names: every one must be accepted unchanged.
func TestOriginalManifestsStayValid(t *testing.T) {
	ns := newNamespace(t)
	cases := map[string]string{
		// The original design plugged a bridge NIC without bridgeName into
		// br-<network name>.
		"bridge NIC without bridgeName": `spec:
  networks:
  - name: lan
    type: bridge
  - name: wan`,
		"every original field": `spec:
  cpu: 4
  memory: 8Gi
  osImage: docker://quay.io/containerdisks/ubuntu:22.04
  sshKeySecret: my-keys
  cloudInitUser:
    name: ubuntu
    passwordHash: "$6$abc$def"
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    shell: /bin/bash
    groups: [adm, sudo]
    lockPasswd: false
  networks:
  - name: data
    type: bridge
    bridgeName: br1
    vlanId: 100
    ipConfig:
      mode: static
      address: 192.168.10.5/24
      gateway: 192.168.10.1
      dnsServers: [8.8.8.8, 2001:4860:4860::8888]
  - name: storage
    type: macvlan
    ipConfig:
      mode: dhcp
  - name: fast
    type: sriov
    vlanId: 20
  - name: ext
    nadName: default/shared-net
  disks:
  - name: root
    size: 20Gi
    storageClassName: fast
    boot: true
    image: https://example.com/disk.qcow2
  - name: data
    size: "100Gi"
  highAvailability:
    restartPolicy: Always
    antiAffinity: true
    nodeSelector:
      kubernetes.io/os: linux
    tolerations:
    - key: dedicated
      operator: Equal
      value: vms
      effect: NoSchedule
  startStrategy:
    runStrategy: Always
    autoStart: true
`,
		"minimal":                        "spec:\n  cpu: 1\n  memory: 1Gi\n  disks:\n  - name: root\n    size: 10Gi\n",
		"password plain":                 "spec:\n  cloudInitUser:\n    name: admin\n    password: secret\n",
		"ovs network":                    "spec:\n  networks:\n  - name: n1\n    type: ovs\n    bridgeName: br-ex\n    vlanId: 4094\n",
		"manual halted":                  "spec:\n  startStrategy:\n    runStrategy: Halted\n    autoStart: false\n",
		"eviction LiveMigrate":           "spec:\n  evictionStrategy: LiveMigrate\n",
		"eviction LiveMigrateIfPossible": "spec:\n  evictionStrategy: LiveMigrateIfPossible\n",
		"onfailure rerun":                "spec:\n  highAvailability:\n    restartPolicy: OnFailure\n  startStrategy:\n    runStrategy: RerunOnFailure\n",
		"registry image":                 "spec:\n  disks:\n  - name: root\n    size: 5Gi\n    image: quay.io/containerdisks/fedora:40\n",
		"cdisk docker":                   "spec:\n  osImage: docker://quay.io/containerdisks/fedora:40\n",
		"cdisk port":                     "spec:\n  osImage: localhost:5000/guest/debian:12\n",
		"default route":                  "spec:\n  networks:\n  - name: a\n    bridgeName: b\n    ipConfig:\n      mode: static\n      address: fd00::5/64\n      gateway: fd00::1\n      defaultRoute: true\n  - name: c\n    bridgeName: b\n    ipConfig:\n      defaultRoute: false\n",
		"no guest agent":                 "spec:\n  guestAgent:\n    install: false\n",
		"https to disk":                  "spec:\n  osImage: https://images.example.org/guest.qcow2\n  disks:\n  - name: root\n    size: 10Gi\n",
		"size in bytes":                  "spec:\n  disks:\n  - name: root\n    size: \"1073741824\"\n",
		"dhcp no address":                "spec:\n  networks:\n  - name: n1\n    bridgeName: br0\n    ipConfig:\n      mode: dhcp\n      dnsServers: [1.1.1.1]\n",
		"nmstate bridge":                 "spec:\n  networks:\n  - name: n1\n    bridgeName: br1\n    physicalInterface: eth1\n    vlanId: 10\n",
		"empty spec":                     "spec: {}\n",
		"cpu at max":                     "spec:\n  cpu: 64\n",
		"anti-affinity group and mode":   "spec:\n  highAvailability:\n    antiAffinity: true\n    antiAffinityGroup: db_primary.1\n    antiAffinityMode: Preferred\n",
		"anti-affinity required":         "spec:\n  highAvailability:\n    antiAffinity: true\n    antiAffinityMode: Required\n",
		"password secret":                "spec:\n  cloudInitUser:\n    name: admin\n    passwordSecretRef: {name: admin-password}\n",
		"catalog image disk":             "spec:\n  osImage: quay.io/containerdisks/fedora:40\n  disks:\n  - name: root\n    size: 10Gi\n    clusterImage: ubuntu-2404\n",
	}
	i := 0
	for name, spec := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			require.NoError(t, create(t, ns, fmt.Sprintf(header, fmt.Sprintf("ok-%d", i))+spec))
		})
	}
}

// TestAdmissionRejects applies bad manifests: each must be rejected by the API
// server with an error naming the field.
func TestAdmissionRejects(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name, spec string
		field      string // must appear in the error
		msg        string // and so must this
	}{
		{"cpu zero", "spec:\n  cpu: 0\n", "spec.cpu", "greater than or equal to 1"},
		{"cpu too many", "spec:\n  cpu: 65\n", "spec.cpu", "less than or equal to 64"},
		{"memory not a quantity", "spec:\n  memory: lots\n", "spec.memory", "must be a quantity"},
		{"memory zero", "spec:\n  memory: \"0\"\n", "spec.memory", "greater than zero"},
		{"disk size not a quantity", "spec:\n  disks:\n  - name: d\n    size: big\n", "spec.disks[0].size", "must be a quantity"},
		{"disk size missing", "spec:\n  disks:\n  - name: d\n", "spec.disks[0].size", "size is required unless claimName is set"},
		{"claimName and image", "spec:\n  disks:\n  - name: d\n    claimName: kept\n    image: docker://a/b:1\n", "spec.disks[0].claimName", "claimName and image are mutually exclusive"},
		{"claimName and storageClassName", "spec:\n  disks:\n  - name: d\n    claimName: kept\n    storageClassName: fast\n", "spec.disks[0].claimName", "claimName and storageClassName are mutually exclusive"},
		{"claimName with deletionPolicy Delete", "spec:\n  disks:\n  - name: d\n    claimName: kept\n    deletionPolicy: Delete\n", "spec.disks[0].deletionPolicy", "Wukong never deletes a claim it did not create"},
		{"claimName not a name", "spec:\n  disks:\n  - name: d\n    claimName: Kept_Claim\n", "spec.disks[0].claimName", "should match"},
		{"claimName with a zero size", "spec:\n  disks:\n  - name: d\n    claimName: kept\n    size: \"0\"\n", "spec.disks[0].size", "greater than zero"},
		{"unknown deletionPolicy", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    deletionPolicy: Orphan\n", "spec.disks[0].deletionPolicy", "Unsupported value"},
		{"duplicate disk names", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n  - name: d\n    size: 2Gi\n", "spec.disks[1]", "Duplicate value"},
		{"duplicate network names", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n  - name: nic\n    bridgeName: b\n", "spec.networks[1]", "Duplicate value"},
		{"disk name not a DNS label", "spec:\n  disks:\n  - name: Root_Disk\n    size: 1Gi\n", "spec.disks[0].name", "should match"},
		{"network name not a DNS label", "spec:\n  networks:\n  - name: net.1\n    bridgeName: b\n", "spec.networks[0].name", "should match"},
		{"wukong name not a DNS label", "spec: {}\n", "metadata.name", "DNS label"},
		{"two boot disks", "spec:\n  disks:\n  - name: a\n    size: 1Gi\n    boot: true\n  - name: b\n    size: 1Gi\n    boot: true\n", "spec.disks", "at most one disk"},
		{"vlan zero", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    vlanId: 0\n", "spec.networks[0].vlanId", "greater than or equal to 1"},
		{"vlan too big", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    vlanId: 4095\n", "spec.networks[0].vlanId", "less than or equal to 4094"},
		{"unknown network type", "spec:\n  networks:\n  - name: nic\n    type: vxlan\n", "spec.networks[0].type", "Unsupported value"},
		{"static without address", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    ipConfig:\n      mode: static\n", "spec.networks[0].ipConfig.address", "required when mode is static"},
		{"address not CIDR", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    ipConfig:\n      mode: static\n      address: 10.0.0.5\n", "spec.networks[0].ipConfig.address", "CIDR"},
		{"gateway not IP", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    ipConfig:\n      mode: static\n      address: 10.0.0.5/24\n      gateway: router\n", "spec.networks[0].ipConfig.gateway", "must be an IP"},
		{"dns not IP", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    ipConfig:\n      dnsServers: [dns.example.com]\n", "spec.networks[0].ipConfig.dnsServers", "must be IP"},
		{"address with dhcp", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    ipConfig:\n      mode: dhcp\n      address: 10.0.0.5/24\n", "spec.networks[0].ipConfig.address", "cannot be set when mode is dhcp"},
		{"unknown ip mode", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    ipConfig:\n      mode: slaac\n", "spec.networks[0].ipConfig.mode", "Unsupported value"},
		{"unknown runStrategy", "spec:\n  startStrategy:\n    runStrategy: Sometimes\n", "spec.startStrategy.runStrategy", "Unsupported value"},
		{"unknown evictionStrategy", "spec:\n  evictionStrategy: Migrate\n", "spec.evictionStrategy", "Unsupported value"},
		{"anti-affinity mode unknown", "spec:\n  highAvailability:\n    antiAffinity: true\n    antiAffinityMode: Soft\n", "spec.highAvailability.antiAffinityMode", "Unsupported value"},
		{"anti-affinity group not a label value", "spec:\n  highAvailability:\n    antiAffinity: true\n    antiAffinityGroup: a/b\n", "spec.highAvailability.antiAffinityGroup", "should match"},
		{"anti-affinity group too long", "spec:\n  highAvailability:\n    antiAffinity: true\n    antiAffinityGroup: " + strings.Repeat("a", 64) + "\n", "spec.highAvailability.antiAffinityGroup", "may not be more than 63"},
		{"anti-affinity group without antiAffinity", "spec:\n  highAvailability:\n    antiAffinityGroup: db\n", "spec.highAvailability.antiAffinity", "need antiAffinity: true"},
		{"anti-affinity mode with antiAffinity false", "spec:\n  highAvailability:\n    antiAffinity: false\n    antiAffinityMode: Preferred\n", "spec.highAvailability.antiAffinity", "need antiAffinity: true"},
		{"unknown restartPolicy", "spec:\n  highAvailability:\n    restartPolicy: Maybe\n", "spec.highAvailability.restartPolicy", "Unsupported value"},
		{"autoStart false with Always", "spec:\n  startStrategy:\n    runStrategy: Always\n    autoStart: false\n", "spec.startStrategy.runStrategy", "conflicts with startStrategy.autoStart"},
		{"autoStart true with Halted", "spec:\n  startStrategy:\n    runStrategy: Halted\n    autoStart: true\n", "spec.startStrategy.runStrategy", "conflicts with startStrategy.autoStart"},
		{"autoStart true with Manual", "spec:\n  startStrategy:\n    runStrategy: Manual\n    autoStart: true\n", "spec.startStrategy.runStrategy", "conflicts with startStrategy.autoStart"},
		{"Manual vs restartPolicy Always", "spec:\n  highAvailability:\n    restartPolicy: Always\n  startStrategy:\n    runStrategy: Manual\n", "spec.highAvailability.restartPolicy", "conflicts"},
		{"runStrategy vs restartPolicy", "spec:\n  highAvailability:\n    restartPolicy: Never\n  startStrategy:\n    runStrategy: Always\n", "spec.highAvailability.restartPolicy", "conflicts"},
		{"ovs without bridgeName", "spec:\n  networks:\n  - name: nic\n    type: ovs\n", "spec.networks[0].bridgeName", "required for ovs"},
		{"nadName with bridgeName", "spec:\n  networks:\n  - name: nic\n    nadName: x\n    bridgeName: b\n", "spec.networks[0]", "cannot be combined with nadName"},
		{"resourceName on bridge", "spec:\n  networks:\n  - name: nic\n    bridgeName: b\n    resourceName: intel.com/x\n", "spec.networks[0].resourceName", "applies to sriov"},
		{"vlan on macvlan", "spec:\n  networks:\n  - name: nic\n    type: macvlan\n    vlanId: 5\n", "spec.networks[0].vlanId", "not supported for macvlan"},
		{"password and hash", "spec:\n  cloudInitUser:\n    name: u\n    password: a\n    passwordHash: $6$x$y\n", "spec.cloudInitUser", "set one of passwordSecretRef, password and passwordHash"},
		{"password and secret", "spec:\n  cloudInitUser:\n    name: u\n    password: a\n    passwordSecretRef: {name: pw}\n", "spec.cloudInitUser", "set one of passwordSecretRef, password and passwordHash"},
		{"hash and secret", "spec:\n  cloudInitUser:\n    name: u\n    passwordHash: $6$x$y\n    passwordSecretRef: {name: pw, key: k}\n", "spec.cloudInitUser", "set one of"},
		{"secret without name", "spec:\n  cloudInitUser:\n    name: u\n    passwordSecretRef: {key: k}\n", "spec.cloudInitUser.passwordSecretRef.name", "Required"},
		{"secret key not a key", "spec:\n  cloudInitUser:\n    name: u\n    passwordSecretRef: {name: pw, key: a/b}\n", "spec.cloudInitUser.passwordSecretRef.key", "should match"},
		{"hash not crypt", "spec:\n  cloudInitUser:\n    name: u\n    passwordHash: plain\n", "spec.cloudInitUser.passwordHash", "crypt"},
		{"user name invalid", "spec:\n  cloudInitUser:\n    name: Root User\n", "spec.cloudInitUser.name", "should match"},
		{"user without name", "spec:\n  cloudInitUser:\n    shell: /bin/sh\n", "spec.cloudInitUser.name", "Required"},
		{"ssh secret name invalid", "spec:\n  sshKeySecret: My_Keys\n", "spec.sshKeySecret", "should match"},
		{"image with spaces", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    image: http://a b\n", "spec.disks[0].image", "should match"},
		{"too many disks", "spec:\n  disks:\n" + strings.Repeat("", 0) + manyDisks(17), "spec.disks", "must have at most 16 items"},
		{"defaultRoute on two networks", "spec:\n  networks:\n  - name: a\n    bridgeName: b\n    ipConfig:\n      defaultRoute: true\n  - name: c\n    bridgeName: b\n    ipConfig:\n      mode: static\n      address: 10.0.0.5/24\n      gateway: 10.0.0.1\n      defaultRoute: true\n", "spec.networks", "at most one network may set ipConfig.defaultRoute"},
		{"defaultRoute static without gateway", "spec:\n  networks:\n  - name: a\n    bridgeName: b\n    ipConfig:\n      mode: static\n      address: 10.0.0.5/24\n      defaultRoute: true\n", "spec.networks[0].ipConfig.gateway", "defaultRoute needs a gateway"},
		{"https osImage without disks", "spec:\n  osImage: https://images.example.org/guest.qcow2\n", "spec.osImage", "add a disk for it to be imported into"},
		{"clusterImage and image", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    clusterImage: ubuntu\n    image: docker://a/b:1\n", "spec.disks[0].clusterImage", "clusterImage is mutually exclusive with image, claimName and cloneFrom"},
		{"clusterImage and claimName", "spec:\n  disks:\n  - name: d\n    clusterImage: ubuntu\n    claimName: kept\n", "spec.disks[0].clusterImage", "mutually exclusive"},
		{"clusterImage and cloneFrom", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    clusterImage: ubuntu\n    cloneFrom: {wukong: other}\n", "spec.disks[0].clusterImage", "mutually exclusive"},
		{"clusterImage not a name", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    clusterImage: 9ubuntu\n", "spec.disks[0].clusterImage", "should match"},
		{"osClusterImage and osImage", "spec:\n  osImage: docker://a/b:1\n  osClusterImage: ubuntu\n  disks:\n  - name: d\n    size: 1Gi\n", "spec.osClusterImage", "osClusterImage and osImage are mutually exclusive"},
		{"osClusterImage without disks", "spec:\n  osClusterImage: ubuntu\n", "spec.osClusterImage", "osClusterImage needs a disk"},
		{"osClusterImage not a name", "spec:\n  osClusterImage: Ubuntu\n  disks:\n  - name: d\n    size: 1Gi\n", "spec.osClusterImage", "should match"},
		{"http osImage with an empty disk list", "spec:\n  osImage: http://images.example.org/guest.img\n  disks: []\n", "spec.osImage", "cannot boot as a container disk"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("bad-%d", i)
			if tc.field == "metadata.name" {
				name = "Bad.Name"
			}
			requireAdmission(t, create(t, ns, fmt.Sprintf(header, name)+tc.spec), false, tc.field, tc.msg)
		})
	}
}

func manyDisks(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - name: d%d\n    size: 1Gi\n", i)
	}
	return b.String()
}

// TestDiskClaimAdmission: what a user writes to keep a disk or use an
// existing claim is accepted: deletionPolicy on a disk Wukong creates;
// claimName with or without a size (a size is then a minimum the claim
// must request, never a resize), and with the no-op deletionPolicy Retain.
func TestDiskClaimAdmission(t *testing.T) {
	ns := newNamespace(t)
	requireAccepted(t, ns, "ok",
		"spec:\n  disks:\n  - name: d\n    size: 1Gi\n    deletionPolicy: Retain\n  - name: e\n    size: 1Gi\n    deletionPolicy: Delete\n",
		"spec:\n  osImage: docker://a/b:1\n  disks:\n  - name: d\n    claimName: old-vm-root\n",
		"spec:\n  disks:\n  - name: d\n    claimName: old-vm-root\n    size: 10Gi\n    boot: true\n",
		"spec:\n  disks:\n  - name: d\n    claimName: old-vm-root\n    deletionPolicy: Retain\n",
	)
	// A Go client sends no size for a claimName disk without one (omitzero).
	w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "typed"},
		Spec: v1alpha1.WukongSpec{Memory: resourceMust("1Gi"), Disks: []v1alpha1.DiskSpec{{Name: "d", ClaimName: "old-vm-root"}}}}
	require.NoError(t, k8s.Create(context.Background(), w))
}

// TestOSClusterImageImmutable: osClusterImage cannot change or go once
// set (the boot disk was cloned from it).
func TestOSClusterImageImmutable(t *testing.T) {
	ns := newNamespace(t)
	require.NoError(t, create(t, ns, fmt.Sprintf(header, "osci")+"spec:\n  osClusterImage: ubuntu\n  disks:\n  - name: root\n    size: 10Gi\n"))
	for _, v := range []string{"debian", ""} {
		w := &v1alpha1.Wukong{}
		require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "osci"}, w))
		w.Spec.OSClusterImage = v
		requireAdmission(t, k8s.Update(context.Background(), w), false, "spec.osClusterImage", "osClusterImage is immutable once set")
	}
}

// TestUpdateRules checks the transition rules: disks may grow but not
// shrink; a disk's storageClassName and image and the osImage are immutable.
func TestUpdateRules(t *testing.T) {
	ns := newNamespace(t)
	base := "spec:\n  osImage: docker://a/b:1\n  disks:\n  - name: root\n    size: 10Gi\n    storageClassName: fast\n    image: https://x/y.img\n  - name: data\n    size: 1Gi\n"
	require.NoError(t, create(t, ns, fmt.Sprintf(header, "upd")+base))
	ctx := context.Background()

	mutate := func(t *testing.T, f func(w *v1alpha1.Wukong)) error {
		t.Helper()
		w := &v1alpha1.Wukong{}
		require.NoError(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "upd"}, w))
		f(w)
		return k8s.Update(ctx, w)
	}
	cases := []struct {
		name  string
		f     func(w *v1alpha1.Wukong)
		field string // "" = accepted
		msg   string
	}{
		{"shrink", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resourceMust("5Gi") }, "spec.disks[0].size", "cannot shrink"},
		{"shrink by unit", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].Size = resourceMust("1000Mi") }, "spec.disks[1].size", "cannot shrink"},
		{"class change", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].StorageClassName = "slow" }, "spec.disks[0].storageClassName", "immutable"},
		{"class removed", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].StorageClassName = "" }, "spec.disks[0].storageClassName", "immutable"},
		{"class added", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].StorageClassName = "fast" }, "spec.disks[1].storageClassName", "immutable"},
		{"image change", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Image = "https://x/z.img" }, "spec.disks[0].image", "immutable"},
		{"image added", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].Image = "https://x/z.img" }, "spec.disks[1].image", "immutable"},
		{"osImage change", func(w *v1alpha1.Wukong) { w.Spec.OSImage = "docker://a/b:2" }, "spec", "osImage is immutable"},
		{"grow", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resourceMust("20Gi") }, "", ""},
		{"same size other unit", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].Size = resourceMust("1024Mi") }, "", ""},
		{"add disk", func(w *v1alpha1.Wukong) {
			w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "more", Size: resourceMust("1Gi"), StorageClassName: "x"})
		}, "", ""},
		{"cpu change", func(w *v1alpha1.Wukong) { w.Spec.CPU = 8 }, "", ""},
		{"deletionPolicy Retain", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].DeletionPolicy = v1alpha1.DiskDeletionPolicyRetain }, "", ""},
		{"deletionPolicy back to Delete", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].DeletionPolicy = v1alpha1.DiskDeletionPolicyDelete }, "", ""},
		{"deletionPolicy unset again", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].DeletionPolicy = "" }, "", ""},
		{"claimName added", func(w *v1alpha1.Wukong) {
			w.Spec.Disks[1].ClaimName, w.Spec.Disks[1].Size = "kept", resourceMust("0")
		}, "spec.disks[1].claimName", "claimName is immutable"},
		{"size removed", func(w *v1alpha1.Wukong) { w.Spec.Disks[1].Size = resourceMust("0") }, "spec.disks[1].size", "size is required unless claimName is set"},
		{"add a claimName disk", func(w *v1alpha1.Wukong) {
			w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "kept", ClaimName: "old-vm-root"})
		}, "", ""},
		{"claimName change", func(w *v1alpha1.Wukong) { w.Spec.Disks[3].ClaimName = "other" }, "spec.disks[3].claimName", "claimName is immutable"},
		{"claimName disk gets a size", func(w *v1alpha1.Wukong) { w.Spec.Disks[3].Size = resourceMust("1Gi") }, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mutate(t, tc.f)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err, "update was accepted")
			require.Contains(t, err.Error(), tc.field)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

// TestExamplesAreValid applies every manifest in examples/.
func TestExamplesAreValid(t *testing.T) {
	ns := newNamespace(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "examples", "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, doc := range strings.Split(string(data), "\n---") {
			u := &unstructured.Unstructured{}
			require.NoError(t, yaml.Unmarshal([]byte(doc), &u.Object), f)
			if u.GetKind() != "Wukong" {
				continue
			}
			u.SetNamespace(ns)
			require.NoError(t, k8s.Create(context.Background(), u), f)
		}
	}
}

// TestNodeBridgeAdmission: each declaration type takes the fields it uses
// and refuses the rest, naming the field.
func TestNodeBridgeAdmission(t *testing.T) {
	nb := func(name, spec string) error {
		return createCleaned(t, "apiVersion: vm.novasphere.dev/v1alpha1\nkind: NodeBridge\nmetadata:\n  name: "+name+"\nspec:\n"+spec)
	}
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"nb-lb", "  uplinks: [eth1]\n  nativeVLAN: 20\n", ""},
		{"nb-ovs", "  type: ovs-bridge\n  uplinks: [eth1]\n  allowedVLANs: [{min: 10}]\n", ""},
		{"eth9", "  type: macvtap\n  namespaceSelector: {}\n", ""},
		{"nb-vf", "  type: sriov\n  resourceName: intel.com/sriov_a\n  allowedVLANs: [{min: 100, max: 199}]\n", ""},
		{"nb-nouplink", "  type: linux-bridge\n", "spec.uplinks"},
		{"nb-mvuplink", "  type: macvtap\n  uplinks: [eth1]\n", "spec.uplinks"},
		{"nb-mvvlan", "  type: macvtap\n  allowedVLANs: [{min: 5}]\n", "spec.allowedVLANs"},
		{"nb-vfnores", "  type: sriov\n  allowedVLANs: [{min: 5}]\n", "spec.resourceName"},
		{"nb-lbres", "  uplinks: [eth1]\n  resourceName: intel.com/x\n", "spec.resourceName"},
		{"nb-vfbad", "  type: sriov\n  resourceName: no-slash\n", "spec.resourceName"},
		{"nb-vfbond", "  type: sriov\n  resourceName: intel.com/x\n  bridgeMarker: true\n", "spec.type"},
		{"nb-native0", "  uplinks: [eth1]\n  nativeVLAN: 0\n", "spec.nativeVLAN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireAdmission(t, nb(tc.name, tc.spec), tc.want == "", tc.want)
		})
	}
}

// TestCloneFromRules checks spec.disks[i].cloneFrom at admission: exactly
// one of wukong and snapshot, not with image, names that are names; and
// immutable once set (a disk gains, loses or changes it only by being a new
// disk).
func TestCloneFromRules(t *testing.T) {
	ns := newNamespace(t)
	disk := "spec:\n  disks:\n  - name: root\n    size: 2Gi\n"
	rejects := []struct {
		name, extra, field, msg string
	}{
		{"neither source", "    cloneFrom: {disk: root}\n", "spec.disks[0].cloneFrom", "exactly one of wukong and snapshot"},
		{"both sources", "    cloneFrom: {wukong: a, snapshot: b}\n", "spec.disks[0].cloneFrom", "exactly one of wukong and snapshot"},
		{"with image", "    image: https://x/y.img\n    cloneFrom: {wukong: a}\n", "spec.disks[0].cloneFrom", "cloneFrom and image are mutually exclusive"},
		{"wukong not a name", "    cloneFrom: {wukong: A_B}\n", "spec.disks[0].cloneFrom.wukong", "should match"},
		{"namespace/name is no name", "    cloneFrom: {wukong: other/src}\n", "spec.disks[0].cloneFrom.wukong", "should match"},
		{"snapshot not a name", "    cloneFrom: {snapshot: Snap_1}\n", "spec.disks[0].cloneFrom.snapshot", "should match"},
		{"disk not a name", "    cloneFrom: {wukong: a, disk: Root}\n", "spec.disks[0].cloneFrom.disk", "should match"},
		{"a namespace field does not exist", "    cloneFrom: {wukong: a, namespace: other}\n", "spec.disks[0].cloneFrom.namespace", "unknown field"},
	}
	for i, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			requireRefused(t, createStrict(t, ns, fmt.Sprintf(header, fmt.Sprintf("clone-bad-%d", i))+disk+tc.extra), tc.field, tc.msg)
		})
	}
	requireAccepted(t, ns, "clone-ok", disk+"    cloneFrom: {wukong: src}\n", disk+"    cloneFrom: {snapshot: snap-1, disk: data}\n")

	ctx := context.Background()
	require.NoError(t, create(t, ns, fmt.Sprintf(header, "clone-upd")+disk+"    cloneFrom: {wukong: src}\n  - name: data\n    size: 1Gi\n"))
	updates := []struct {
		name  string
		f     func(w *v1alpha1.Wukong)
		field string // "" = accepted
	}{
		{"source changed", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].CloneFrom.Wukong = "other" }, "spec.disks[0].cloneFrom"},
		{"disk changed", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].CloneFrom.Disk = "data" }, "spec.disks[0].cloneFrom"},
		{"removed", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].CloneFrom = nil }, "spec.disks[0].cloneFrom"},
		{"added to an existing disk", func(w *v1alpha1.Wukong) {
			w.Spec.Disks[1].CloneFrom = &v1alpha1.DiskCloneSource{Wukong: "src"}
		}, "spec.disks[1].cloneFrom"},
		{"a new disk with cloneFrom", func(w *v1alpha1.Wukong) {
			w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "copy", Size: resourceMust("1Gi"), CloneFrom: &v1alpha1.DiskCloneSource{Snapshot: "s"}})
		}, ""},
		{"the disk grows", func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resourceMust("3Gi") }, ""},
	}
	for _, tc := range updates {
		t.Run(tc.name, func(t *testing.T) {
			w := &v1alpha1.Wukong{}
			require.NoError(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "clone-upd"}, w))
			tc.f(w)
			err := k8s.Update(ctx, w)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err, "update was accepted")
			require.Contains(t, err.Error(), tc.field)
			require.Contains(t, err.Error(), "cloneFrom is immutable")
		})
	}
}

// createStrict is create with server-side field validation Strict, so an
// unknown field is an error, as kubectl (which validates strictly by
// default) reports it.
func createStrict(t *testing.T, ns, manifest string) error {
	t.Helper()
	return create(t, ns, manifest, client.FieldValidation("Strict"))
}
