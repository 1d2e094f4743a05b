package controller

import (
	"errors"
	"fmt"
	"strings"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// source names the lib a failure comes from: each lib's reasons are its
// own (NameConflict is in all three, with another condition each).
type source int

const (
	fromNetwork source = iota
	fromStorage
	fromKubeVirt
)

// failureKey is a lib and one of the reasons of its *apply.Failure.
type failureKey struct {
	from   source
	reason string
}

// entry is the spec entry a failure is about: spec.networks[i] for
// lib/network and lib/kubevirt (the NIC its Subject names), spec.disks[i]
// for lib/storage; i is -1 when the failure names none.
type entry struct {
	w *v1alpha1.Wukong
	i int
}

// failureRow is how one lib failure shows on a Wukong: the condition it
// sets besides Stalled, Wukong's reason, the spec path at fault and the
// message (from the failure and its typed error), and External (see
// problem.External).
type failureRow struct {
	condition string
	reason    string
	field     func(e entry, f *apply.Failure) string
	message   func(e entry, f *apply.Failure) string
	external  bool
}

// failures is the one table that turns a stalled lib failure into a
// Wukong problem. Waiting failures (RequeueAfter, a deleted predecessor's
// child) and transient ones are not in it: classify waits or retries them.
// TestFailuresCoverEveryLibReason walks every reason constant of the libs
// through it.
var failures = map[failureKey]failureRow{
	// lib/network: one failure per NIC, Subject the NIC's name.
	{fromNetwork, network.ReasonNamespaceNotAllowed}: {
		condition: v1alpha1.NetworksConfiguredCondition, reason: v1alpha1.ReasonNamespaceNotAllowed, field: nicField,
		message: typed(func(e *network.NamespaceNotAllowedError) string {
			return fmt.Sprintf("NetworkAttachmentDefinitions in namespace %s may not be used from this namespace: use one in this namespace, or ask an administrator to allow namespace %s", e.Namespace, e.Namespace)
		})},
	{fromNetwork, network.ReasonNADNotFound}: {
		condition: v1alpha1.NetworksConfiguredCondition, reason: v1alpha1.ReasonNADNotFound, field: nicField, external: true,
		message: typed(func(e *network.NADNotFoundError) string {
			return fmt.Sprintf("NetworkAttachmentDefinition %s/%s not found", e.Namespace, e.Name)
		})},
	{fromNetwork, network.ReasonMultusNotInstalled}: {
		condition: v1alpha1.NetworksConfiguredCondition, reason: v1alpha1.ReasonNADNotFound, external: true,
		field:   func(e entry, _ *apply.Failure) string { return nic(e, "type") },
		message: fixed("Multus is not installed: NetworkAttachmentDefinition is not served")},
	{fromNetwork, network.ReasonNameConflict}: {
		condition: v1alpha1.NetworksConfiguredCondition, reason: v1alpha1.ReasonNameConflict, field: nicField, external: true,
		message: conflictMessage},
	{fromNetwork, network.ReasonInvalidAttachment}: {
		condition: v1alpha1.NetworksConfiguredCondition, reason: v1alpha1.ReasonInvalidNetwork, field: nicField,
		message: typed(func(e *network.InvalidAttachmentError) string {
			return e.Reason
		})},
	{fromNetwork, network.ReasonUnsupportedCNI}: {
		condition: v1alpha1.NetworksConfiguredCondition, reason: v1alpha1.ReasonUnsupportedCNI, field: nicField, external: true,
		message: typed(func(e *network.UnsupportedCNIError) string {
			return fmt.Sprintf("NetworkAttachmentDefinition %s/%s uses the %s CNI plugin, which KubeVirt cannot connect a VM to "+
				"(the bridge binding needs a pod interface it can enslave to a bridge and hand to the guest; a %s interface is neither); "+
				"name a NetworkAttachmentDefinition of type bridge or macvtap, or use type: macvlan with physicalInterface and no nadName "+
				"(Wukong then writes a macvtap one)", e.Namespace, e.Name, e.Type, e.Type)
		})},

	// lib/storage: one failure per disk, Subject the disk's name.
	{fromStorage, storage.ReasonNameConflict}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonNameConflict, field: diskField, external: true,
		message: func(_ entry, f *apply.Failure) string { return f.Error() + ": rename or remove it, or rename the disk" }},
	{fromStorage, storage.ReasonStorageClassNotFound}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonStorageClassNotFound, field: diskField, external: true,
		message: func(e entry, f *apply.Failure) string {
			if e.w.Spec.Disks[e.i].StorageClassName == "" {
				return "no StorageClass is named and the cluster has no default StorageClass"
			}
			return f.Error()
		}},
	{fromStorage, storage.ReasonClaimNotValid}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonStorageProfileIncomplete, field: diskField, external: true,
		message: func(_ entry, f *apply.Failure) string {
			return "CDI cannot make the disk's claim (" + f.Error() + "): an administrator sets accessModes and volumeMode " +
				"in the StorageProfile's spec.claimPropertySets, or name another storageClassName"
		}},
	{fromStorage, storage.ReasonDiskTooSmall}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonDiskTooSmall, field: diskField,
		message: func(e entry, f *apply.Failure) string {
			return "the image is bigger than the disk: grow " + mapping.DiskField(e.w, e.i, "size") + " (CDI retries the import): " + f.Error()
		}},
	{fromStorage, storage.ReasonShrinkRefused}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonShrinkRefused, field: diskField, message: errorMessage},
	{fromStorage, storage.ReasonExpansionNotAllowed}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonExpansionNotAllowed, field: diskField, message: errorMessage},
	{fromStorage, storage.ReasonCDINotInstalled}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonCDIMissing, external: true, field: diskSource,
		message: fixed("importing an image needs CDI (DataVolume), which is not installed")},
	{fromStorage, storage.ReasonInvalidDisk}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonInvalidSpec, field: diskSource, message: errorMessage},
	{fromStorage, storage.ReasonImportFailed}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonImportFailed, field: diskSource, message: errorMessage},
	// External: ResourceQuotas are not watched; a refused growth or plain
	// claim (Wukong's own write) is tried again after StalledRetry (CDI
	// retries its own claim, and the DataVolume's change wakes the Wukong).
	{fromStorage, storage.ReasonQuotaExceeded}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonQuotaExceeded, field: diskField, message: typedAt(diskQuotaMessage), external: true},
	// A disk's image behind a private CA or a login (imageAccess): the
	// ConfigMap or Secret is not there (not watched: External, looked at
	// again after StalledRetry), or CDI's importer failed on the CA or the
	// login, naming the field that fixes it.
	{fromStorage, storage.ReasonImageAccessNotFound}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonImageAccessNotFound, field: diskField, external: true,
		message: func(e entry, f *apply.Failure) string {
			return f.Error() + ": create it, or change " + mapping.DiskField(e.w, e.i, f.Field)
		}},
	{fromStorage, storage.ReasonImageUntrusted}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonImportFailed, field: diskField,
		message: func(e entry, f *apply.Failure) string {
			return "CDI's importer does not trust the image server's certificate: name a ConfigMap of this namespace holding " +
				"the PEM certificate of the CA that signed it in " + mapping.DiskField(e.w, e.i, f.Field) + " (CDI: " + f.Error() + ")"
		}},
	{fromStorage, storage.ReasonImageUnauthorized}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonImportFailed, field: diskField,
		message: func(e entry, f *apply.Failure) string {
			return "the image server refused CDI's importer a login: name a Secret of this namespace with the keys " +
				storage.SecretKeyAccess + " and " + storage.SecretKeySecret + " in " + mapping.DiskField(e.w, e.i, f.Field) +
				", or fix the one named (CDI: " + f.Error() + ")"
		}},
	{fromStorage, storage.ReasonClaimLost}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonImportFailed, field: diskSource, message: errorMessage},
	// A claim a disk names (claimName): the user's, in this namespace only
	// (the lib reads it there, and owner references never cross
	// namespaces), so the messages say nothing of other namespaces. Not
	// watched (a user's claim is not in the labelled cache): External.
	{fromStorage, storage.ReasonClaimNotFound}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonClaimNotFound, field: diskField, external: true,
		message: func(_ entry, f *apply.Failure) string {
			return f.Error() + ": create it, or name another claim (a claim a deleted Wukong retained keeps its name, <wukong>-<disk>)"
		}},
	{fromStorage, storage.ReasonClaimInUse}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonClaimInUse, field: diskField, external: true,
		message: errorMessage},
	{fromStorage, storage.ReasonClaimTooSmall}: {
		condition: v1alpha1.VolumesBoundCondition, reason: v1alpha1.ReasonClaimTooSmall, field: diskField, external: true,
		message: errorMessage},

	// lib/kubevirt: one failure for the machine.
	{fromKubeVirt, kubevirt.ReasonInvalidInput}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonInvalidSpec,
		field: func(e entry, f *apply.Failure) string { return mapping.MachineField(e.w, f.Field) },
		message: typed(func(e *kubevirt.InvalidInputError) string {
			return e.Message
		})},
	{fromKubeVirt, kubevirt.ReasonBindingNotRegistered}: {
		condition: v1alpha1.NetworksConfiguredCondition, reason: v1alpha1.ReasonBindingNotRegistered, external: true,
		field: bindingField, message: bindingMessage},
	{fromKubeVirt, kubevirt.ReasonKubeVirtNotInstalled}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonKubeVirtMissing, external: true,
		field:   fixed(""),
		message: fixed("KubeVirt is not installed: VirtualMachine (kubevirt.io/v1) is not served")},
	{fromKubeVirt, kubevirt.ReasonLauncherQuotaExceeded}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonQuotaExceeded, field: machineField, message: typedAt(launcherRefused)},
	{fromKubeVirt, kubevirt.ReasonLauncherLimitRange}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonLimitRangeExceeded, field: machineField, message: typedAt(launcherRefused)},
	{fromKubeVirt, kubevirt.ReasonLauncherPodSecurity}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonPodSecurityViolated, field: fixed(""), message: typedAt(launcherRefused)},
	// spec.instancetype / spec.preference (instancetype.go): not allowed
	// reads the same whether the instance type exists or not (the lib
	// refuses it before any lookup).
	{fromKubeVirt, kubevirt.ReasonInstancetypeNotAllowed}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonInstancetypeNotAllowed, field: machineField, external: true,
		message: typed(func(e *kubevirt.InstancetypeNotAllowedError) string {
			return fmt.Sprintf("VirtualMachineClusterInstancetype %q is not one this namespace may use (an administrator lists them in the "+
				"Namespace annotation %s): name another, or a VirtualMachineInstancetype of this namespace", e.Name, v1alpha1.AnnotationAllowedClusterInstancetypes)
		})},
	{fromKubeVirt, kubevirt.ReasonInstancetypeNotFound}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonInstancetypeNotFound, field: machineField, external: true,
		message: typedAt(referenceNotFound)},
	{fromKubeVirt, kubevirt.ReasonPreferenceNotFound}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonPreferenceNotFound, field: machineField, external: true,
		message: typedAt(referenceNotFound)},
	// The Secrets the user names (ReadSSHKeys, ReadPassword): a missing
	// Secret and one without the opt-in label have one message, so the
	// answer does not tell whether a Secret the user may not use exists.
	{fromKubeVirt, kubevirt.ReasonSSHKeySecretNotFound}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonSecretNotFound, external: true,
		field: fixed("spec.sshKeySecret"),
		message: func(_ entry, f *apply.Failure) string {
			return fmt.Sprintf("no Secret %s labelled %s=true in this namespace: the SSH key Secret must carry that label "+
				"(only its lines that parse as SSH public keys are copied into the guest)", f.Subject, v1alpha1.SSHAuthorizedKeysLabel)
		}},
	{fromKubeVirt, kubevirt.ReasonPasswordSecretNotFound}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonSecretNotFound, external: true,
		field: fixed("spec.cloudInitUser.passwordSecretRef"),
		message: func(_ entry, f *apply.Failure) string {
			return fmt.Sprintf("no Secret %s labelled %s=true in this namespace: the password Secret must carry that label",
				f.Subject, v1alpha1.CloudInitPasswordLabel)
		}},
	{fromKubeVirt, kubevirt.ReasonPasswordKeyNotFound}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonSecretNotFound, external: true,
		field: fixed("spec.cloudInitUser.passwordSecretRef.key"),
		message: typed(func(e *kubevirt.SecretKeyNotFoundError) string {
			return fmt.Sprintf("Secret %s has no non-empty key %q", e.Name, e.Key)
		})},
	{fromKubeVirt, apply.ReasonNameConflict}: {
		condition: v1alpha1.ReadyCondition, reason: v1alpha1.ReasonNameConflict, external: true,
		field: fixed("metadata.name"), message: conflictMessage},
}

