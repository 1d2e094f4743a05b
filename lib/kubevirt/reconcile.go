package kubevirt

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// Reconcile validates m, applies the cloud-init Secret and then the
// VirtualMachine (Server-Side Apply under id, only when a desired field
// differs; labels and annotation keys from id), reads the VM and its VMI back (a missing VMI is normal)
// and returns what it saw. c's scheme must know owner's type and
// kubevirt.io/v1 (kubevirtv1.AddToScheme). A cluster without the KubeVirt
// CRDs yields an error wrapping ErrKubeVirtNotInstalled; invalid input an
// *InvalidInputError; a NIC whose binding plugin no KubeVirt CR registers a
// *BindingNotRegisteredError, before anything is written.
//
// spec.runStrategy follows RunStrategyToApply: m.RunStrategy when the VM is
// created or m.RunStrategy changed since the last apply, else the live VM's
// value, so power actions (virtctl start/stop) are kept. The live VM is read
// through c just before the apply; a power action landing between that read
// and the apply (microseconds) can still be overwritten.
//
// Every failure the caller must act on comes back as an *apply.Failure
// (Reason one of ReasonInvalidInput, ReasonBindingNotRegistered,
// ReasonKubeVirtNotInstalled, ReasonInstancetypeNotAllowed,
// ReasonInstancetypeNotFound, ReasonPreferenceNotFound,
// apply.ReasonNameConflict; stalled) wrapping
// the typed error; a VM or VMI of a deleted owner of the same name gives a
// waiting one (apply.ReasonPredecessor, RequeueAfter). Other errors are API failures,
// worth a retry.
func Reconcile(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, m Machine) (Observation, error) {
	obs, err := reconcileMachine(ctx, c, id, owner, m)
	return obs, classify(err)
}

// Reasons of the *apply.Failure errors Reconcile returns.
const (
	// ReasonInvalidInput: a Machine field (or the identity) is invalid;
	// Failure.Field names the Machine field.
	ReasonInvalidInput = "InvalidInput"
	// ReasonBindingNotRegistered: a NIC's binding plugin is not registered
	// in the KubeVirt CR; Failure.Subject names the NIC.
	ReasonBindingNotRegistered = "BindingNotRegistered"
	// ReasonKubeVirtNotInstalled: the VirtualMachine kind is not served.
	ReasonKubeVirtNotInstalled = "KubeVirtNotInstalled"
	// ReasonInstancetypeNotAllowed: Machine.Instancetype names a cluster
	// instance type outside AllowedClusterInstancetypes (an
	// *InstancetypeNotAllowedError); Failure.Field is "instancetype.name".
	ReasonInstancetypeNotAllowed = "InstancetypeNotAllowed"
	// ReasonInstancetypeNotFound: the instance type does not exist (a
	// *ReferenceNotFoundError); Failure.Field is "instancetype.name".
	ReasonInstancetypeNotFound = "InstancetypeNotFound"
	// ReasonPreferenceNotFound: the preference does not exist (a
	// *ReferenceNotFoundError); Failure.Field is "preference.name".
	ReasonPreferenceNotFound = "PreferenceNotFound"
)

// classify wraps err as an *apply.Failure when someone must act on it (or,
// for a predecessor's object, when waiting resolves it).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var (
		invalid       *InvalidInputError
		notRegistered *BindingNotRegisteredError
		notAllowed    *InstancetypeNotAllowedError
		notFound      *ReferenceNotFoundError
	)
	switch {
	case errors.As(err, &notAllowed):
		return apply.Stalled(ReasonInstancetypeNotAllowed, err).On("", "instancetype.name")
	case errors.As(err, &notFound) && notFound.Field == "preference":
		return apply.Stalled(ReasonPreferenceNotFound, err).On("", "preference.name")
	case errors.As(err, &notFound):
		return apply.Stalled(ReasonInstancetypeNotFound, err).On("", "instancetype.name")
	case errors.As(err, &invalid):
		return apply.Stalled(ReasonInvalidInput, err).On("", invalid.Field)
	case errors.Is(err, apply.ErrInvalidIdentity):
		return apply.Stalled(ReasonInvalidInput, err)
	case errors.As(err, &notRegistered):
		return apply.Stalled(ReasonBindingNotRegistered, err).On(notRegistered.NIC, "")
	case errors.Is(err, ErrKubeVirtNotInstalled):
		return apply.Stalled(ReasonKubeVirtNotInstalled, err)
	}
	var conflict *apply.ConflictError
	if errors.As(err, &conflict) {
		return apply.ConflictFailure(conflict)
	}
	return err
}

