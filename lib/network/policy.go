package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// LabelEnactmentPolicy is the label kubernetes-nmstate puts on every
// NodeNetworkConfigurationEnactment, naming its policy.
const LabelEnactmentPolicy = "nmstate.io/policy"

// LabelEnactmentNode is the label kubernetes-nmstate puts on every
// NodeNetworkConfigurationEnactment naming the node it is for.
const LabelEnactmentNode = "nmstate.io/node"

// Bridge is a node bridge configured with one NMState
// NodeNetworkConfigurationPolicy. It is decided by whoever owns the policy
// (for example a cluster administrator's declaration), never by a VM's owner.
type Bridge struct {
	// Name is the bridge interface name on the nodes (at most 15 characters).
	Name string
	// Uplinks are the node interfaces enslaved to the bridge: one is the
	// bridge's port; several are bonded into Bond first.
	Uplinks []string
	// Bond bonds several uplinks; required with more than one.
	Bond *Bond
	// OVS selects an ovs-bridge instead of a linux-bridge.
	OVS bool
	// VLANs are the VLAN ID ranges the uplink trunks (NMState port vlan
	// mode trunk, trunk-tags), besides NativeVLAN untagged. Empty: the
	// uplink is an access port of NativeVLAN. Either way the bridge filters
	// VLANs, so a guest cannot send frames tagged with other VLANs out of
	// the uplink (an OVS port without vlan configuration would trunk every
	// VLAN; a Linux bridge without VLAN filtering forwards tagged frames).
	VLANs []VLANRange
	// NativeVLAN is the VLAN untagged frames of the uplink belong to
	// (NMState port vlan tag, with enable-native in trunk mode); 0 means 1,
	// the Linux bridge's default PVID. Guests on untagged NICs are put on it
	// as access ports by their NAD (CNIConfig with Attachment.VLAN).
	NativeVLAN int
	// NodeSelector limits the policy to matching nodes (empty: all nodes).
	NodeSelector map[string]string
}

// Bond is an NMState bond interface over several uplinks.
type Bond struct {
	// Name is the bond's interface name.
	Name string
	// Mode is the NMState link-aggregation mode, e.g. active-backup.
	Mode string
}

// VLANRange is an inclusive range of VLAN IDs (1..4094).
type VLANRange struct{ Min, Max int }

// Validate checks what NMState would refuse or what would be unsafe to send.
func (b Bridge) Validate() error {
	switch {
	case ifaceName(b.Name) != nil:
		return fmt.Errorf("bridge name %q: %w", b.Name, ifaceName(b.Name))
	case len(b.Uplinks) == 0:
		return fmt.Errorf("bridge %s: at least one uplink is required", b.Name)
	case len(b.Uplinks) > 1 && (b.Bond == nil || b.Bond.Name == ""):
		return fmt.Errorf("bridge %s: %d uplinks need a bond", b.Name, len(b.Uplinks))
	}
	if b.NativeVLAN < 0 || b.NativeVLAN > 4094 {
		return fmt.Errorf("bridge %s: native VLAN %d is not within 1-4094", b.Name, b.NativeVLAN)
	}
	// NMState's desired state names each interface once: the bridge, its
	// uplinks and its bond are distinct interfaces.
	names := map[string]bool{b.Name: true}
	ifaces := append([]string(nil), b.Uplinks...)
	if len(b.Uplinks) > 1 {
		ifaces = append(ifaces, b.Bond.Name)
	}
	for _, n := range ifaces {
		if err := ifaceName(n); err != nil {
			return fmt.Errorf("bridge %s: interface name %q: %w", b.Name, n, err)
		}
		if names[n] {
			return fmt.Errorf("bridge %s: interface name %q is used twice (the bridge, its uplinks and its bond are distinct interfaces)", b.Name, n)
		}
		names[n] = true
	}
	if len(b.Uplinks) > 1 && !slices.Contains(bondModes, b.Bond.Mode) {
		return fmt.Errorf("bridge %s: bond mode %q is not one of %q", b.Name, b.Bond.Mode, bondModes[1:])
	}
	for _, r := range b.VLANs {
		if r.Min < 1 || r.Max > 4094 || r.Max < r.Min {
			return fmt.Errorf("bridge %s: VLAN range %d-%d is not within 1-4094", b.Name, r.Min, r.Max)
		}
	}
	return nil
}

