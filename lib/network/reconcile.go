package network

import (
	"context"
	"errors"
	"fmt"
	"slices"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// NICObservation is what Reconcile saw for one NIC.
type NICObservation struct {
	// Name is the NIC name.
	Name string
	// NADNamespace/NADName locate the NAD the NIC uses (Multus
	// networkName `NADNamespace/NADName`).
	NADNamespace string
	NADName      string
	// MAC is the stable MAC address for the NIC: the one WithKeptMACs
	// gives it, else ClusterMAC (MAC without WithClusterID).
	MAC string
	// UserProvided is true when the NAD was named by the user.
	UserProvided bool
	// Found is true when the NAD exists (created or already there).
	Found bool
	// CNIType is the NAD's main CNI plugin type (see CNIType): what the lib
	// wrote (CNITypeFor), or read from a user-named NAD; empty when unknown.
	CNIType string
	// Error, Reason and Message are set when the NIC is not configured.
	// Error is an *apply.Failure (Reason, Stalled, Subject = the NIC name,
	// Field = the Attachment field at fault) wrapping the typed error.
	Error   error
	Reason  string
	Message string
}

// NetworkName is the Multus network name for the KubeVirt spec.
func (n NICObservation) NetworkName() string { return n.NADNamespace + "/" + n.NADName }

// Observation is what Reconcile saw, one entry per attachment, in order.
type Observation struct {
	NICs []NICObservation
}

// Configured reports whether every NIC has its NAD.
func (o Observation) Configured() bool {
	for _, n := range o.NICs {
		if !n.Found || n.Error != nil {
			return false
		}
	}
	return true
}

// Option tunes Reconcile.
type Option func(*options)

type options struct {
	globalNamespaces []string
	clusterID        string            // WithClusterID
	kept             map[string]string // WithKeptMACs
}

// WithGlobalNamespaces allows NICs to name NADs in these namespaces besides
// the owner's own, like Multus' globalNamespaces under namespaceIsolation.
// Without it a NAD in another namespace is refused (NamespaceNotAllowedError).
func WithGlobalNamespaces(namespaces ...string) Option {
	return func(o *options) { o.globalNamespaces = append(o.globalNamespaces, namespaces...) }
}

// Reconcile makes the cluster hold what atts need: one NAD per NIC without
// NADName (applied with lib/apply under id, labelled id.OwnerLabels(owner)
// and id.Key(KeyNIC), so an unchanged call writes nothing, and a
// NAD of that name someone else created is never taken over: the NIC gets an
// *apply.ConflictError). It reads user-named NADs without touching them, and
// refuses those in another namespace unless allowed (WithGlobalNamespaces),
// before reading them, so the answer does not depend on whether they exist.
// It never configures nodes: node bridges are ReconcilePolicy's. Errors of
// one NIC do not stop the others: they are returned joined and also recorded
// in the Observation.
func Reconcile(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, atts []Attachment, opts ...Option) (Observation, error) {
	var obs Observation
	if err := id.Validate(); err != nil {
		return obs, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	owner, err := apply.OwnerWithKind(owner, c.Scheme())
	if err != nil {
		return obs, err
	}
	var errs []error
	for _, a := range atts {
		n := NICObservation{Name: a.Name, MAC: o.nicMAC(owner.GetNamespace(), owner.GetName(), a.Name)}
		if err := a.Validate(); err != nil {
			n.fail(ReasonInvalidAttachment, err)
		} else {
			n.applyNAD(ctx, c, id, owner, a, o)
		}
		obs.NICs = append(obs.NICs, n)
		if n.Error != nil {
			errs = append(errs, n.Error)
		}
	}
	return obs, errors.Join(errs...)
}

func (n *NICObservation) applyNAD(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, a Attachment, o options) {
	set := n.fail
	if a.NADName != "" {
		n.UserProvided = true
		n.NADNamespace, n.NADName = ResolveNAD(owner.GetNamespace(), a.NADName)
		if n.NADNamespace != owner.GetNamespace() && !slices.Contains(o.globalNamespaces, n.NADNamespace) {
			set(ReasonNamespaceNotAllowed, &NamespaceNotAllowedError{NIC: a.Name, Namespace: n.NADNamespace})
			return
		}
		nad := &nadv1.NetworkAttachmentDefinition{}
		err := c.Get(ctx, client.ObjectKey{Namespace: n.NADNamespace, Name: n.NADName}, nad)
		switch {
		case err == nil:
			n.Found = true
			n.observeUserCNI(nad.Spec.Config)
		case apierrors.IsNotFound(err):
			set(ReasonNADNotFound, &NADNotFoundError{NIC: a.Name, Namespace: n.NADNamespace, Name: n.NADName})
		case meta.IsNoMatchError(err):
			set(ReasonMultusNotInstalled, fmt.Errorf("%s for NIC %q: %w", errGetNAD, a.Name, ErrMultusNotInstalled))
		default:
			set(ReasonApplyFailed, fmt.Errorf("%s for NIC %q: %w", errGetNAD, a.Name, err))
		}
		return
	}
	nad, err := BuildNAD(id, owner, a)
	if err != nil {
		set(ReasonInvalidAttachment, err)
		return
	}
	n.NADNamespace, n.NADName, n.CNIType = nad.Namespace, nad.Name, CNITypeFor(a)
	if _, err := apply.Apply(ctx, c, nad, id); err != nil {
		var conflict *apply.ConflictError
		switch {
		case meta.IsNoMatchError(err):
			set(ReasonMultusNotInstalled, fmt.Errorf("%s for NIC %q: %w", errApplyNAD, a.Name, ErrMultusNotInstalled))
		case errors.As(err, &conflict) && conflict.Predecessor:
			set(ReasonPredecessor, fmt.Errorf("NIC %q: %w", a.Name, err))
		case errors.As(err, &conflict):
			set(ReasonNameConflict, fmt.Errorf("NIC %q: %w", a.Name, err))
		default:
			set(ReasonApplyFailed, fmt.Errorf("%s for NIC %q: %w", errApplyNAD, a.Name, err))
		}
		return
	}
	n.Found = true
}

// fail records err for the NIC as an *apply.Failure with reason: transient
// for ReasonApplyFailed, waiting apply.PredecessorRetry for
// ReasonPredecessor, stalled otherwise.
func (n *NICObservation) fail(reason string, err error) {
	f := apply.Stalled(reason, err)
	switch reason {
	case ReasonApplyFailed:
		f = apply.Transient(reason, err)
	case ReasonPredecessor:
		f = apply.Waiting(reason, apply.PredecessorRetry, err)
	}
	var invalid *InvalidAttachmentError
	var unsupported *UnsupportedCNIError
	field := ""
	switch {
	case errors.As(err, &invalid):
		field = invalid.Field
	case reason == ReasonNADNotFound || reason == ReasonNamespaceNotAllowed || errors.As(err, &unsupported):
		field = "nadName"
	case reason == ReasonNameConflict:
		field = "name"
	}
	n.Error, n.Reason, n.Message = f.On(n.Name, field), reason, err.Error()
}
