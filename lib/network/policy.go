package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PolicyPrefix starts every policy name.
const PolicyPrefix = "wukong-br-"

// Bridge is a node bridge the lib configures with NMState.
type Bridge struct {
	// Name is the bridge interface name on the nodes.
	Name string
	// PhysicalInterface is the uplink port enslaved to the bridge.
	PhysicalInterface string
	// OVS selects an ovs-bridge instead of a linux-bridge.
	OVS bool
	// Trunk makes the uplink a VLAN trunk (2-4094, native VLAN 1 untagged)
	// on a linux-bridge; OVS ports trunk every VLAN by default.
	Trunk bool
	// NodeSelector limits the policy to matching nodes.
	NodeSelector map[string]string
}

// BridgeFor returns the bridge an Attachment needs, if any: bridge and ovs
// NICs with both Bridge and PhysicalInterface set.
func BridgeFor(a Attachment) (Bridge, bool) {
	if (a.Type != TypeBridge && a.Type != TypeOVS) || a.Bridge == "" || a.PhysicalInterface == "" {
		return Bridge{}, false
	}
	return Bridge{
		Name:              a.Bridge,
		PhysicalInterface: a.PhysicalInterface,
		OVS:               a.Type == TypeOVS,
		Trunk:             a.VLAN != 0 && a.Type == TypeBridge,
		NodeSelector:      a.BridgeNodeSelector,
	}, true
}

func (b Bridge) kind() string {
	if b.OVS {
		return "ovs-bridge"
	}
	return "linux-bridge"
}

// PolicyName is the deterministic name of the policy for bridge:
// `wukong-br-<bridge>`, lower-cased; characters not allowed in a name are
// replaced and a short hash is appended so distinct bridges never collide.
func PolicyName(bridge string) string { return PolicyPrefix + bridgeLabel(bridge) }

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

// PolicySelector selects every policy the lib manages (for watches).
func PolicySelector() labels.Selector { return managedPolicySelector().Selector }

func managedPolicySelector() client.MatchingLabelsSelector {
	req, _ := labels.NewRequirement(LabelBridge, selection.Exists, nil) // constant inputs: never fails
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue}).Add(*req)
	return client.MatchingLabelsSelector{Selector: sel}
}

// BuildPolicy returns the NodeNetworkConfigurationPolicy for b, without
// holders. The uplink is the bridge's only port; STP is off.
func BuildPolicy(b Bridge) *nmstatev1.NodeNetworkConfigurationPolicy {
	port := map[string]any{"name": b.PhysicalInterface}
	if b.Trunk && !b.OVS {
		port["vlan"] = map[string]any{
			"mode":          "trunk",
			"enable-native": true,
			"tag":           1,
			"trunk-tags":    []any{map[string]any{"id-range": map[string]any{"min": 2, "max": 4094}}},
		}
	}
	iface := map[string]any{
		"name":  b.Name,
		"type":  b.kind(),
		"state": "up",
		"bridge": map[string]any{
			"options": map[string]any{"stp": map[string]any{"enabled": false}},
			"port":    []any{port},
		},
	}
	if !b.OVS {
		iface["ipv4"] = map[string]any{"enabled": false}
		iface["ipv6"] = map[string]any{"enabled": false}
	}
	raw, _ := json.Marshal(map[string]any{"interfaces": []any{iface}}) // maps of plain values always marshal
	var sel map[string]string
	if len(b.NodeSelector) > 0 {
		sel = maps.Clone(b.NodeSelector)
	}
	return &nmstatev1.NodeNetworkConfigurationPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   PolicyName(b.Name),
			Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelBridge: bridgeLabel(b.Name)},
			Annotations: map[string]string{
				AnnotationUplink:     b.PhysicalInterface,
				AnnotationBridgeType: b.kind(),
				AnnotationTrunk:      fmt.Sprint(b.Trunk && !b.OVS),
			},
		},
		Spec: shared.NodeNetworkConfigurationPolicySpec{
			NodeSelector: sel,
			DesiredState: shared.NewState(string(raw)),
		},
	}
}

// Holders returns the owners recorded on a policy, sorted. Use it to map
// policy events to owner reconcile requests.
func Holders(policy client.Object) []types.NamespacedName {
	var out []types.NamespacedName
	for _, h := range holderSet(policy) {
		ns, name, found := strings.Cut(h, "/")
		if !found {
			name, ns = ns, ""
		}
		out = append(out, types.NamespacedName{Namespace: ns, Name: name})
	}
	return out
}

func holderSet(o client.Object) []string {
	v := o.GetAnnotations()[AnnotationHolders]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func setHolders(o client.Object, holders []string) {
	sort.Strings(holders)
	holders = slices.Compact(holders)
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationHolders] = strings.Join(holders, ",")
	o.SetAnnotations(a)
}

func holderKey(owner client.Object) string {
	if owner.GetNamespace() == "" {
		return owner.GetName()
	}
	return owner.GetNamespace() + "/" + owner.GetName()
}

func isManaged(o client.Object) bool { return o.GetLabels()[LabelManagedBy] == ManagedByValue }

// backoff for optimistic-concurrency retries: holders of one policy may
// reconcile at the same time.
var backoff = wait.Backoff{Steps: 12, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5}

func noMatch(err error) error {
	if meta.IsNoMatchError(err) {
		return ErrNMStateNotInstalled
	}
	return err
}