// bondModes are the link-aggregation modes NMState knows (its bond
// schema, the Linux bonding driver's modes); "" is active-backup.
var bondModes = []string{"", "active-backup", "802.3ad", "balance-xor", "balance-tlb", "balance-alb", "balance-rr", "broadcast"}

// ifaceName checks a node interface name as Linux does (net/core/dev.c,
// dev_valid_name: 1 to 15 bytes, not "." or "..", no '/', ':' or white
// space) and as NMState can carry it: valid UTF-8 without control
// characters, which kubernetes-nmstate's desired state (YAML) refuses
// (found by FuzzPolicy: "yaml: control characters are not allowed").
func ifaceName(n string) error {
	switch {
	case n == "" || len(n) > 15:
		return errors.New("must be 1 to 15 bytes")
	case n == "." || n == "..":
		return errors.New(`cannot be "." or ".."`)
	case !utf8.ValidString(n) || strings.IndexFunc(n, func(r rune) bool {
		return r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) >= 0:
		return errors.New("must be UTF-8 without '/', ':', white space or control characters")
	}
	return nil
}

func (b Bridge) kind() string {
	if b.OVS {
		return "ovs-bridge"
	}
	return "linux-bridge"
}

// PolicyName is the deterministic name of the policy for bridge:
// id.Name("br-<bridge>"), i.e. `<id.NamePrefix>br-<bridge>`, the bridge
// lower-cased; characters not allowed in a name are replaced and a short
// hash is appended so distinct bridges never collide.
func PolicyName(id apply.Identity, bridge string) string { return id.Name("br-" + bridgeLabel(bridge)) }

func bridgeLabel(bridge string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(bridge) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			sb.WriteRune(r)
		} else {
			sb.WriteRune('-')
		}
	}
	s := strings.Trim(sb.String(), "-")
	if s == bridge {
		return s
	}
	sum := sha256.Sum256([]byte(bridge))
	if s == "" {
		return hex.EncodeToString(sum[:4])
	}
	return s + "-" + hex.EncodeToString(sum[:4])
}

// PolicySelector selects every policy the lib writes under id (for
// watches): id's managed-by label and the label id.Key(KeyBridge).
func PolicySelector(id apply.Identity) labels.Selector {
	req, err := labels.NewRequirement(id.Key(KeyBridge), selection.Exists, nil)
	if err != nil { // an invalid Domain; Validate names it
		return labels.Nothing()
	}
	return labels.SelectorFromSet(id.ManagedByLabels()).Add(*req)
}

// desiredState is NMState's desired state for b: the bridge with its port
// (the uplink, or the bond of the uplinks), STP off, no IP on the bridge.
// With absent, every interface the policy created is set to state: absent,
// which is how NMState removes them from the nodes (deleting a policy
// leaves the nodes as they are: kubernetes-nmstate's user guide,
// "Deleting a policy does not revert its changes").
func desiredState(b Bridge, absent bool) map[string]any {
	if absent {
		ifaces := []any{map[string]any{"name": b.Name, "type": b.kind(), "state": "absent"}}
		if b.Bond != nil && len(b.Uplinks) > 1 {
			ifaces = append(ifaces, map[string]any{"name": b.Bond.Name, "type": "bond", "state": "absent"})
		}
		return map[string]any{"interfaces": ifaces}
	}
	var ifaces []any
	portName := b.Uplinks[0]
	if len(b.Uplinks) > 1 {
		portName = b.Bond.Name
		ports := make([]any, 0, len(b.Uplinks))
		for _, u := range b.Uplinks {
			ports = append(ports, u)
		}
		mode := b.Bond.Mode
		if mode == "" {
			mode = "active-backup"
		}
		ifaces = append(ifaces, map[string]any{
			"name": b.Bond.Name, "type": "bond", "state": "up",
			"ipv4":             map[string]any{"enabled": false},
			"ipv6":             map[string]any{"enabled": false},
			"link-aggregation": map[string]any{"mode": mode, "port": ports},
		})
	}
	port := map[string]any{"name": portName, "vlan": uplinkVLAN(b)}
	bridge := map[string]any{
		"name":  b.Name,
		"type":  b.kind(),
		"state": "up",
		"bridge": map[string]any{
			"options": map[string]any{"stp": map[string]any{"enabled": false}},
			"port":    []any{port},
		},
	}
	if !b.OVS {
		bridge["ipv4"] = map[string]any{"enabled": false}
		bridge["ipv6"] = map[string]any{"enabled": false}
	}
	return map[string]any{"interfaces": append(ifaces, bridge)}
}

