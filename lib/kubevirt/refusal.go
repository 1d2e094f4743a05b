package kubevirt

import (
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/apply"
)

// A namespace's policy can refuse the virt-launcher pod KubeVirt makes for
// a VMI: the API server's ResourceQuota admission (the pod does not fit the
// quota), its LimitRanger (the pod asks more than a LimitRange allows, or a
// LimitRange's default limit is below the pod's request: KubeVirt asks the
// guest's memory plus its own overhead, CalculateMemoryOverhead in
// pkg/virt-controller/services/template.go, v1.9.0) or PodSecurity (the
// namespace enforces a level the launcher violates: it runs without a
// seccomp profile, so "restricted" refuses it). virt-controller then records
// a Warning Event FailedCreate on the VMI ("Error creating pod: <err>"),
// sets the VMI's Synchronized condition False with reason FailedCreate and
// the message "failed to create virtual machine pod: <err>" (for
// PodSecurity: "failed to create pod for vmi <ns>/<name>, it needs a
// privileged namespace to run: <err>") and retries with backoff; the VMI
// stays Pending and the VM Starting (pkg/virt-controller/watch/vmi/
// lifecycle.go sync, pkg/controller/conditions.go CheckFailure). Nothing
// changes until the policy or the VM does.

// Reasons of the stalled *apply.Failure Observation.LauncherRefusal returns.
const (
	// ReasonLauncherQuotaExceeded: a ResourceQuota of the namespace has no
	// room for the launcher pod.
	ReasonLauncherQuotaExceeded = "LauncherQuotaExceeded"
	// ReasonLauncherLimitRange: a LimitRange of the namespace refuses the
	// launcher pod's requests or limits.
	ReasonLauncherLimitRange = "LauncherLimitRange"
	// ReasonLauncherPodSecurity: the namespace's Pod Security level refuses
	// the launcher pod.
	ReasonLauncherPodSecurity = "LauncherPodSecurity"
)

// Policies a LauncherRefusedError names.
const (
	PolicyResourceQuota = "ResourceQuota"
	PolicyLimitRange    = "LimitRange"
	PolicyPodSecurity   = "PodSecurity"
)

// reasonFailedCreate is virt-controller's reason for a pod it could not
// create (pkg/controller FailedCreatePodReason).
const reasonFailedCreate = "FailedCreate"

// LauncherRefusedError: the API server refused the VMI's virt-launcher pod
// because of a policy of the namespace.
type LauncherRefusedError struct {
	// Policy is PolicyResourceQuota, PolicyLimitRange or PolicyPodSecurity.
	Policy string
	// Resources are the compute resources the refusal names, "cpu" and/or
	// "memory" in that order (from requests.memory, limits.cpu, ...); empty
	// for PodSecurity, or a quota on the number of pods.
	Resources []string
	// Message is the API server's refusal, without the pod's generated
	// name (new at each attempt): e.g. `exceeded quota: q, requested:
	// requests.memory=1226Mi, used: requests.memory=0, limited:
	// requests.memory=1Gi`.
	Message string
}

func (e *LauncherRefusedError) Error() string {
	return "the namespace's " + e.Policy + " refuses the virt-launcher pod: " + e.Message
}

// LauncherRefusal returns the stalled *apply.Failure (Reason one of
// ReasonLauncher*, Field "memory" or "cpu" when the refusal names one
// resource of the Machine, wrapping a *LauncherRefusedError) when
// virt-controller reports that the API server refused the launcher pod
// for a namespace policy; nil otherwise (another FailedCreate, such as an
// API hiccup, is not a refusal: virt-controller retries it).
func (o Observation) LauncherRefusal() error {
	if o.vmi == nil || o.vmi.IsFinal() || o.vmi.DeletionTimestamp != nil {
		return nil
	}
	c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceSynchronized)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonFailedCreate {
		return nil
	}
	e := ParseLauncherRefusal(c.Message)
	if e == nil {
		return nil
	}
	reason := map[string]string{
		PolicyResourceQuota: ReasonLauncherQuotaExceeded,
		PolicyLimitRange:    ReasonLauncherLimitRange,
		PolicyPodSecurity:   ReasonLauncherPodSecurity,
	}[e.Policy]
	field := ""
	if len(e.Resources) == 1 {
		field = e.Resources[0]
	}
	return apply.Stalled(reason, e).On("", field)
}

var (
	// quotaResources is the "requested: a=1,b=2" list of the ResourceQuota
	// admission's refusal (k8s.io/apiserver pkg/admission/plugin/
	// resourcequota/controller.go: "exceeded quota: %s, requested: %s,
	// used: %s, limited: %s").
	quotaResources = regexp.MustCompile(`requested: ([^ ]+),? used:`)
	// limitResource is the resource of the LimitRanger's refusal
	// (plugin/pkg/admission/limitranger/admission.go: "maximum %s usage
	// per %s is %s, but limit is %s", "minimum %s usage per %s is %s, but
	// request is %s", "%s max limit to request ratio per %s is %s, but
	// provided ratio is %f"), or of the pod validation that fails once the
	// LimitRanger has given the container a default limit below its
	// request (k8s.io/kubernetes pkg/apis/core/validation: "must be less
	// than or equal to %s limit of %s").
	limitResource = regexp.MustCompile(`(?:maximum|minimum) (\S+) usage per|(\S+) max limit to request ratio per|must be less than or equal to (\S+) limit`)
)

// ParseLauncherRefusal reads the message of virt-controller's
// Synchronized=False FailedCreate condition and returns the namespace policy
// that refused the pod, or nil when the message is no such refusal.
func ParseLauncherRefusal(msg string) *LauncherRefusedError {
	api := msg
	for _, sep := range []string{" is forbidden: ", " is invalid: "} {
		if _, after, ok := strings.Cut(msg, sep); ok {
			api = after
			break
		}
	}
	switch {
	case strings.Contains(api, "violates PodSecurity"):
		return &LauncherRefusedError{Policy: PolicyPodSecurity, Message: api}
	case strings.HasPrefix(api, "exceeded quota: ") || strings.HasPrefix(api, "failed quota: "):
		var names []string
		if m := quotaResources.FindStringSubmatch(api); m != nil {
			for _, kv := range strings.Split(m[1], ",") {
				name, _, _ := strings.Cut(kv, "=")
				names = append(names, name)
			}
		} else if _, list, ok := strings.Cut(api, "must specify "); ok {
			names = strings.Split(list, ",") // "failed quota: q: must specify limits.cpu,limits.memory"
		}
		return &LauncherRefusedError{Policy: PolicyResourceQuota, Resources: computeResources(names), Message: api}
	}
	if m := limitResource.FindStringSubmatch(api); m != nil {
		return &LauncherRefusedError{Policy: PolicyLimitRange, Resources: computeResources(m[1:]), Message: api}
	}
	return nil
}

// computeResources are the resources among names ("requests.memory",
// "limits.cpu", "memory", "pods", ...) that a Machine sets: "cpu", then
// "memory", each once.
func computeResources(names []string) []string {
	var out []string
	for _, r := range []string{"cpu", "memory"} {
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n == r || strings.HasSuffix(n, "."+r) {
				out = append(out, r)
				break
			}
		}
	}
	return slices.Clip(out)
}