// conditionOf is the condition a lib's failures set besides Stalled.
var conditionOf = map[source]string{
	fromNetwork:  v1alpha1.NetworksConfiguredCondition,
	fromStorage:  v1alpha1.VolumesBoundCondition,
	fromKubeVirt: v1alpha1.ReadyCondition,
}

// problemOf turns a stalled failure into a problem through the failures
// table. A reason the table lacks, or a failure about no spec entry where
// the row needs one, keeps the lib's reason and message on the entry (or
// the list) at fault, so no stalled failure is ever retried silently.
func problemOf(from source, w *v1alpha1.Wukong, f *apply.Failure) problem {
	e := entry{w: w, i: -1}
	list := "spec.networks"
	if from == fromStorage {
		list = "spec.disks"
		for i, d := range w.Spec.Disks {
			if d.Name == f.Subject {
				e.i = i
			}
		}
	} else {
		for i, n := range w.Spec.Networks {
			if n.Name == f.Subject {
				e.i = i
			}
		}
	}
	row, ok := failures[failureKey{from, f.Reason}]
	needsEntry := from != fromKubeVirt || f.Reason == kubevirt.ReasonBindingNotRegistered
	if ok && (e.i >= 0 || !needsEntry) {
		return problem{Condition: row.condition, Reason: row.reason, Field: row.field(e, f), Message: row.message(e, f), External: row.external}
	}
	field := ""
	switch {
	case e.i >= 0:
		field = fmt.Sprintf("%s[%d]", list, e.i)
	case from != fromKubeVirt:
		field = list
	}
	return problem{Condition: conditionOf[from], Reason: f.Reason, Field: field, Message: f.Error()}
}