func reconcileMachine(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, m Machine) (Observation, error) {
	if err := id.Validate(); err != nil {
		return Observation{}, err
	}
	if err := m.Validate(); err != nil {
		return Observation{}, err
	}
	owner, err := apply.OwnerWithKind(owner, c.Scheme())
	if err != nil {
		return Observation{}, err
	}
	if err := checkBindings(ctx, c, m); err != nil {
		return Observation{}, err
	}
	instancetype, err := resolveReferences(ctx, c, owner.GetNamespace(), m)
	if err != nil {
		return Observation{}, err
	}

	secret, err := BuildCloudInitSecret(id, owner, m)
	if err != nil {
		return Observation{}, err
	}
	if _, err := apply.Apply(ctx, c, secret, id); err != nil {
		return Observation{}, fmt.Errorf("%s: %w", errApplySecret, err)
	}
	if m.CloudInit.PropagateSSHKeys {
		if _, err := apply.Apply(ctx, c, BuildSSHKeysSecret(id, owner, m), id); err != nil {
			return Observation{}, fmt.Errorf("%s: %w", errApplySSHKeysSecret, err)
		}
	}

	key := client.ObjectKey{Namespace: owner.GetNamespace(), Name: m.Name}
	if err := dropSizing(ctx, c, key, m); err != nil {
		return Observation{}, err
	}
	live, err := getVM(ctx, c, key)
	if err != nil {
		return Observation{}, err
	}
	before, err := getVMI(ctx, c, key)
	if err != nil {
		return Observation{}, err
	}
	if err := checkOrphanVMI(key, before); err != nil {
		return Observation{}, err
	}
	var lu LiveUpdates
	if running(before) {
		if lu, err = ReadLiveUpdates(ctx, c); err != nil {
			return Observation{}, err
		}
	}
	m, plan := PlanLive(m, live, before, lu)

	vm := BuildVM(id, owner, m)
	readVersion := keepPowerState(id, vm, live)
	if live != nil {
		// What the running instance booted with and KubeVirt cannot change
		// live stays (hotplug_cpu.go).
		keepRunningTopology(vm, live, before)
		keepRunningAccessCredentials(vm, live, before)
		rv, err := dropLegacyRequest(ctx, c, vm, live, readVersion)
		if err != nil {
			return Observation{}, err
		}
		if rv != "" {
			readVersion = rv
		}
	}
	res, err := apply.Apply(ctx, c, vm, id, apply.IfResourceVersion(readVersion))
	if err != nil {
		return Observation{}, wrapKubeVirt(errApplyVM, err)
	}

	// vm now holds the live VirtualMachine (apply.Apply returns it).
	vmi, err := getVMI(ctx, c, client.ObjectKeyFromObject(vm))
	if err != nil {
		return Observation{}, err
	}
	obs := Observe(vm, vmi)
	obs.plan = plan
	if res == apply.Updated {
		obs.requested = plan.Live
	}
	obs.size = resolveSize(m, instancetype, vm, vmi)
	return obs, nil
}

// getVM reads the VirtualMachine; nil when there is none.
func getVM(ctx context.Context, c client.Reader, key client.ObjectKey) (*kubevirtv1.VirtualMachine, error) {
	vm, err := apply.GetOptional(ctx, c, key, &kubevirtv1.VirtualMachine{})
	if err != nil {
		return nil, wrapKubeVirt(errApplyVM, err)
	}
	return vm, nil
}

// Get reads the VirtualMachine namespace/name and its instance without
// changing anything, for a caller that must not apply now. A missing VM
// gives an Observation whose Exists is false; a cluster without KubeVirt an
// error wrapping ErrKubeVirtNotInstalled.
func Get(ctx context.Context, c client.Reader, namespace, name string) (Observation, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	vm, err := apply.GetOptional(ctx, c, key, &kubevirtv1.VirtualMachine{})
	if err != nil {
		return Observation{}, wrapKubeVirt(errGetVM, err)
	}
	if vm == nil {
		return Observation{}, nil
	}
	vmi, err := getVMI(ctx, c, key)
	if err != nil {
		return Observation{}, err
	}
	return Observe(vm, vmi), nil
}

// checkOrphanVMI refuses to write a VirtualMachine over a standalone
// VirtualMachineInstance of the same name: KubeVirt's VM controller adopts
// an orphan VMI whose name matches (pkg/virt-controller/watch/vm.go, via a
// controller-ref manager), so the instance would then be stopped or deleted
// with a VM it was never part of. It takes the instance read (nil when
// none) and returns an *apply.ConflictError.
func checkOrphanVMI(key client.ObjectKey, vmi *kubevirtv1.VirtualMachineInstance) error {
	if vmi == nil {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(vmi)
	if ref != nil && ref.Kind == "VirtualMachine" && ref.Name == key.Name {
		return nil
	}
	return &apply.ConflictError{Kind: "VirtualMachineInstance", Namespace: key.Namespace, Name: key.Name, Controller: ref}
}

// getVMI reads the instance; nil when there is none (a stopped VM).
func getVMI(ctx context.Context, c client.Reader, key client.ObjectKey) (*kubevirtv1.VirtualMachineInstance, error) {
	vmi, err := apply.GetOptional(ctx, c, key, &kubevirtv1.VirtualMachineInstance{})
	if err != nil {
		return nil, wrapKubeVirt(errGetVMI, err)
	}
	return vmi, nil
}

func wrapKubeVirt(prefix string, err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("%s: %w: %w", prefix, ErrKubeVirtNotInstalled, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