// uplinkVLAN is the NMState port vlan configuration of b's uplink (the same
// schema for linux-bridge and ovs-bridge ports: nmstate
// ifaces/bridge_vlan.rs, BridgePortVlanConfig): an access port of the
// native VLAN, or with VLANs a trunk of exactly those plus the native VLAN
// untagged (enable-native).
func uplinkVLAN(b Bridge) map[string]any {
	native := b.NativeVLAN
	if native == 0 {
		native = 1
	}
	if len(b.VLANs) == 0 {
		return map[string]any{"mode": "access", "tag": native}
	}
	tags := make([]any, 0, len(b.VLANs))
	for _, r := range b.VLANs {
		if r.Min == r.Max {
			tags = append(tags, map[string]any{"id": r.Min})
		} else {
			tags = append(tags, map[string]any{"id-range": map[string]any{"min": r.Min, "max": r.Max}})
		}
	}
	return map[string]any{"mode": "trunk", "enable-native": true, "tag": native, "trunk-tags": tags}
}

// BuildPolicy returns the NodeNetworkConfigurationPolicy PolicyName(id, b.Name)
// for b, controlled by owner (a cluster-scoped object that declares the
// bridge; it must carry its TypeMeta), so deleting owner deletes the policy.
// It carries id's managed-by label, id.Key(KeyBridge) and the annotation
// id.Key(KeyBridgeState). With absent, the policy removes the bridge (and
// bond) from the nodes instead.
func BuildPolicy(id apply.Identity, owner client.Object, b Bridge, absent bool) *nmstatev1.NodeNetworkConfigurationPolicy {
	raw, _ := json.Marshal(desiredState(b, absent)) // maps of plain values always marshal
	var sel map[string]string
	if len(b.NodeSelector) > 0 {
		sel = maps.Clone(b.NodeSelector)
	}
	state := "up"
	if absent {
		state = "absent"
	}
	return &nmstatev1.NodeNetworkConfigurationPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            PolicyName(id, b.Name),
			Labels:          policyLabels(id, b.Name),
			Annotations:     map[string]string{id.Key(KeyBridgeState): state},
			OwnerReferences: []metav1.OwnerReference{apply.ControllerRef(owner)},
		},
		Spec: shared.NodeNetworkConfigurationPolicySpec{
			NodeSelector: sel,
			DesiredState: shared.NewState(string(raw)),
		},
	}
}

func policyLabels(id apply.Identity, bridge string) map[string]string {
	l := id.ManagedByLabels()
	l[id.Key(KeyBridge)] = bridgeLabel(bridge)
	return l
}

// ReconcilePolicy applies b's policy for owner with Server-Side Apply under
// id (only when a field differs) and returns what NMState reports about it.
// It reports a failure as an *apply.Failure (Subject b.Name) wrapping the
// cause, as Reconcile does a NIC's (see policyFailure): a policy of that
// name that owner does not control is never touched (an
// *apply.ConflictError: stalled ReasonNameConflict, Field "name"; or,
// when it belongs to a deleted owner of the same name, waiting
// ReasonPredecessor); a cluster without kubernetes-nmstate is stalled
// ReasonNMStateNotInstalled (wrapping ErrNMStateNotInstalled); a Bridge
// failing Validate is stalled ReasonInvalidBridge; an API error is
// transient ReasonApplyFailed. An invalid id or an owner of a kind the
// client's scheme lacks (the caller's bug) is returned as it is.
func ReconcilePolicy(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, b Bridge) (BridgeObservation, error) {
	if err := id.Validate(); err != nil {
		return BridgeObservation{Bridge: b.Name}, err
	}
	if err := b.Validate(); err != nil {
		return BridgeObservation{Bridge: b.Name}, apply.Stalled(ReasonInvalidBridge, err).On(b.Name, "")
	}
	owner, err := apply.OwnerWithKind(owner, c.Scheme())
	if err != nil {
		return BridgeObservation{Bridge: b.Name}, err
	}
	p := BuildPolicy(id, owner, b, false)
	if _, err := apply.Apply(ctx, c, p, id); err != nil {
		return BridgeObservation{Bridge: b.Name, Policy: p.Name}, policyFailure(b, fmt.Errorf("%s %s: %w", errApplyPolicy, p.Name, noMatch(err)))
	}
	o := ObservePolicy(p)
	o.Bridge = b.Name
	return o, nil
}

