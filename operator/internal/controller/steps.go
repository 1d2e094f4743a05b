package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
	"github.com/novasphere/wukong/operator/internal/nodenet"
	"github.com/novasphere/wukong/operator/mapping"
)

// step is one stage of a reconcile pass. It records what it saw in the scope
// and returns an error only for what is nobody's fault (it is retried);
// problems the user must fix go to scope.problems.
type step func(ctx context.Context, s *scope) error

// reconcileNetworks checks the NICs' node bridges against the
// administrators' NodeBridge declarations, applies one
// NetworkAttachmentDefinition per NIC without nadName (never over an object
// it did not create) and checks user-named NADs exist in this namespace (or
// an allowed one). It feeds NetworksConfigured; an undeclared or
// not-allowed bridge, a Degraded bridge, a refused namespace, a missing NAD,
// a taken name or a missing Multus become problems (Stalled) naming
// spec.networks[i]. It never returns early: the other steps still run so
// status shows everything that is wrong at once.
func (r *WukongReconciler) reconcileNetworks(ctx context.Context, s *scope) error {
	if err := r.resolveBridges(ctx, s); err != nil {
		return err
	}
	for _, g := range s.bridges {
		// Only the tenant's own facts go into its status: the NodeBridge's
		// conditions carry node-level details (NMState's errors, node
		// counts) for the administrator.
		field := fmt.Sprintf("spec.networks[%d].%s", g.NIC, nodenet.RefOf(s.w.Spec.Networks[g.NIC]).Field)
		ready, stalled, msg := nodenet.Ready(g.Decl)
		switch {
		case stalled == v1alpha1.ReasonBridgeDegraded:
			s.addProblem(problem{Condition: v1alpha1.NetworksConfiguredCondition, Reason: v1alpha1.ReasonBridgeDegraded, Field: field,
				Message: fmt.Sprintf("node bridge %s failed on the nodes (NMState reports it Degraded): an administrator must fix NodeBridge %s", g.Decl.Name, g.Decl.Name)})
		case stalled != "":
			// The operator's own account (a policy name taken, NMState not
			// installed), not NMState's node-level text.
			s.addProblem(problem{Condition: v1alpha1.NetworksConfiguredCondition, Reason: stalled, Field: field,
				Message: fmt.Sprintf("node bridge %s cannot be configured until an administrator fixes NodeBridge %s: %s", g.Decl.Name, g.Decl.Name, msg)})
		case !ready && s.bridgePending == "":
			s.bridgePending = fmt.Sprintf("NodeBridge %s is not ready on the nodes yet", g.Decl.Name)
		}
	}
	granted := map[int]nodenet.Grant{}
	for _, g := range s.bridges {
		granted[g.NIC] = g
	}
	var atts []network.Attachment
	for i, a := range mapping.Attachments(s.w) {
		if s.bridgeBlocked[i] {
			continue
		}
		if g, ok := granted[i]; ok {
			applyGrant(&a, g)
		}
		atts = append(atts, a)
	}
	kept, err := r.keptMACs(ctx, s)
	if err != nil {
		return err
	}
	obs, err := network.Reconcile(ctx, r.Client, identity.Wukong, s.w, atts, network.WithGlobalNamespaces(r.GlobalNADNamespaces...),
		network.WithClusterID(r.ClusterID), network.WithKeptMACs(kept))
	s.net, s.netDone = obs, true
	var transient []error
	failed := false
	for _, n := range obs.NICs {
		if n.Error == nil {
			continue
		}
		failed = true
		if e := s.classify(n.Error, fromNetwork); e != nil {
			transient = append(transient, e)
		}
	}
	if !failed {
		return err // not about one NIC (the owner's kind): retried
	}
	return errors.Join(transient...)
}

// applyGrant puts what the administrator's declaration decides into a
// NIC's attachment: the node bridge, macvtap lower device or SR-IOV
// resource it grants, and the VLAN of the NIC's port (its vlanId, or the
// declaration's native VLAN for an untagged NIC, so the port is an access
// port the guest cannot tag past).
func applyGrant(a *network.Attachment, g nodenet.Grant) {
	d := g.Decl
	a.VLAN = int(g.VLAN)
	switch nodenet.Type(d) {
	case v1alpha1.BridgeTypeLinux, v1alpha1.BridgeTypeOVS:
		a.Bridge, a.PhysicalInterface = d.Name, ""
		if d.Spec.BridgeMarker {
			a.ResourceName = bridgeMarkerResource + d.Name
		}
	case v1alpha1.BridgeTypeMacvtap:
		a.PhysicalInterface, a.ResourceName = d.Name, ""
	case v1alpha1.BridgeTypeSRIOV:
		a.ResourceName = d.Spec.ResourceName
	}
}