// typed is a message made from the lib's typed error E the failure wraps,
// the failure's own text when it wraps none.
func typed[E error](message func(E) string) func(entry, *apply.Failure) string {
	return typedAt(func(_ entry, err E) string { return message(err) })
}

// typedAt is typed for a message that also names the spec entry.
func typedAt[E error](message func(e entry, err E) string) func(entry, *apply.Failure) string {
	return func(e entry, f *apply.Failure) string {
		var err E
		if !errors.As(f, &err) {
			return f.Error()
		}
		return message(e, err)
	}
}

func fixed(s string) func(entry, *apply.Failure) string {
	return func(entry, *apply.Failure) string { return s }
}

func errorMessage(_ entry, f *apply.Failure) string { return f.Error() }

// nic is the path of field sub of the NIC.
func nic(e entry, sub string) string { return fmt.Sprintf("spec.networks[%d].%s", e.i, sub) }

// nicField is the spec.networks[i] field behind the lib/network field the
// failure names (mapping.NetworkField), the NIC itself when none.
func nicField(e entry, f *apply.Failure) string {
	if sf := mapping.NetworkField(f.Field); sf != "" {
		return nic(e, sf)
	}
	return fmt.Sprintf("spec.networks[%d]", e.i)
}

// diskField is the spec.disks[i] field behind the lib/storage field the
// failure names (mapping.DiskField).
func diskField(e entry, f *apply.Failure) string { return mapping.DiskField(e.w, e.i, f.Field) }