// ensurePolicy records holder on the policy of b, creating it when missing
// and updating its spec when needed, with Get/Update and resourceVersion
// preconditions retried on conflict. It returns the live policy.
func ensurePolicy(ctx context.Context, c client.Client, holder string, b Bridge) (*nmstatev1.NodeNetworkConfigurationPolicy, error) {
	name := PolicyName(b.Name)
	var result *nmstatev1.NodeNetworkConfigurationPolicy
	err := retry.OnError(backoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		live := &nmstatev1.NodeNetworkConfigurationPolicy{}
		err := c.Get(ctx, client.ObjectKey{Name: name}, live)
		if apierrors.IsNotFound(err) {
			desired := BuildPolicy(b)
			setHolders(desired, []string{holder})
			if err := c.Create(ctx, desired); err != nil {
				return noMatch(err)
			}
			result = desired
			return nil
		}
		if err != nil {
			return noMatch(err)
		}
		if !isManaged(live) {
			return &ForeignPolicyError{Name: name}
		}
		holders := holderSet(live)
		others := slices.DeleteFunc(slices.Clone(holders), func(h string) bool { return h == holder })
		want := b
		if len(others) > 0 {
			ann := live.Annotations
			conflict := func(field, have, want string) error {
				return &BridgeConflictError{Bridge: b.Name, Policy: name, Field: field, Have: have, Want: want}
			}
			if ann[AnnotationUplink] != b.PhysicalInterface {
				return conflict("physicalInterface", ann[AnnotationUplink], b.PhysicalInterface)
			}
			if ann[AnnotationBridgeType] != b.kind() {
				return conflict("type", ann[AnnotationBridgeType], b.kind())
			}
			if !maps.Equal(live.Spec.NodeSelector, b.NodeSelector) {
				return conflict("bridgeNodeSelector", labels.Set(live.Spec.NodeSelector).String(), labels.Set(b.NodeSelector).String())
			}
			// A trunk is never downgraded while other holders remain: one
			// of them may carry VLANs.
			want.Trunk = want.Trunk || ann[AnnotationTrunk] == "true"
		}
		desired := BuildPolicy(want)
		updated := live.DeepCopy()
		if updated.Labels == nil {
			updated.Labels = map[string]string{}
		}
		maps.Copy(updated.Labels, desired.Labels)
		if updated.Annotations == nil {
			updated.Annotations = map[string]string{}
		}
		maps.Copy(updated.Annotations, desired.Annotations)
		setHolders(updated, append(holders, holder))
		updated.Spec.NodeSelector = desired.Spec.NodeSelector
		updated.Spec.DesiredState = desired.Spec.DesiredState
		if reflect.DeepEqual(live.Labels, updated.Labels) && reflect.DeepEqual(live.Annotations, updated.Annotations) &&
			maps.Equal(live.Spec.NodeSelector, updated.Spec.NodeSelector) && sameState(live.Spec.DesiredState, desired.Spec.DesiredState) {
			result = live
			return nil
		}
		if err := c.Update(ctx, updated); err != nil {
			return noMatch(err)
		}
		result = updated
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

func sameState(a, b shared.State) bool {
	var x, y any
	ja, errA := a.MarshalJSON()
	jb, errB := b.MarshalJSON()
	if errA != nil || errB != nil || json.Unmarshal(ja, &x) != nil || json.Unmarshal(jb, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Release removes owner from every policy it holds and deletes a policy when
// no holder is left. Policies not managed by the lib are never touched. A
// cluster without NMState has nothing to release.
func Release(ctx context.Context, c client.Client, owner client.Object) error {
	return releaseExcept(ctx, c, holderKey(owner), nil)
}

// releaseExcept releases holder from every managed policy not in keep.
func releaseExcept(ctx context.Context, c client.Client, holder string, keep map[string]bool) error {
	list := &nmstatev1.NodeNetworkConfigurationPolicyList{}
	if err := c.List(ctx, list, managedPolicySelector()); err != nil {
		if meta.IsNoMatchError(err) {
			return nil
		}
		return fmt.Errorf("%s: %w", errListPolicies, err)
	}
	var errs []error
	for i := range list.Items {
		p := &list.Items[i]
		if keep[p.Name] || !slices.Contains(holderSet(p), holder) {
			continue
		}
		if err := releasePolicy(ctx, c, p.Name, holder); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", errReleasePol, p.Name, err))
		}
	}
	return errors.Join(errs...)
}

func releasePolicy(ctx context.Context, c client.Client, name, holder string) error {
	return retry.RetryOnConflict(backoff, func() error {
		live := &nmstatev1.NodeNetworkConfigurationPolicy{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, live); err != nil {
			return client.IgnoreNotFound(err)
		}
		if !isManaged(live) {
			return nil
		}
		holders := holderSet(live)
		if !slices.Contains(holders, holder) {
			return nil
		}
		holders = slices.DeleteFunc(holders, func(h string) bool { return h == holder })
		if len(holders) == 0 {
			// The precondition makes a concurrent new holder win: the
			// delete then fails with a conflict and is retried.
			return client.IgnoreNotFound(c.Delete(ctx, live, client.Preconditions{
				UID: &live.UID, ResourceVersion: &live.ResourceVersion,
			}))
		}
		setHolders(live, holders)
		return c.Update(ctx, live)
	})
}

// BridgeObservation is what the cluster says about one node bridge policy.
type BridgeObservation struct {
	// Bridge is the bridge name; Policy the NNCP name.
	Bridge string
	Policy string
	// Holders are the `namespace/name` keys recorded on the policy.
	Holders []string
	// Available, Progressing and Degraded mirror the NNCP conditions.
	Available   bool
	Progressing bool
	Degraded    bool
	// Reason and Message come from the most relevant condition
	// (Degraded, else Available, else Progressing) or the lib's error.
	Reason  string
	Message string
	// Error is set when the policy could not be ensured.
	Error error
}

// ObservePolicy reads the status conditions of a policy.
func ObservePolicy(p *nmstatev1.NodeNetworkConfigurationPolicy) BridgeObservation {
	o := BridgeObservation{Policy: p.Name, Holders: holderSet(p)}
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
