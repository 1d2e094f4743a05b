package mapping

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

func TestDisksMapping(t *testing.T) {
	cases := []struct {
		name    string
		spec    v1alpha1.WukongSpec
		sources []string
		boot    []bool
	}{
		{"osImage fills the first disk when none is marked boot",
			v1alpha1.WukongSpec{OSImage: "docker://os", Disks: []v1alpha1.DiskSpec{{Name: "a"}, {Name: "b"}}},
			[]string{"docker://os", ""}, []bool{true, false}},
		{"osImage fills the marked boot disk",
			v1alpha1.WukongSpec{OSImage: "docker://os", Disks: []v1alpha1.DiskSpec{{Name: "a"}, {Name: "b", Boot: true}}},
			[]string{"", "docker://os"}, []bool{false, true}},
		{"a disk's own image wins over osImage",
			v1alpha1.WukongSpec{OSImage: "docker://os", Disks: []v1alpha1.DiskSpec{{Name: "a", Image: "https://x/y.img"}}},
			[]string{"https://x/y.img"}, []bool{true}},
		{"osImage is not imported into a boot disk naming an existing claim",
			v1alpha1.WukongSpec{OSImage: "docker://os", Disks: []v1alpha1.DiskSpec{{Name: "a", ClaimName: "kept"}, {Name: "b"}}},
			[]string{"", ""}, []bool{true, false}},
		{"a cloned boot disk takes no osImage",
			v1alpha1.WukongSpec{OSImage: "docker://os", Disks: []v1alpha1.DiskSpec{{Name: "a", CloneFrom: &v1alpha1.DiskCloneSource{Wukong: "src"}}, {Name: "b"}}},
			[]string{"", ""}, []bool{true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &v1alpha1.Wukong{Spec: tc.spec}
			got := Disks(w)
			require.Len(t, got, len(tc.sources))
			for i := range got {
				assert.Equal(t, tc.sources[i], got[i].Source, "disk %d source", i)
				assert.Equal(t, tc.boot[i], i == BootIndex(w), "disk %d boot", i)
			}
		})
	}
}

// TestDisksMapsClaimAndPolicy: claimName and deletionPolicy Retain reach
// lib/storage; RetainsClaims is true only for a Retain disk Wukong creates.
func TestDisksMapsClaimAndPolicy(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{
		{Name: "a", DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain},
		{Name: "b", ClaimName: "kept", DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain},
		{Name: "c", DeletionPolicy: v1alpha1.DiskDeletionPolicyDelete},
	}}}
	got := Disks(w)
	assert.Equal(t, []bool{true, true, false}, []bool{got[0].Retain, got[1].Retain, got[2].Retain})
	assert.Equal(t, []string{"", "kept", ""}, []string{got[0].ClaimName, got[1].ClaimName, got[2].ClaimName})
	assert.True(t, RetainsClaims(w))
	w.Spec.Disks[0].DeletionPolicy = ""
	assert.False(t, RetainsClaims(w), "a claimName disk's claim is never deleted: nothing to retain")

	// The VM refers to an existing claim itself (KubeVirt's
	// persistentVolumeClaim volume), to a created one through its DataVolume.
	m, err := Machine(w, nil, []storage.Observation{
		{Name: "a", ClaimName: "-a", DataVolume: true},
		{Name: "b", ClaimName: "kept", Existing: true},
		{Name: "c", ClaimName: "-c", DataVolume: true},
	}, nil)
	require.NoError(t, err)
	require.Len(t, m.Disks, 3)
	assert.Equal(t, "kept", m.Disks[1].ClaimName)
	assert.False(t, m.Disks[1].DataVolume)
	assert.True(t, m.Disks[0].DataVolume)
}

func TestAttachmentsMapping(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{Networks: []v1alpha1.NetworkSpec{
		{Name: "a", BridgeName: "br1", PhysicalInterface: "eth1", VLANID: 10},
		{Name: "b", Type: v1alpha1.NetworkTypeMacvlan, BridgeName: "eth2"},
		{Name: "c", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "eth3", BridgeName: "ignored"},
		{Name: "d", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "intel.com/x", VLANID: 5},
		{Name: "e", NADName: "other/net"},
	}}}
	got := Attachments(w)
	assert.Equal(t, []network.Attachment{
		{Name: "a", Type: network.TypeBridge, Bridge: "br1", PhysicalInterface: "eth1", VLAN: 10},
		{Name: "b", Type: network.TypeMacvlan, PhysicalInterface: "eth2"},
		{Name: "c", Type: network.TypeMacvlan, PhysicalInterface: "eth3"},
		{Name: "d", Type: network.TypeSRIOV, ResourceName: "intel.com/x", VLAN: 5},
		{Name: "e", Type: network.TypeBridge, NADName: "other/net"},
	}, got)
}

