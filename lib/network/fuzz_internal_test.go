package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/novasphere/wukong/lib/apply"
)

// The fuzz targets of what turns tenant (and administrator) strings into
// other systems' input: a NAD's CNI configuration (read by Multus and the
// CNI plugin) and an NMState policy's desired state (read by nmstate on
// every node).

var fuzzID = apply.Identity{FieldManager: "wukong", Domain: "vm.novasphere.dev", OwnerLabel: "vm.novasphere.dev/wukong", NamePrefix: "wukong-"}

// jsonKeys is the set of JSON names of typ's fields (its json tags): the
// only keys the renderer can write, however many fields it gains.
func jsonKeys(typ reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

func FuzzCNIConfig(f *testing.F) {
	f.Add("web", "lan", "bridge", "br1", "", "", 100, 1500)
	f.Add("web", "fast", "sriov", "", "", "intel.com/sriov", 20, 9000)
	f.Add("web", "stor", "macvlan", "", "eth1", "", 0, 0)
	f.Add("web", "ovs", "ovs", "br-ex", "", "", 4094, 0)
	f.Add("web\",\"type\":\"host-device", "lan", "bridge", "br1\",\"ipam\":{\"type\":\"dhcp\"},\"x\":\"", "", "", 0, 0)
	f.Add("a", "b", "bridge", "mtu", "vlan", "name", 1, 1)
	f.Fuzz(func(t *testing.T, owner, nic, typ, bridge, phys, resource string, vlan, mtu int) {
		for _, s := range []string{owner, nic, typ, bridge, phys, resource} {
			if !utf8.ValidString(s) {
				return // Kubernetes API strings are UTF-8 (JSON); json.Marshal would coerce
			}
		}
		a := Attachment{Name: nic, Type: Type(typ), Bridge: bridge, PhysicalInterface: phys, ResourceName: resource, VLAN: vlan, MTU: mtu}
		name := NADName(owner, nic)
		out, err := CNIConfig(name, a)
		if err != nil {
			var inv *InvalidAttachmentError
			if !errors.As(err, &inv) {
				t.Fatalf("CNIConfig: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("not JSON: %s", out)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(out, &raw); err != nil {
			t.Fatalf("not a JSON object: %v: %s", err, out)
		}
		allowed := jsonKeys(reflect.TypeFor[cniConfig]())
		for k := range raw {
			if !allowed[k] {
				t.Fatalf("key %q is not one of cniConfig's %v: %s", k, allowed, out)
			}
		}
		if ipam, ok := raw["ipam"]; ok && string(ipam) != "{}" {
			t.Errorf("ipam is %s, want {}", ipam)
		}
		var got cniConfig
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("decoding: %v: %s", err, out)
		}
		// Tenant strings come back as the values they were, in their fields.
		if got.Name != name || got.Type != CNITypeFor(a) || got.CNIVersion != CNIVersion {
			t.Errorf("name %q type %q version %q, want %q %q %q", got.Name, got.Type, got.CNIVersion, name, CNITypeFor(a), CNIVersion)
		}
		switch a.Type {
		case TypeBridge, TypeOVS:
			if got.Bridge != bridge {
				t.Errorf("bridge %q, want %q", got.Bridge, bridge)
			}
		default:
			if got.Bridge != "" {
				t.Errorf("bridge %q set for type %s", got.Bridge, a.Type)
			}
		}
		if got.VLAN < 0 || got.VLAN > 4094 {
			t.Errorf("vlan %d", got.VLAN)
		}

		nad, err := BuildNAD(fuzzID, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: owner, UID: "u"}}, a)
		if err != nil {
			t.Fatalf("BuildNAD after CNIConfig succeeded: %v", err)
		}
		if nad.Spec.Config != string(out) {
			t.Errorf("NAD config %s, CNIConfig %s", nad.Spec.Config, out)
		}
		for k := range nad.Annotations {
			if k != AnnotationResourceName {
				t.Errorf("annotation %q", k)
			}
		}
	})
}

// policyKeys are the keys NMState's desired state may hold as BuildPolicy
// writes it (nmstate's interface, bridge, bond and VLAN schema).
var policyKeys = map[string]bool{
	"interfaces": true, "name": true, "type": true, "state": true, "ipv4": true, "ipv6": true, "enabled": true,
	"bridge": true, "options": true, "stp": true, "port": true, "vlan": true, "mode": true, "enable-native": true,
	"tag": true, "trunk-tags": true, "id": true, "id-range": true, "min": true, "max": true, "link-aggregation": true,
}