// reconcileDisks applies one PVC (blank disk) or CDI DataVolume (image disk)
// per disk (but those whose image source checkImageSources refused) and
// observes binding, import progress and expansion. It feeds
// VolumesBound; a missing StorageClass, a refused shrink or expansion, a
// missing CDI and a failed import become problems naming spec.disks[i].
//
// A disk with cloneFrom is written once its source is resolved
// (cloneSources: a missing source or a too small disk is a problem, a
// source not ready yet a wait shown as the disk's message); a clone waiting
// for its source Wukong to stop says so (cloneSourcesInUse).
func (r *WukongReconciler) reconcileDisks(ctx context.Context, s *scope) error {
	shared, err := r.claimsShared(ctx, s)
	if err != nil {
		return err
	}
	clones, waits, err := r.cloneSources(ctx, s)
	if err != nil {
		return err
	}
	var disks []storage.Disk
	for _, d := range mapping.Disks(s.w) {
		if s.sourceRefused[d.Name] || shared[d.Name] { // checkImageSources, claimsShared: not written
			continue
		}
		if isClone(s.w, d.Name) {
			src, ok := clones[d.Name]
			if !ok { // a problem, or waiting: not written
				continue
			}
			d.Clone = src
		}
		disks = append(disks, d)
	}
	var opts []storage.Option
	if r.Cache != nil {
		// A disk whose class is missing and which has no claim yet costs no
		// API request: a Stalled pass re-reads nothing live.
		opts = append(opts, storage.WithCache(r.Cache))
	}
	if r.APIReader != nil {
		// The CA ConfigMaps and login Secrets disks name for their imports
		// are read one at a time from the API server: no informer on every
		// ConfigMap of the cluster.
		opts = append(opts, storage.WithReferenceReader(r.APIReader))
	}
	obs, err := storage.Reconcile(ctx, r.Client, identity.Wukong, s.w, disks, opts...)
	s.vols, s.volsDone = withCloneWaits(s.w, obs, waits), true
	for _, o := range obs {
		// A claim the user brought (claimName) carries no Wukong label, so
		// the label-filtered cache sends no event when it binds: look again.
		if o.Existing && o.Phase == storage.PhasePending {
			s.requeue(existingClaimPoll)
		}
	}
	for name, msg := range waits {
		s.noteCloneWait(name, msg)
	}
	// Every failure, what CDI reports without an API error included, comes
	// as an *apply.Failure naming its disk.
	rest := s.classify(err, fromStorage)
	if err := r.cloneSourcesInUse(ctx, s); err != nil {
		rest = errors.Join(rest, err)
	}
	return rest
}

// existingClaimPoll is how soon a pass looks again at a claim named by
// claimName that is not bound yet (one GET of that claim per pass).
const existingClaimPoll = 5 * time.Second

// withCloneWaits is obs plus a Pending observation, with the reason as its
// message, for each clone disk that waits for its source (not written),
// in spec order.
func withCloneWaits(w *v1alpha1.Wukong, obs []storage.Observation, waits map[string]string) []storage.Observation {
	if len(waits) == 0 {
		return obs
	}
	byName := map[string]storage.Observation{}
	for _, o := range obs {
		byName[o.Name] = o
	}
	for name, msg := range waits {
		byName[name] = storage.Observation{Name: name, ClaimName: storage.ClaimName(w.Name, name), DataVolume: true,
			Phase: storage.PhasePending, Message: msg, CloneWaiting: true}
	}
	out := make([]storage.Observation, 0, len(byName))
	for _, d := range w.Spec.Disks {
		if o, ok := byName[d.Name]; ok {
			out = append(out, o)
		}
	}
	return out
}

// claimsShared refuses each disk whose claimName another Wukong of the
// namespace names too and came first (created earlier; at the same second,
// the smaller name): two virtual machines must not write one claim
// (KubeVirt would attach it to both, a ReadWriteMany one at once). It is a
// problem (ClaimInUse, naming spec.disks[i].claimName; a change to the
// other Wukong, its deletion above all, wakes this one: stalledClaimUsers)
// and the disk is not read.
// It returns the refused disks by name. Wukongs are read from the cache,
// through the claimName index (indexClaimNames).
func (r *WukongReconciler) claimsShared(ctx context.Context, s *scope) (map[string]bool, error) {
	var refused map[string]bool
	for i, d := range s.w.Spec.Disks {
		if d.ClaimName == "" {
			continue
		}
		list := &v1alpha1.WukongList{}
		if err := r.Client.List(ctx, list, client.InNamespace(s.w.Namespace), client.MatchingFields{indexClaimNames: d.ClaimName}); err != nil {
			return nil, fmt.Errorf("cannot list the Wukongs naming claim %s: %w", d.ClaimName, err)
		}
		for j := range list.Items {
			o := &list.Items[j]
			if o.UID == s.w.UID || !cameFirst(o, s.w) {
				continue
			}
			s.addProblem(problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonClaimInUse,
				Field: fmt.Sprintf("spec.disks[%d].claimName", i), External: true,
				Message: fmt.Sprintf("PersistentVolumeClaim %s is the disk of Wukong %s (its claimName), named there first: "+
					"two virtual machines must not write one claim", d.ClaimName, o.Name)})
			if refused == nil {
				refused = map[string]bool{}
			}
			refused[d.Name] = true
			break
		}
	}
	return refused, nil
}

