package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestSSHKeysSynchronized: the condition follows the VMI's conditions as
// virt-handler v1.9.0 writes them (AgentConnected, AgentVersionNotSupported,
// AccessCredentialsSynchronized); every False says that key changes apply
// only at the first boot of a new disk; no sshKeySecret, no condition.
func TestSSHKeysSynchronized(t *testing.T) {
	cond := func(t kubevirtv1.VirtualMachineInstanceConditionType, s corev1.ConditionStatus, reason, msg string) kubevirtv1.VirtualMachineInstanceCondition {
		return kubevirtv1.VirtualMachineInstanceCondition{Type: t, Status: s, Reason: reason, Message: msg}
	}
	connected := cond(kubevirtv1.VirtualMachineInstanceAgentConnected, corev1.ConditionTrue, "", "")
	creds := []kubevirtv1.AccessCredential{{SSHPublicKey: &kubevirtv1.SSHPublicKeyAccessCredential{
		Source: kubevirtv1.SSHPublicKeyAccessCredentialSource{Secret: &kubevirtv1.AccessCredentialSecretSource{SecretName: "vm1-sshkeys"}},
		PropagationMethod: kubevirtv1.SSHPublicKeyAccessCredentialPropagationMethod{
			QemuGuestAgent: &kubevirtv1.QemuGuestAgentSSHPublicKeyAccessCredentialPropagation{Users: []string{"ops"}}},
	}}}
	off := false
	tests := []struct {
		name       string
		secret     string
		user       bool
		noInstall  bool
		vmi        bool
		creds      bool
		conds      []kubevirtv1.VirtualMachineInstanceCondition
		status     metav1.ConditionStatus // "" : no condition
		reason     string
		msgContain []string
	}{
		{name: "no sshKeySecret"},
		{name: "no cloudInitUser: first boot only", secret: "keys", vmi: true, status: metav1.ConditionFalse,
			reason: v1alpha1.ReasonKeysFirstBootOnly, msgContain: []string{"spec.cloudInitUser", FirstBootOnly}},
		{name: "not running", secret: "keys", user: true, status: metav1.ConditionUnknown, reason: v1alpha1.ReasonKeysPending},
		{name: "started before access credentials", secret: "keys", user: true, vmi: true, conds: []kubevirtv1.VirtualMachineInstanceCondition{connected},
			status: metav1.ConditionFalse, reason: v1alpha1.ReasonKeysNeedRestart, msgContain: []string{"virtctl restart vm1", FirstBootOnly}},
		{name: "agent missing, install false", secret: "keys", user: true, vmi: true, creds: true, noInstall: true,
			conds:  []kubevirtv1.VirtualMachineInstanceCondition{cond(kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionFalse, "", "Guest agent is offline")},
			status: metav1.ConditionFalse, reason: v1alpha1.ReasonGuestAgentNotConnected, msgContain: []string{"spec.guestAgent.install is false", FirstBootOnly}},
		{name: "agent not supported", secret: "keys", user: true, vmi: true, creds: true,
			conds: []kubevirtv1.VirtualMachineInstanceCondition{connected,
				cond(kubevirtv1.VirtualMachineInstanceUnsupportedAgent, corev1.ConditionTrue, "This guest agent doesn't support required public key commands", "")},
			status: metav1.ConditionFalse, reason: v1alpha1.ReasonGuestAgentNotSupported,
			msgContain: []string{"required public key commands", "spec.osImage", FirstBootOnly}},
		{name: "write failed", secret: "keys", user: true, vmi: true, creds: true,
			conds: []kubevirtv1.VirtualMachineInstanceCondition{connected,
				cond(kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionFalse, "", "Error encountered writing ssh pub key access credentials for user [ops]: permission denied")},
			status: metav1.ConditionFalse, reason: v1alpha1.ReasonKeysSyncFailed, msgContain: []string{"permission denied", FirstBootOnly}},
		{name: "not reported yet", secret: "keys", user: true, vmi: true, creds: true, conds: []kubevirtv1.VirtualMachineInstanceCondition{connected},
			status: metav1.ConditionUnknown, reason: v1alpha1.ReasonKeysPending},
		{name: "synchronized", secret: "keys", user: true, vmi: true, creds: true,
			conds:  []kubevirtv1.VirtualMachineInstanceCondition{connected, cond(kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionTrue, "", "")},
			status: metav1.ConditionTrue, reason: v1alpha1.ReasonKeysSynchronized, msgContain: []string{"user ops", "Secret keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWukong()
			w.Spec.SSHKeySecret = tt.secret
			if tt.user {
				w.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "ops"}
			}
			if tt.noInstall {
				w.Spec.GuestAgent = &v1alpha1.GuestAgent{Install: &off}
			}
			var vmi *kubevirtv1.VirtualMachineInstance
			if tt.vmi {
				vmi = runningVMI("node-1")
				vmi.Status.Conditions = append(vmi.Status.Conditions, tt.conds...)
				if tt.creds {
					vmi.Spec.AccessCredentials = creds
				}
			}
			setSSHKeysSynchronized(w, runningScope(w, vmi))
			c := conditions.Get(w, v1alpha1.SSHKeysSynchronizedCondition)
			if tt.status == "" {
				assert.Nil(t, c)
				return
			}
			if assert.NotNil(t, c) {
				assert.Equal(t, tt.status, c.Status)
				assert.Equal(t, tt.reason, c.Reason)
				for _, s := range tt.msgContain {
					assert.Contains(t, c.Message, s)
				}
			}
		})
	}
}
