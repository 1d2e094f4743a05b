package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPyYAMLReadsAsNonString: what PyYAML 6.0.3's yaml.safe_load made of
// "k: <s>" (checked with it; = and << raise ConstructorError, no
// constructor for tag:yaml.org,2002:value / merge).
func TestPyYAMLReadsAsNonString(t *testing.T) {
	nonString := []string{"=", "<<", ".1_", "1:20", "0_7", "0b1", "0x_1", "yes", "Off", "~", "null", "", "2001-12-14", "1_000", "+.inf", ".NaN", "1.", "2001-12-14 21:59:43.10 -5"}
	str := []string{"._1", "2001-1-1", "y", "n", "ALL=(ALL) NOPASSWD:ALL", "/bin/bash", "==", "<", "<<<", "1:60", "0o17", "ssh-ed25519 AAAA a@b"}
	for _, s := range nonString {
		assert.True(t, pyYAMLReadsAsNonString(s), "%q", s)
	}
	for _, s := range str {
		assert.False(t, pyYAMLReadsAsNonString(s), "%q", s)
	}
}

// TestUserDataQuotesForPyYAML: strings PyYAML would not read as strings
// (found by FuzzUserData and FuzzNetworkData) reach cloud-init quoted; a
// document without one keeps the sigs.k8s.io/yaml text.
func TestUserDataQuotesForPyYAML(t *testing.T) {
	m := baseMachine()
	m.CloudInit = CloudInit{SkipGuestAgent: true, User: &User{Name: "ops", Sudo: "=", Shell: "<<", Groups: []string{".1_"}}}
	data, err := RenderUserData(testOwner(), m)
	require.NoError(t, err)
	assert.Contains(t, string(data), `sudo: "="`)
	assert.Contains(t, string(data), `shell: "<<"`)
	assert.Contains(t, string(data), `- ".1_"`)

	m.CloudInit.User = &User{Name: "ops", Sudo: "ALL=(ALL) NOPASSWD:ALL"}
	data, err = RenderUserData(testOwner(), m)
	require.NoError(t, err)
	assert.Contains(t, string(data), "\nusers:\n- name: ops\n  sudo: ALL=(ALL) NOPASSWD:ALL\n", "unchanged layout")

	m.NICs = []NIC{{Name: "=", NAD: "n", MAC: "02:00:00:00:00:01", IP: &IPConfig{Mode: NetworkModeDHCP}}}
	net, err := RenderNetworkData("ns", m)
	require.NoError(t, err)
	assert.Contains(t, string(net), `"=":`)
	assert.Contains(t, string(net), `set-name: "="`)
}
