package network

import (
	"context"
	"errors"
	"fmt"
	"maps"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/novasphere/wukong/lib/apply"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NICObservation is what Reconcile saw for one NIC.
type NICObservation struct {
	// Name is the NIC name.
	Name string
	// NADNamespace/NADName locate the NAD the NIC uses (Multus
	// networkName `NADNamespace/NADName`).
	NADNamespace string
	NADName      string
	// MAC is the stable MAC address for the NIC (see MAC).
	MAC string
	// UserProvided is true when the NAD was named by the user.
	UserProvided bool
	// Found is true when the NAD exists (created or already there).
	Found bool
	// Policy is the bridge policy the NIC needs, empty if none.
	Policy string
	// Error, Reason and Message are set when the NIC is not configured.
	Error   error
	Reason  string
	Message string
}

// NetworkName is the Multus network name for the KubeVirt spec.
func (n NICObservation) NetworkName() string { return n.NADNamespace + "/" + n.NADName }

// Observation is what Reconcile saw, in the order of the attachments and
// the bridges first needed by them.
type Observation struct {
	NICs    []NICObservation
	Bridges []BridgeObservation
}

// Configured reports whether every NIC has its NAD and every bridge policy
// is Available.
func (o Observation) Configured() bool {
	for _, n := range o.NICs {
		if !n.Found || n.Error != nil {
			return false
		}
	}
	for _, b := range o.Bridges {
		if b.Error != nil || !b.Available {
			return false
		}
	}
	return true
}

// Reconcile makes the cluster hold what atts need: one NAD per NIC without
// NADName (applied with lib/apply, so an unchanged call writes nothing), a
// shared bridge policy per bridge needing one with owner recorded as holder,
// and owner released from the policies it no longer needs. It reads
// user-named NADs without touching them. Errors of one NIC do not stop the
// others: they are returned joined and also recorded in the Observation.
func Reconcile(ctx context.Context, c client.Client, owner client.Object, atts []Attachment) (Observation, error) {
	var obs Observation
	owner, err := ownerWithKind(owner, c)
	if err != nil {
		return obs, err
	}
	holder := holderKey(owner)
	var errs []error
	fail := func(n *NICObservation, reason string, err error) {
		n.Error, n.Reason, n.Message = err, reason, err.Error()
		errs = append(errs, err)
	}

	// Bridges needed, merged across NICs of this owner; first NIC wins.
	type bridgeState struct {
		want Bridge
		err  error
	}
	bridges := map[string]*bridgeState{}
	nicBridge := make([]string, len(atts))

	for i, a := range atts {
		n := NICObservation{Name: a.Name, MAC: MAC(owner.GetNamespace(), owner.GetName(), a.Name)}
		if err := a.Validate(); err != nil {
			obs.NICs = append(obs.NICs, n)
			fail(&obs.NICs[i], ReasonInvalidAttachment, err)
			continue
		}
		if b, ok := BridgeFor(a); ok {
			n.Policy = PolicyName(b.Name)
			if st, seen := bridges[b.Name]; !seen {
				bridges[b.Name] = &bridgeState{want: b}
				nicBridge[i] = b.Name
			} else if err := sameBridge(st.want, b); err != nil {
				n.Policy = ""
				obs.NICs = append(obs.NICs, n)
				fail(&obs.NICs[i], ReasonBridgeConflict, err)
				continue
			} else {
				st.want.Trunk = st.want.Trunk || b.Trunk
				nicBridge[i] = b.Name
			}
		}
		n.applyNAD(ctx, c, owner, a)
		obs.NICs = append(obs.NICs, n)
		if n.Error != nil {
			errs = append(errs, n.Error)
		}
	}

	keep := map[string]bool{}
	for _, a := range atts {
		st := bridges[a.Bridge]
		if st == nil || keep[PolicyName(a.Bridge)] {
			continue
		}
		keep[PolicyName(a.Bridge)] = true
		bo := BridgeObservation{Bridge: st.want.Name, Policy: PolicyName(st.want.Name)}
		p, err := ensurePolicy(ctx, c, holder, st.want)
		if err != nil {
			st.err = fmt.Errorf("%s %s: %w", errApplyPolicy, bo.Policy, err)
			bo.Error, bo.Reason, bo.Message = st.err, policyReason(err), st.err.Error()
		} else {
			bo = ObservePolicy(p)
			bo.Bridge = st.want.Name
		}
		obs.Bridges = append(obs.Bridges, bo)
	}
	for i, name := range nicBridge {
		if st := bridges[name]; name != "" && st.err != nil {
			n := &obs.NICs[i]
			if n.Error == nil {
				fail(n, policyReason(st.err), fmt.Errorf("NIC %q: %w", n.Name, st.err))
			}
		}
	}

	if err := releaseExcept(ctx, c, holder, keep); err != nil {
		errs = append(errs, err)
	}
	return obs, errors.Join(errs...)
}

func (n *NICObservation) applyNAD(ctx context.Context, c client.Client, owner client.Object, a Attachment) {
	set := func(reason string, err error) { n.Error, n.Reason, n.Message = err, reason, err.Error() }
	if a.NADName != "" {
		n.UserProvided = true
		n.NADNamespace, n.NADName = ResolveNAD(owner.GetNamespace(), a.NADName)
		nad := &nadv1.NetworkAttachmentDefinition{}
		err := c.Get(ctx, client.ObjectKey{Namespace: n.NADNamespace, Name: n.NADName}, nad)
		switch {
		case err == nil:
			n.Found = true
		case apierrors.IsNotFound(err):
			set(ReasonNADNotFound, &NADNotFoundError{NIC: a.Name, Namespace: n.NADNamespace, Name: n.NADName})
		case meta.IsNoMatchError(err):
			set(ReasonMultusNotInstalled, fmt.Errorf("%s for NIC %q: %w", errGetNAD, a.Name, ErrMultusNotInstalled))
		default:
			set(ReasonApplyFailed, fmt.Errorf("%s for NIC %q: %w", errGetNAD, a.Name, err))
		}
		return
	}
	nad, err := BuildNAD(owner, a)
	if err != nil {
		set(ReasonInvalidAttachment, err)
		return
	}
	n.NADNamespace, n.NADName = nad.Namespace, nad.Name
	if _, err := apply.Apply(ctx, c, nad, FieldManager); err != nil {
		if meta.IsNoMatchError(err) {
			err = ErrMultusNotInstalled
			set(ReasonMultusNotInstalled, fmt.Errorf("%s for NIC %q: %w", errApplyNAD, a.Name, err))
			return
		}
		set(ReasonApplyFailed, fmt.Errorf("%s for NIC %q: %w", errApplyNAD, a.Name, err))
		return
	}
	n.Found = true
}

func sameBridge(have, want Bridge) error {
	conflict := func(field, h, w string) error {
		return &BridgeConflictError{Bridge: want.Name, Policy: PolicyName(want.Name), Field: field, Have: h, Want: w}
	}
	switch {
	case have.PhysicalInterface != want.PhysicalInterface:
		return conflict("physicalInterface", have.PhysicalInterface, want.PhysicalInterface)
	case have.OVS != want.OVS:
		return conflict("type", have.kind(), want.kind())
	case !maps.Equal(have.NodeSelector, want.NodeSelector):
		return conflict("bridgeNodeSelector", fmt.Sprint(have.NodeSelector), fmt.Sprint(want.NodeSelector))
	}
	return nil
}

func policyReason(err error) string {
	var foreign *ForeignPolicyError
	var conflict *BridgeConflictError
	switch {
	case errors.Is(err, ErrNMStateNotInstalled):
		return ReasonNMStateNotInstalled
	case errors.As(err, &foreign):
		return ReasonForeignPolicy
	case errors.As(err, &conflict):
		return ReasonBridgeConflict
	default:
		return ReasonApplyFailed
	}
}

// ownerWithKind returns owner with apiVersion/kind set, from c's scheme when
// the object lacks them.
func ownerWithKind(owner client.Object, c client.Client) (client.Object, error) {
	o, err := apply.OwnerWithKind(owner, c.Scheme())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errOwnerKind, err)
	}
	return o, nil
}