// diskSource names what the disk imports or clones (mapping.DiskField's
// source): its image, spec.osImage for the boot disk without one, or its
// cloneFrom or clusterImage (spec.osClusterImage for the boot disk).
func diskSource(e entry, _ *apply.Failure) string { return mapping.DiskField(e.w, e.i, "source") }

// conflictMessage: a child whose name is taken by an object Wukong did not
// create (never adopted, never changed).
func conflictMessage(_ entry, f *apply.Failure) string {
	msg := f.Error()
	var e *apply.ConflictError
	if errors.As(f, &e) {
		msg = e.Error()
	}
	return msg + ": rename or remove it, or rename this Wukong or its entry"
}

// machineField is the Wukong field behind the lib/kubevirt Machine field
// the failure names, "" when it names none.
func machineField(e entry, f *apply.Failure) string {
	if f.Field == "" {
		return ""
	}
	return mapping.MachineField(e.w, f.Field)
}

// launcherRefused: the namespace refuses the VM's virt-launcher pod
// (virt-controller's FailedCreate, see lib/kubevirt LauncherRefusal). It
// quotes the API server, then says what may change: the fields behind the
// resources the refusal names (the pod asks the guest's cpu and memory plus
// KubeVirt's overhead, so a quota or limit must leave room above
// spec.memory) and a restart, or the namespace's policy alone (Pod
// Security, a quota on the number of pods).
func launcherRefused(e entry, r *kubevirt.LauncherRefusedError) string {
	msg := fmt.Sprintf("the namespace's %s refuses the VM's virt-launcher pod; the API server says: %s", r.Policy, r.Message)
	if r.Policy == kubevirt.PolicyPodSecurity {
		return msg + " (an administrator must lower the namespace's pod-security.kubernetes.io/enforce level: KubeVirt's launcher pod " +
			"needs privileged, or baseline for its default non-root launcher; the VM then starts by itself)"
	}
	var fields []string
	for _, res := range r.Resources {
		fields = append(fields, "spec."+res)
	}
	if len(fields) == 0 {
		return msg + " (an administrator must change the namespace's " + r.Policy + "; the VM then starts by itself)"
	}
	return fmt.Sprintf("%s (the pod asks the guest's %s plus KubeVirt's overhead: change %s and restart the VM (virtctl restart %s), "+
		"or an administrator changes the namespace's %s, after which the VM starts by itself)",
		msg, strings.Join(r.Resources, " and "), strings.Join(fields, " or "), e.w.Name, r.Policy)
}