// cameFirst reports whether Wukong a was created before b (at the same
// second, whether its name is smaller).
func cameFirst(a, b *v1alpha1.Wukong) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// reconcileMachine applies the cloud-init Secret and the VirtualMachine once
// networks are configured and every disk can be consumed (bound, or waiting
// for its first consumer), then observes the VM and its instance. With
// problems recorded by earlier steps, or a missing SSH key Secret, it does
// not create or change the VM (nothing half-built) but still observes an
// existing one. A machine stuck starting gets the Warning Event that says
// why (observeCause); a launcher pod the namespace refuses is a problem
// (Stalled, naming spec.memory or spec.cpu when a quota or LimitRange
// refuses them). Feeds Ready, RestartRequired and the phase.
func (r *WukongReconciler) reconcileMachine(ctx context.Context, s *scope) error {
	keys, err := r.sshKeys(ctx, s)
	if err != nil {
		return err
	}
	password, err := r.password(ctx, s)
	if err != nil {
		return err
	}
	if err := r.pullSecret(ctx, s); err != nil {
		return err
	}
	if reason := r.machineBlocked(s); reason != "" {
		s.waiting = reason
		err := r.observeMachine(ctx, s)
		// A restore deletes the claims first: the disks wait, and the
		// Wukong says why (restore.go).
		s.restoring = s.vm.RestoreInProgress()
		return err
	}
	live, err := r.liveVM(ctx, s)
	if err != nil {
		return err
	}
	if live != nil && live.Status.RestoreInProgress != nil {
		// KubeVirt is restoring the disks and then the VM's spec: applying
		// now would undo it (see restore.go).
		s.restoring = *live.Status.RestoreInProgress
		s.waiting = "KubeVirt is restoring it from a snapshot (VirtualMachineRestore " + s.restoring + ")"
		return r.observeMachine(ctx, s)
	}
	m, err := mapping.Machine(s.w, s.net.NICs, s.vols, keys)
	if err != nil {
		var rsErr *mapping.RunStrategyError
		if errors.As(err, &rsErr) {
			s.addProblem(problem{Condition: v1alpha1.ReadyCondition, Reason: v1alpha1.ReasonInvalidSpec, Field: "spec." + rsErr.Field, Message: rsErr.Error()})
			return r.observeMachine(ctx, s)
		}
		return err
	}
	r.withEvictionDefault(&m)
	if err := r.restrictInstancetypes(ctx, s.w.Namespace, &m); err != nil {
		return err
	}
	keepRestoredClaimVolumes(&m, live)
	if u := m.CloudInit.User; u != nil && password != nil {
		u.Password, u.PasswordHash = password.Plain, password.Hash
	}
	if len(s.bridgeNodeSelector) > 0 {
		// The declarations' selectors win on a key both name: a tenant
		// cannot place the VM where the administrator did not declare the
		// bridge (bridge CNI would make an unmanaged one there) or the
		// interface or pool (which may be something else on those nodes).
		sel := maps.Clone(m.NodeSelector)
		if sel == nil {
			sel = map[string]string{}
		}
		maps.Copy(sel, s.bridgeNodeSelector)
		m.NodeSelector = sel
	}
	obs, err := kubevirt.Reconcile(ctx, r.Client, identity.Wukong, s.w, m)
	if err != nil {
		rest := s.classify(err, fromKubeVirt)
		if f, ok := apply.AsFailure(err); ok && f.Reason == kubevirt.ReasonBindingNotRegistered {
			return r.observeMachine(ctx, s)
		}
		if rest != nil {
			return r.machineNotWritten(ctx, s, rest)
		}
		return nil
	}
	s.vm = obs
	r.liveEvents(s)
	// The namespace refusing the launcher pod (a ResourceQuota, a
	// LimitRange, Pod Security) heals only by a change: a problem.
	if err := s.classify(obs.LauncherRefusal(), fromKubeVirt); err != nil {
		return err
	}
	return r.observeCause(ctx, s)
}