func TestMachineMapping(t *testing.T) {
	w := &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm1"},
		Spec: v1alpha1.WukongSpec{
			CPU: 2, Memory: resource.MustParse("2Gi"),
			Disks: []v1alpha1.DiskSpec{{Name: "data"}, {Name: "root", Boot: true}},
			Networks: []v1alpha1.NetworkSpec{
				{Name: "lan", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "10.0.0.5/24", Gateway: "10.0.0.1", DNSServers: []string{"1.1.1.1"}}},
				{Name: "fast", Type: v1alpha1.NetworkTypeSRIOV},
			},
			PodNetwork:       ptr.To(false),
			CloudInitUser:    &v1alpha1.CloudInitUser{Name: "ops", Password: "pw", Groups: []string{"adm"}},
			HighAvailability: &v1alpha1.HighAvailability{RestartPolicy: "OnFailure", AntiAffinity: true, NodeSelector: map[string]string{"a": "b"}},
		},
	}
	nics := []network.NICObservation{{Name: "lan", NADNamespace: "ns", NADName: "vm1-lan", MAC: "02:00:00:00:00:0a"}, {Name: "fast", NADNamespace: "ns", NADName: "vm1-fast", MAC: "02:00:00:00:00:0b"}}
	vols := []storage.Observation{{Name: "data", ClaimName: "vm1-data"}, {Name: "root", ClaimName: "vm1-root", DataVolume: true}}
	m, err := Machine(w, nics, vols, []string{"ssh-ed25519 AAA"})
	require.NoError(t, err)
	assert.Equal(t, kubevirtv1.RunStrategyRerunOnFailure, m.RunStrategy)
	assert.False(t, m.PodNetwork)
	assert.Equal(t, []kubevirt.Disk{{Name: "data", ClaimName: "vm1-data"}, {Name: "root", ClaimName: "vm1-root", DataVolume: true, Boot: true}}, m.Disks)
	assert.Equal(t, []kubevirt.NIC{
		{Name: "lan", NAD: "ns/vm1-lan", MAC: "02:00:00:00:00:0a", Binding: kubevirt.BindingBridge,
			IP: &kubevirt.IPConfig{Mode: kubevirt.NetworkModeStatic, Addresses: []string{"10.0.0.5/24"}, Gateway: "10.0.0.1", DNS: []string{"1.1.1.1"}}},
		{Name: "fast", NAD: "ns/vm1-fast", MAC: "02:00:00:00:00:0b", Binding: kubevirt.BindingSRIOV},
	}, m.NICs)
	assert.Equal(t, "ops", m.CloudInit.User.Name)
	assert.Equal(t, []string{"ssh-ed25519 AAA"}, m.CloudInit.SSHKeys)
	assert.True(t, m.AntiAffinity)
	assert.Empty(t, m.AntiAffinityGroup)
	assert.False(t, m.AntiAffinityPreferred, "Required is the default")
	assert.Equal(t, "vm1", m.CloudInit.Hostname)

	// The anti-affinity group and mode.
	grouped := w.DeepCopy()
	grouped.Spec.HighAvailability.AntiAffinityGroup = "db"
	grouped.Spec.HighAvailability.AntiAffinityMode = v1alpha1.AntiAffinityPreferred
	m, err = Machine(grouped, nics, vols, nil)
	require.NoError(t, err)
	assert.Equal(t, "db", m.AntiAffinityGroup)
	assert.True(t, m.AntiAffinityPreferred)
	grouped.Spec.HighAvailability.AntiAffinityMode = v1alpha1.AntiAffinityRequired
	m, err = Machine(grouped, nics, vols, nil)
	require.NoError(t, err)
	assert.False(t, m.AntiAffinityPreferred)

	// Observations are joined to spec entries by name, not position.
	swapped, err := Machine(w, []network.NICObservation{nics[1], nics[0]}, []storage.Observation{vols[1], vols[0]}, nil)
	require.NoError(t, err)
	assert.Equal(t, m.Disks, swapped.Disks)
	assert.Equal(t, m.NICs, swapped.NICs)

	// Defaults: no cpu/memory given, osImage without disks boots a container disk.
	m, err = Machine(&v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: v1alpha1.WukongSpec{OSImage: "quay.io/a/b:1"}}, nil, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), m.CPU)
	assert.Equal(t, "1Gi", m.Memory.String())
	assert.Equal(t, "quay.io/a/b:1", m.ContainerDiskImage)
	assert.True(t, m.PodNetwork)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, m.RunStrategy)
}