// RemovePolicy takes b off the nodes and then deletes its policy, one step
// per call: first the policy is re-applied with state: absent; once NMState
// reports that generation Available on every node (its enactments'
// policyGeneration, or the policy's own conditions where enactments are not
// served; the enactment of a node that no longer exists is not waited for,
// so c must be able to get Nodes), the policy is deleted. It returns true
// when nothing is left. A
// policy owner does not control is left alone (true, nothing to remove); a
// Degraded removal is returned in the observation and retried by the caller.
// A failure is an *apply.Failure (Subject b.Name), as ReconcilePolicy's: an
// API error is transient ReasonApplyFailed (a cluster without
// kubernetes-nmstate has nothing to remove: true). An invalid id or an
// owner of a kind the client's scheme lacks is returned as it is.
func RemovePolicy(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, b Bridge) (bool, BridgeObservation, error) {
	if err := id.Validate(); err != nil {
		return false, BridgeObservation{}, err
	}
	owner, err := apply.OwnerWithKind(owner, c.Scheme())
	if err != nil {
		return false, BridgeObservation{}, err
	}
	name := PolicyName(id, b.Name)
	obs := BridgeObservation{Bridge: b.Name, Policy: name}
	live := &nmstatev1.NodeNetworkConfigurationPolicy{}
	switch err := c.Get(ctx, client.ObjectKey{Name: name}, live); {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return true, obs, nil
	case err != nil:
		return false, obs, policyFailure(b, fmt.Errorf("%s %s: %w", errGetPolicy, name, err))
	}
	if metav1.GetControllerOfNoCopy(live) == nil || metav1.GetControllerOfNoCopy(live).UID != owner.GetUID() {
		return true, obs, nil
	}
	if live.Annotations[id.Key(KeyBridgeState)] != "absent" {
		p := BuildPolicy(id, owner, b, true)
		if _, err := apply.Apply(ctx, c, p, id); err != nil {
			return false, obs, policyFailure(b, fmt.Errorf("%s %s: %w", errApplyPolicy, name, noMatch(err)))
		}
		obs = ObservePolicy(p)
		obs.Bridge, obs.Available, obs.Reason, obs.Message = b.Name, false, ReasonPolicyPending, "removing the bridge from the nodes"
		return false, obs, nil
	}
	obs = ObservePolicy(live)
	obs.Bridge = b.Name
	done, err := enacted(ctx, c, live)
	if err != nil {
		return false, obs, policyFailure(b, err)
	}
	if !done || !obs.Available {
		if obs.Reason == "" || obs.Available {
			obs.Available, obs.Reason, obs.Message = false, ReasonPolicyPending, "waiting for NMState to remove the bridge from every node"
		}
		return false, obs, nil
	}
	if err := c.Delete(ctx, live, client.Preconditions{UID: &live.UID, ResourceVersion: &live.ResourceVersion}); err != nil && !apierrors.IsNotFound(err) {
		return false, obs, policyFailure(b, fmt.Errorf("%s %s: %w", errDeletePolicy, name, err))
	}
	return true, obs, nil
}