// sshKeys reads spec.sshKeySecret: the lines of the Secret that parse as
// SSH public keys, when it carries the label v1alpha1.SSHAuthorizedKeysLabel
// "true". A missing Secret and one without the label are the same problem
// (the failures table's SSHKeySecretNotFound row: SecretNotFound, naming
// spec.sshKeySecret, one message), so the answer does not tell whether a
// Secret the user may not read exists. Lines that are not keys are not
// copied; their count goes in a Warning Event.
func (r *WukongReconciler) sshKeys(ctx context.Context, s *scope) ([]string, error) {
	if s.w.Spec.SSHKeySecret == "" {
		return nil, nil
	}
	keys, err := kubevirt.ReadSSHKeys(ctx, r.Client, s.w.Namespace, s.w.Spec.SSHKeySecret, v1alpha1.SSHAuthorizedKeysLabel)
	if err != nil {
		return nil, s.classify(err, fromKubeVirt)
	}
	if keys.Dropped > 0 && r.Recorder != nil {
		r.Recorder.Eventf(s.w, nil, corev1.EventTypeWarning, v1alpha1.ReasonSSHKeyLinesDropped, "ReadSSHKeys",
			"%d line(s) of Secret %s are not SSH public keys (authorized_keys format, one per line) and were not copied into the guest",
			keys.Dropped, s.w.Spec.SSHKeySecret)
	}
	return keys.Keys, nil
}

// password reads spec.cloudInitUser.passwordSecretRef (nil without one):
// the Secret must carry the label v1alpha1.CloudInitPasswordLabel "true".
// A missing Secret and one without the label are the same problem
// (SecretNotFound, naming spec.cloudInitUser.passwordSecretRef, one
// message); a labelled Secret without the key names .key (both rows of the
// failures table).
func (r *WukongReconciler) password(ctx context.Context, s *scope) (*kubevirt.Password, error) {
	u := s.w.Spec.CloudInitUser
	if u == nil || u.PasswordSecretRef == nil {
		return nil, nil
	}
	ref := u.PasswordSecretRef
	key := ref.Key
	if key == "" {
		key = "password" // the CRD's default, for objects written before it applied
	}
	pw, err := kubevirt.ReadPassword(ctx, r.Client, s.w.Namespace, ref.Name, key, v1alpha1.CloudInitPasswordLabel)
	if err != nil {
		return nil, s.classify(err, fromKubeVirt)
	}
	return &pw, nil
}

// machineBlocked says why the VM must not be created or changed now, or "".
func (r *WukongReconciler) machineBlocked(s *scope) string {
	if len(s.problems) > 0 {
		return "waiting for the problems above to be fixed"
	}
	if s.sourceBlocked {
		return "waiting for the image sources to be checked"
	}
	if s.predecessor != "" {
		s.requeue(apply.PredecessorRetry)
		return "waiting: " + s.predecessor
	}
	if s.bridgePending != "" {
		return "waiting: " + s.bridgePending
	}
	if !s.netDone || !s.volsDone {
		return "waiting for networks and volumes"
	}
	if !s.net.Configured() {
		return "waiting for networks to be configured"
	}
	for _, v := range s.vols {
		if !v.ConsumerCanStart() {
			if msg := s.cloneWaits[v.Name]; msg != "" {
				return msg
			}
			return fmt.Sprintf("waiting for disk %s (%s)", v.Name, v.Phase)
		}
	}
	return ""
}

// observeMachine reads an existing VM and VMI without changing them. A
// Stalled pass reads them from Cache when set (the VM Wukong made carries
// its label, and KubeVirt copies it onto the instance), so it does not ask
// the API server for a VM that does not exist, nor for the instance of a
// stopped one, each time it looks again.
func (r *WukongReconciler) observeMachine(ctx context.Context, s *scope) error {
	reader := client.Reader(r.Client)
	if r.Cache != nil && len(s.problems) > 0 {
		reader = r.Cache
	}
	obs, err := kubevirt.Get(ctx, reader, s.w.Namespace, s.w.Name)
	if errors.Is(err, kubevirt.ErrKubeVirtNotInstalled) {
		return nil
	}
	if err != nil {
		return err
	}
	s.vm = obs
	return r.observeCause(ctx, s)
}

// machineNotWritten: the VirtualMachine (or its cloud-init Secret) could
// not be written for a reason a retry may fix (KubeVirt's webhook
// unreachable while virt-api restarts: "failed calling webhook ...
// connection refused"; an API hiccup). What exists is observed as it is,
// so status keeps the phase, node, addresses and Ready it had, and
// Reconciling says that the change waits, quoting err (s.notWritten); err
// is returned, retried with backoff, so the change lands once the write
// passes.
func (r *WukongReconciler) machineNotWritten(ctx context.Context, s *scope, err error) error {
	s.notWritten = err
	if oerr := r.observeMachine(ctx, s); oerr != nil {
		return errors.Join(err, oerr)
	}
	return err
}