// checkPolicyKeys fails on a key outside policyKeys anywhere in v.
func checkPolicyKeys(t *testing.T, v any, path string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if !policyKeys[k] {
				t.Fatalf("%s: key %q is not one BuildPolicy writes", path, k)
			}
			checkPolicyKeys(t, c, path+"."+k)
		}
	case []any:
		for _, c := range v {
			checkPolicyKeys(t, c, path+"[]")
		}
	}
}

func FuzzPolicy(f *testing.F) {
	f.Add("br1", "eth1", "", "", "", false, 0, 0, false)
	f.Add("br-trunk", "eth1", "eth2", "bond0", "802.3ad", false, 10, 20, false)
	f.Add("br-ovs", "ens3", "", "", "", true, 0, 0, true)
	f.Add("br\"x", "eth1\",\"state\":\"absent", "", "", "", false, 1, 4094, false)
	f.Add("br0", "eth0", "eth1", "br0", "", false, 0, 0, false)
	// Found by fuzzing: NMState's desired state refuses control characters.
	f.Add("0", "\x7f", "", "", "", false, 10, 20, false)
	f.Add("0", "1", "2", "00", "\x7f", false, 10, 20, false)
	f.Fuzz(func(t *testing.T, name, up1, up2, bond, mode string, ovs bool, vmin, vmax int, absent bool) {
		for _, s := range []string{name, up1, up2, bond, mode} {
			if !utf8.ValidString(s) {
				return // Kubernetes API strings are UTF-8 (JSON)
			}
		}
		b := Bridge{Name: name, Uplinks: []string{up1}, OVS: ovs}
		if up2 != "" {
			b.Uplinks = append(b.Uplinks, up2)
			b.Bond = &Bond{Name: bond, Mode: mode}
		}
		if vmin != 0 || vmax != 0 {
			b.VLANs = []VLANRange{{Min: vmin, Max: vmax}}
		}
		if b.Validate() != nil {
			return
		}
		owner := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "decl", UID: "u"}}
		p := BuildPolicy(fuzzID, owner, b, absent)
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("policy does not marshal: %v", err)
		}
		if errs := validation.IsDNS1123Subdomain(p.Name); len(errs) > 0 {
			t.Errorf("policy name %q: %v", p.Name, errs)
		}
		for k, v := range p.Labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("label %s=%q: %v", k, v, errs)
			}
		}
		var state map[string]any
		if err := json.Unmarshal(p.Spec.DesiredState.Raw, &state); err != nil {
			t.Fatalf("desired state is not a JSON object: %v: %s", err, p.Spec.DesiredState.Raw)
		}
		checkPolicyKeys(t, state, "")

		// Interface names are exactly the inputs: the bridge, and the bond
		// of several uplinks; the bridge's port is the uplink or the bond;
		// the bond's ports are the uplinks.
		bonded := len(b.Uplinks) > 1
		want := []string{b.Name}
		if bonded {
			want = []string{b.Bond.Name, b.Name}
		}
		var names []string
		var bridgePorts, bondPorts []string
		for _, i := range state["interfaces"].([]any) {
			iface := i.(map[string]any)
			names = append(names, iface["name"].(string))
			if br, ok := iface["bridge"].(map[string]any); ok {
				for _, p := range br["port"].([]any) {
					bridgePorts = append(bridgePorts, p.(map[string]any)["name"].(string))
				}
			}
			if la, ok := iface["link-aggregation"].(map[string]any); ok {
				for _, p := range la["port"].([]any) {
					bondPorts = append(bondPorts, p.(string))
				}
			}
		}
		if absent {
			slices.Reverse(want) // the bridge first, then its bond
		}
		if !slices.Equal(names, want) {
			t.Fatalf("interfaces %q, want %q", names, want)
		}
		if absent {
			return
		}
		port := b.Uplinks[0]
		if bonded {
			port = b.Bond.Name
			if !slices.Equal(bondPorts, b.Uplinks) {
				t.Errorf("bond ports %q, want %q", bondPorts, b.Uplinks)
			}
		}
		if !slices.Equal(bridgePorts, []string{port}) {
			t.Errorf("bridge ports %q, want [%q]", bridgePorts, port)
		}
		// NMState needs one interface per name: the bridge, its bond and
		// the uplinks are distinct interfaces.
		all := append([]string{b.Name}, b.Uplinks...)
		if bonded {
			all = append(all, b.Bond.Name)
		}
		seen := map[string]bool{}
		for _, n := range all {
			if seen[n] {
				t.Errorf("interface name %q is used twice in %q (bridge, uplinks, bond)", n, all)
			}
			seen[n] = true
		}
	})
}
