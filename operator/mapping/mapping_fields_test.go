package mapping

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestMachineField(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{Networks: []v1alpha1.NetworkSpec{
		{Name: "plain"},
		{Name: "lan", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic}},
		{Name: "nocfg"},
		{Name: "stor", IPConfig: &v1alpha1.IPConfig{}},
	}, Disks: []v1alpha1.DiskSpec{{Name: "root"}, {Name: "data"}}}}
	tests := []struct{ lib, want string }{
		{"containerDiskImage", "spec.osImage"},
		{"evictionStrategy", "spec.evictionStrategy"},
		{"memory", "spec.memory"},
		{"cpu", "spec.cpu"},
		{"nics[1].ip.addresses[0]", "spec.networks[1].ipConfig.address"},
		{"nics[1].ip.gateway", "spec.networks[1].ipConfig.gateway"},
		{"nics[3].ip.dns[2]", "spec.networks[3].ipConfig.dnsServers[2]"},
		{"nics[3].mac", "spec.networks[3]"},
		{"nics[3].ip.defaultRoute", "spec.networks[3].ipConfig.defaultRoute"},
		{"nics[7].ip.gateway", "nics[7].ip.gateway"}, // no such entry: left as is
		{"nics[x].ip.gateway", "nics[x].ip.gateway"},
		{"nics[1].name", "spec.networks[1].name"},
		{"nics[2].nad", "spec.networks[2]"},
		{"nics[0].binding", "spec.networks[0]"},
		{"disks[1].name", "spec.disks[1].name"},
		{"disks[0].claimName", "spec.disks[0]"},
		{"disks[2].name", "disks[2].name"}, // no such entry: left as is
		{"disks", "spec.disks"},
		{"name", "metadata.name"},
		{"runStrategy", "spec.startStrategy.runStrategy"},
		{"antiAffinityGroup", "spec.highAvailability.antiAffinityGroup"},
		{"cloudInit.user.name", "spec.cloudInitUser.name"},
		{"cloudInit.propagateSSHKeys", "spec.sshKeySecret"},
		{"instancetype", "spec.instancetype"},
		{"preference.kind", "spec.preference.kind"},
	}
	for _, tt := range tests {
		t.Run(tt.lib, func(t *testing.T) {
			assert.Equal(t, tt.want, MachineField(w, tt.lib))
		})
	}
}

func TestMachineMapsDefaultRoute(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{Networks: []v1alpha1.NetworkSpec{
		{Name: "lan", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "10.0.0.5/24", Gateway: "10.0.0.1", DefaultRoute: true}},
		{Name: "stor", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeDHCP}},
	}}}
	m, err := Machine(w, nil, nil, nil)
	require.NoError(t, err)
	require.Len(t, m.NICs, 2)
	assert.True(t, m.NICs[0].IP.DefaultRoute)
	assert.Equal(t, "10.0.0.1", m.NICs[0].IP.Gateway)
	assert.False(t, m.NICs[1].IP.DefaultRoute)
}

func TestMachineMapsGuestAgent(t *testing.T) {
	no, yes := false, true
	for _, tc := range []struct {
		name string
		ga   *v1alpha1.GuestAgent
		skip bool
	}{
		{"not set: installed", nil, false},
		{"install unset: installed", &v1alpha1.GuestAgent{}, false},
		{"install true", &v1alpha1.GuestAgent{Install: &yes}, false},
		{"install false: opted out", &v1alpha1.GuestAgent{Install: &no}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Machine(&v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{OSImage: "quay.io/a/b:1", GuestAgent: tc.ga}}, nil, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.skip, m.CloudInit.SkipGuestAgent)
		})
	}
}

// DiskOfClaim finds the spec.disks entry behind a claim KubeVirt names.
func TestDiskOfClaim(t *testing.T) {
	w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.WukongSpec{
		Disks: []v1alpha1.DiskSpec{{Name: "root"}, {Name: "data"}, {Name: "kept", ClaimName: "old-data"}},
	}}
	i, ok := DiskOfClaim(w, "web-data")
	assert.True(t, ok)
	assert.Equal(t, 1, i)
	i, ok = DiskOfClaim(w, "old-data")
	assert.True(t, ok, "a claimName disk's claim is the one it names")
	assert.Equal(t, 2, i)
	_, ok = DiskOfClaim(w, "web-kept")
	assert.False(t, ok, "a claimName disk has no claim of its own name")
	_, ok = DiskOfClaim(w, "other-data")
	assert.False(t, ok)
}

// The Wukong's eviction strategy is copied; empty stays empty (the
// operator's default and the KubeVirt CR's are not the mapping's).
func TestMachineMapsEvictionStrategy(t *testing.T) {
	w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.WukongSpec{OSImage: "fedora", EvictionStrategy: "LiveMigrate"}}
	m, err := Machine(w, nil, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, kubevirtv1.EvictionStrategyLiveMigrate, m.EvictionStrategy)
	w.Spec.EvictionStrategy = ""
	m, err = Machine(w, nil, nil, nil)
	require.NoError(t, err)
	assert.Empty(t, m.EvictionStrategy)
}

// TestDiskField: every Disk field lib/storage names in a failure maps back to
// the spec.disks field Disks took it from.
func TestDiskField(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{OSImage: "quay.io/a/b:1", Disks: []v1alpha1.DiskSpec{
		{Name: "root"},
		{Name: "data", Image: "https://example.com/d.img"},
		{Name: "kept", ClaimName: "old-data"},
	}}}
	tests := []struct {
		i         int
		lib, want string
	}{
		{0, "source", "spec.osImage"}, // the boot disk without image imports osImage
		{1, "source", "spec.disks[1].image"},
		{1, "size", "spec.disks[1].size"},
		{0, "storageClassName", "spec.disks[0].storageClassName"},
		{1, "name", "spec.disks[1].name"},
		{1, "", "spec.disks[1]"},
		{2, "claimName", "spec.disks[2].claimName"},
		{2, "size", "spec.disks[2].size"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, DiskField(w, tt.i, tt.lib))
		})
	}
}

// TestMachineFieldCoversLibFields walks every fixed input field lib/kubevirt
// names in its errors (Field: "…" and invalid("…", …) in its sources) and
// checks MachineField maps it to a path of the Wukong, so no Stalled
// message names a field the user cannot find. Fields Machine never fills
// are listed with the reason.
func TestMachineFieldCoversLibFields(t *testing.T) {
	notFilled := map[string]string{
		"cloudInit.salt": "Machine sets no salt: lib/kubevirt derives it",
		"podNetworkIP":   "Machine sets no pod network IP config (the pod network is DHCP)",
	}
	files, err := filepath.Glob("../../lib/kubevirt/*.go")
	require.NoError(t, err)
	fieldRE := regexp.MustCompile(`(?:Field:\s*|invalid\()"([A-Za-z][A-Za-z.]*)"`)
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range fieldRE.FindAllStringSubmatch(string(src), -1) {
			seen[m[1]] = true
		}
	}
	require.Greater(t, len(seen), 15, "the walk found lib/kubevirt's fields")
	w := &v1alpha1.Wukong{}
	for field := range seen {
		if why, ok := notFilled[field]; ok {
			t.Logf("%s: %s", field, why)
			continue
		}
		got := MachineField(w, field)
		assert.True(t, strings.HasPrefix(got, "spec.") || strings.HasPrefix(got, "metadata."),
			"lib/kubevirt field %q maps to %q, not a Wukong field", field, got)
	}
}
