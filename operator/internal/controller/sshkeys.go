package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	crsource "sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// SSH key rotation (issue #33, item 6). spec.sshKeySecret's keys reach the
// guest two ways: cloud-init's ssh_authorized_keys (the cloud-init Secret
// is rendered from the Secret on every pass, and the Secret is watched, so
// it follows every edit), which cloud-init applies once per instance, at
// the first boot of a new disk; and, with spec.cloudInitUser, KubeVirt's
// access credentials with guest agent propagation
// (lib/kubevirt accesscredentials.go), which keep the user's
// authorized_keys equal to the Secret's keys while the guest runs.
// setSSHKeysSynchronized says which of the two holds now.

// FirstBootOnly is the part of every SSHKeysSynchronized False message
// saying what a key change does meanwhile.
const FirstBootOnly = "key changes apply only at the first boot of a new disk (cloud-init), not to the running guest"

// setSSHKeysSynchronized sets SSHKeysSynchronized from what the VMI says
// (kubevirt.Observation.GuestAgent, AccessCredentials); it removes it when
// spec.sshKeySecret is empty.
func setSSHKeysSynchronized(o *v1alpha1.Wukong, s *scope) {
	const t = v1alpha1.SSHKeysSynchronizedCondition
	secret := o.Spec.SSHKeySecret
	if secret == "" {
		conditions.Delete(o, t)
		return
	}
	if o.Spec.CloudInitUser == nil {
		conditions.MarkFalse(o, t, v1alpha1.ReasonKeysFirstBootOnly,
			"no spec.cloudInitUser names the guest user whose authorized_keys the QEMU guest agent would keep equal to Secret %s: %s", secret, FirstBootOnly)
		return
	}
	if !s.vm.HasInstance() || s.vm.Phase() != kubevirtv1.Running {
		conditions.MarkUnknown(o, t, v1alpha1.ReasonKeysPending, "the keys of Secret %s are written by the guest agent while the VM runs", secret)
		return
	}
	user := o.Spec.CloudInitUser.Name
	agent, creds := s.vm.GuestAgent(), s.vm.AccessCredentials()
	noAgent := "no QEMU guest agent is connected in the guest"
	if ga := o.Spec.GuestAgent; ga != nil && ga.Install != nil && !*ga.Install {
		noAgent += " (spec.guestAgent.install is false: the image must run one)"
	}
	switch {
	case !creds.Configured:
		conditions.MarkFalse(o, t, v1alpha1.ReasonKeysNeedRestart,
			"the running guest was started without KubeVirt access credentials for Secret %s: until the VM restarts (virtctl restart %s), %s", secret, o.Name, FirstBootOnly)
	case agent.Unsupported:
		conditions.MarkFalse(o, t, v1alpha1.ReasonGuestAgentNotSupported,
			"KubeVirt does not support the guest's QEMU guest agent (%s): update qemu-guest-agent in the image (spec.osImage); %s", agent.Reason, FirstBootOnly)
	case !agent.Connected:
		conditions.MarkFalse(o, t, v1alpha1.ReasonGuestAgentNotConnected, "%s: %s", noAgent, FirstBootOnly)
	case creds.Reported && !creds.Synchronized:
		conditions.MarkFalse(o, t, v1alpha1.ReasonKeysSyncFailed,
			"KubeVirt could not write user %s's authorized_keys through the guest agent: %s; the image's qemu-guest-agent must be allowed to (see README, SSH keys); %s", user, creds.Message, FirstBootOnly)
	case creds.Synchronized:
		conditions.MarkTrue(o, t, v1alpha1.ReasonKeysSynchronized,
			"the guest agent keeps user %s's authorized_keys equal to the keys of Secret %s", user, secret)
	default:
		conditions.MarkUnknown(o, t, v1alpha1.ReasonKeysPending, "waiting for KubeVirt to write the keys of Secret %s through the guest agent", secret)
	}
}

// indexSSHKeySecret indexes Wukongs by spec.sshKeySecret.
const indexSSHKeySecret = "spec.sshKeySecret"

func sshKeySecretOf(w *v1alpha1.Wukong) []string {
	if w.Spec.SSHKeySecret == "" {
		return nil
	}
	return []string{w.Spec.SSHKeySecret}
}

// sshKeyUsers maps an SSH key Secret (metadata only) to the Wukongs of its
// namespace naming it in spec.sshKeySecret: an edit re-renders their
// cloud-init and SSH key Secrets at once.
func (r *WukongReconciler) sshKeyUsers(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
	return r.wukongRequests(ctx, nil, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSSHKeySecret: o.GetName()})
}

// watchSSHKeySecrets makes b watch the SSH key Secrets keySecrets holds
// (operator/manager: a metadata-only cache of the Secrets labelled
// v1alpha1.SSHAuthorizedKeysLabel=true, the only ones spec.sshKeySecret may
// name), mapped by sshKeyUsers.
func (r *WukongReconciler) watchSSHKeySecrets(mgr ctrl.Manager, b *builder.Builder, keySecrets cache.Cache) (*builder.Builder, error) {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Wukong{}, indexSSHKeySecret, wukongIndex(sshKeySecretOf)); err != nil {
		return nil, err
	}
	if keySecrets == nil {
		return b, nil
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return b.WatchesRawSource(crsource.Kind(keySecrets, obj, handler.TypedEnqueueRequestsFromMapFunc(r.sshKeyUsers))), nil
}