// diskQuotaMessage: a ResourceQuota has no room for the disk's claim (the
// API server refused Wukong's write, or CDI's). It quotes the quota's
// numbers and says what may change (the Wukong CRD refuses a smaller
// size for a disk, so a smaller disk is another disk); CDI and Wukong
// retry, so the disk is made once it fits.
func diskQuotaMessage(e entry, q *storage.QuotaExceededError) string {
	msg := "the namespace's ResourceQuota has no room for the disk's claim; the API server says: " + q.Message
	if !q.Storage {
		return msg + " (the quota counts claims: remove a disk, or an administrator raises the quota)"
	}
	return msg + " (an administrator raises the quota, after which the disk is made by itself; or replace the disk by a smaller one " +
		"of another name: " + mapping.DiskField(e.w, e.i, "size") + " cannot shrink)"
}

// referenceNotFound: the instance type or preference a Wukong names does
// not exist (a namespaced kind: in the Wukong's namespace).
func referenceNotFound(e entry, r *kubevirt.ReferenceNotFoundError) string {
	where := "in the cluster"
	if r.Kind == kubevirt.KindInstancetype || r.Kind == kubevirt.KindPreference {
		where = "in namespace " + e.w.Namespace
	}
	return fmt.Sprintf("%s %q not found %s: create it, or name another", r.Kind, r.Name, where)
}