// FuzzSpecMapping feeds arbitrary specs (as JSON) through the mapping and
// the builders: nothing may panic, and what the builders accept must
// marshal.
func FuzzSpecMapping(f *testing.F) {
	f.Add([]byte(`{"cpu":2,"memory":"2Gi","disks":[{"name":"root","size":"10Gi","image":"docker://a"}],"networks":[{"name":"lan","bridgeName":"br1","vlanId":10,"ipConfig":{"mode":"static","address":"10.0.0.1/24"}}]}`))
	f.Add([]byte(`{"osImage":"quay.io/x/y:1","startStrategy":{"runStrategy":"Halted","autoStart":false},"highAvailability":{"restartPolicy":"Never"}}`))
	f.Add([]byte(`{"networks":[{"name":"a","type":"sriov"},{"name":"b","type":"macvlan","physicalInterface":"eth0"},{"name":"c","nadName":"ns/x"}],"cloudInitUser":{"name":"u","password":"pa55word!"}}`))
	f.Add([]byte(`{"cloudInitUser":{"name":"u","password":"line1\nline2: x","sudo":"ALL=(ALL) NOPASSWD:ALL","groups":["a: b","- c"]},"sshKeySecret":"k"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fuzz", UID: "u-1"}}
		w.APIVersion, w.Kind = v1alpha1.GroupVersion.String(), "Wukong"
		if err := json.Unmarshal(data, &w.Spec); err != nil {
			return
		}
		atts := Attachments(w)
		var nics []network.NICObservation
		for _, a := range atts {
			nics = append(nics, network.NICObservation{Name: a.Name, NADNamespace: "ns", NADName: "fuzz-" + a.Name, MAC: network.MAC("ns", "fuzz", a.Name)})
			if nad, err := network.BuildNAD(identity.Wukong, w, a); err == nil {
				_, err := json.Marshal(nad)
				require.NoError(t, err)
			}
		}
		var vols []storage.Observation
		for _, d := range Disks(w) {
			vols = append(vols, storage.Observation{Name: d.Name, ClaimName: storage.ClaimName("fuzz", d.Name), DataVolume: d.Source != ""})
			if d.Source == "" {
				_ = storage.BuildPVC(identity.Wukong, w, d)
			} else if dv, err := storage.BuildDataVolume(identity.Wukong, w, d); err == nil {
				_, err := json.Marshal(dv)
				require.NoError(t, err)
			}
		}
		m, err := Machine(w, nics, vols, nil)
		if err != nil {
			return
		}
		if m.Validate() != nil {
			return
		}
		vm, err := json.Marshal(kubevirt.BuildVM(identity.Wukong, w, m))
		require.NoError(t, err)
		s, err := kubevirt.BuildCloudInitSecret(identity.Wukong, w, m)
		if err != nil {
			return
		}
		// Every rendered document parses, and a plain password reaches
		// neither the VM nor the Secret.
		var user, net map[string]any
		require.NoError(t, yaml.Unmarshal(s.Data[kubevirt.UserDataKey], &user), "userdata parses")
		require.NoError(t, yaml.Unmarshal(s.Data[kubevirt.NetworkDataKey], &net), "networkdata parses")
		if u := w.Spec.CloudInitUser; u != nil && len(u.Password) >= 6 {
			assert.NotContains(t, string(vm), u.Password)
			for k, v := range s.Data {
				assert.NotContains(t, string(v), u.Password, "key %s", k)
			}
		}
	})
}

// TestNICBinding: macvlan NICs (a macvtap NAD) get the macvtap binding
// plugin, never the bridge binding.
func TestNICBinding(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.NetworkSpec
		obs  network.NICObservation
		want kubevirt.Binding
	}{
		{"macvlan: the macvtap NAD Wukong writes", v1alpha1.NetworkSpec{Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "eth1"},
			network.NICObservation{CNIType: network.CNIMacvtap}, kubevirt.BindingMacvtap},
		{"a user's macvtap NAD", v1alpha1.NetworkSpec{NADName: "tap"}, network.NICObservation{CNIType: "macvtap", UserProvided: true}, kubevirt.BindingMacvtap},
		{"bridge", v1alpha1.NetworkSpec{BridgeName: "br1"}, network.NICObservation{CNIType: "bridge"}, kubevirt.BindingBridge},
		{"ovs", v1alpha1.NetworkSpec{Type: v1alpha1.NetworkTypeOVS, BridgeName: "br-ex"}, network.NICObservation{CNIType: "ovs"}, kubevirt.BindingBridge},
		{"sriov", v1alpha1.NetworkSpec{Type: v1alpha1.NetworkTypeSRIOV}, network.NICObservation{CNIType: "sriov"}, kubevirt.BindingSRIOV},
		{"a user NAD whose config is on the node", v1alpha1.NetworkSpec{NADName: "x"}, network.NICObservation{}, kubevirt.BindingBridge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, nicBinding(tt.spec, tt.obs))
		})
	}
}

// TestNetworkFieldWalksEveryLibField: every field lib/network's Validate
// can name maps back to a field of spec.networks[i] that exists (by its
// JSON name), except mtu, which Wukong never sets.
func TestNetworkFieldWalksEveryLibField(t *testing.T) {
	specFields := map[string]bool{}
	rt := reflect.TypeOf(v1alpha1.NetworkSpec{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		specFields[name] = true
	}
	bad := []network.Attachment{
		{Name: "Bad_Name", Type: network.TypeBridge, Bridge: "b"},
		{Name: "n", Type: network.TypeBridge, Bridge: "b", VLAN: 5000},
		{Name: "n", Type: network.TypeBridge, Bridge: "b", MTU: -1},
		{Name: "n", Type: network.TypeBridge, NADName: "a/b/c"},
		{Name: "n", Type: network.TypeBridge},
		{Name: "n", Type: network.TypeMacvlan},
		{Name: "n", Type: "vxlan"},
	}
	seen := map[string]bool{}
	for _, a := range bad {
		var invalid *network.InvalidAttachmentError
		require.ErrorAs(t, a.Validate(), &invalid, "%+v", a)
		seen[invalid.Field] = true
		sf := NetworkField(invalid.Field)
		if invalid.Field == "mtu" {
			assert.Empty(t, sf, "no Wukong field sets the MTU")
			continue
		}
		assert.True(t, specFields[sf], "lib field %q maps to %q, which spec.networks[i] does not have", invalid.Field, sf)
	}
	assert.Len(t, seen, 7, "every field Validate names: %v", seen)
	assert.Equal(t, "vlanId", NetworkField("vlan"))
	assert.Equal(t, "bridgeName", NetworkField("bridge"))
}

func TestDiskFieldOfAClone(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{OSImage: "docker://os", Disks: []v1alpha1.DiskSpec{
		{Name: "root", CloneFrom: &v1alpha1.DiskCloneSource{Snapshot: "s"}}, {Name: "data"},
	}}}
	assert.Equal(t, "spec.disks[0].cloneFrom", DiskField(w, 0, "source"), "what a clone copies is its cloneFrom, not osImage")
	assert.Equal(t, "spec.disks[0].size", DiskField(w, 0, "size"))
}

// TestClusterImage: the catalog image a disk clones comes from its own
// clusterImage, or for the boot disk without a source of its own from
// spec.osClusterImage, and the field named is the one that set it; Disks
// gives such a boot disk no image to import.
func TestClusterImage(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{OSClusterImage: "debian", Disks: []v1alpha1.DiskSpec{
		{Name: "data", ClusterImage: "tools"},
		{Name: "root", Boot: true},
		{Name: "blank"},
		{Name: "kept", ClaimName: "old"},
	}}}
	for i, want := range [][2]string{
		{"tools", "spec.disks[0].clusterImage"},
		{"debian", "spec.osClusterImage"},
		{"", ""},
		{"", ""},
	} {
		name, field := ClusterImage(w, i)
		assert.Equal(t, want, [2]string{name, field}, "disk %d", i)
	}
	assert.Equal(t, "spec.osClusterImage", DiskField(w, 1, "source"))
	assert.Equal(t, "spec.disks[0].clusterImage", DiskField(w, 0, "source"))
	assert.Equal(t, "spec.disks[2].image", DiskField(w, 2, "source"))
	for _, d := range Disks(w) {
		assert.Empty(t, d.Source, "disk %s imports nothing", d.Name)
	}
	// The boot disk with a source of its own does not take osClusterImage.
	w.Spec.Disks[1].Image = "https://images.example.org/x.img"
	name, _ := ClusterImage(w, 1)
	assert.Empty(t, name)
}

func TestDiskOfVolume(t *testing.T) {
	disks := []v1alpha1.DiskSpec{{Name: "root"}, {Name: "data"}}
	i, ok := DiskOfVolume(disks, "data")
	if !ok || i != 1 {
		t.Fatalf("DiskOfVolume(data) = %d, %v; want 1, true", i, ok)
	}
	if _, ok := DiskOfVolume(disks, "cloudinitdisk"); ok {
		t.Fatal("the cloud-init volume is no disk")
	}
}