// policyFailure is the *apply.Failure of bridge b's policy for err, sorted
// as Reconcile sorts a NIC's NAD: stalled ReasonNMStateNotInstalled for
// ErrNMStateNotInstalled; for an *apply.ConflictError (apply.ConflictFailure)
// waiting ReasonPredecessor, else stalled ReasonNameConflict on Field
// "name" (the bridge's name makes the policy's); transient
// ReasonApplyFailed for anything else (an API error).
func policyFailure(b Bridge, err error) *apply.Failure {
	if errors.Is(err, ErrNMStateNotInstalled) {
		return apply.Stalled(ReasonNMStateNotInstalled, err).On(b.Name, "")
	}
	if f := apply.ConflictFailure(err); f != nil {
		field := "name"
		if f.Reason == ReasonPredecessor {
			field = ""
		}
		return f.On(b.Name, field)
	}
	return apply.Transient(ReasonApplyFailed, err).On(b.Name, "")
}

// enacted reports whether every NodeNetworkConfigurationEnactment of p has
// reached p's generation and is Available. kubernetes-nmstate writes one
// enactment per node (label nmstate.io/policy) with the policy generation it
// applied in status.policyGeneration. Where enactments are not served it
// reports true and the policy's conditions decide.
func enacted(ctx context.Context, c client.Reader, p *nmstatev1.NodeNetworkConfigurationPolicy) (bool, error) {
	list := &nmstatev1beta1.NodeNetworkConfigurationEnactmentList{}
	if err := c.List(ctx, list, client.MatchingLabels{LabelEnactmentPolicy: p.Name}); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("%s for %s: %w", errListEnactments, p.Name, err)
	}
	for _, e := range list.Items {
		// The enactment of a node that is gone waits for nothing: it
		// stays at the generation the node last applied (its owner is
		// the policy, not the node), and no node will enact the removal.
		if node := e.Labels[LabelEnactmentNode]; node != "" {
			if err := c.Get(ctx, client.ObjectKey{Name: node}, &corev1.Node{}); apierrors.IsNotFound(err) {
				continue
			} else if err != nil {
				return false, fmt.Errorf("%s for %s: %w", errListEnactments, p.Name, err)
			}
		}
		if e.Status.PolicyGeneration < p.Generation {
			return false, nil
		}
		av := e.Status.Conditions.Find(shared.NodeNetworkConfigurationEnactmentConditionAvailable)
		if av == nil || av.Status != corev1.ConditionTrue {
			return false, nil
		}
	}
	return true, nil
}

func noMatch(err error) error {
	if meta.IsNoMatchError(err) {
		return ErrNMStateNotInstalled
	}
	return err
}

// IsNMStateMissing reports whether err says kubernetes-nmstate is not installed.
func IsNMStateMissing(err error) bool { return errors.Is(err, ErrNMStateNotInstalled) }

// BridgeObservation is what the cluster says about one node bridge policy.
type BridgeObservation struct {
	// Bridge is the bridge name; Policy the NNCP name.
	Bridge string
	Policy string
	// Available, Progressing and Degraded mirror the NNCP conditions.
	Available   bool
	Progressing bool
	Degraded    bool
	// Reason and Message come from the most relevant condition
	// (Degraded, else Available, else Progressing).
	Reason  string
	Message string
}

// ObservePolicy reads the status conditions of a policy.
func ObservePolicy(p *nmstatev1.NodeNetworkConfigurationPolicy) BridgeObservation {
	o := BridgeObservation{Policy: p.Name}
	conds := p.Status.Conditions
	get := func(t shared.ConditionType) *shared.Condition { return conds.Find(t) }
	isTrue := func(c *shared.Condition) bool { return c != nil && c.Status == corev1.ConditionTrue }
	av := get(shared.NodeNetworkConfigurationPolicyConditionAvailable)
	pr := get(shared.NodeNetworkConfigurationPolicyConditionProgressing)
	dg := get(shared.NodeNetworkConfigurationPolicyConditionDegraded)
	o.Available, o.Progressing, o.Degraded = isTrue(av), isTrue(pr), isTrue(dg)
	for _, c := range []*shared.Condition{dg, av, pr} {
		if isTrue(c) {
			o.Reason, o.Message = string(c.Reason), c.Message
			return o
		}
	}
	o.Reason, o.Message = ReasonPolicyPending, "NMState has not reported on the policy yet"
	return o
}
