// Package conditions manages []metav1.Condition on Kubernetes objects, in the
// shape of Flux's runtime/conditions and cluster-api's util/conditions, and
// encodes the kstatus rules (sigs.k8s.io/cli-utils/pkg/kstatus) that let
// kubectl, Flux, Argo CD and cli-utils tell whether an object is Current,
// InProgress or Failed.
//
// It depends on k8s.io/apimachinery only, so any controller can import it.
//
// # Using it from a controller
//
// Give the status type of your API object two methods (pointer receivers):
//
//	func (w *Widget) GetConditions() []metav1.Condition  { return w.Status.Conditions }
//	func (w *Widget) SetConditions(c []metav1.Condition) { w.Status.Conditions = c }
//
// Together with metav1.Object (embedded ObjectMeta) the object is then a
// [Setter]. At the end of a reconcile, derive the conditions from what the
// steps observed:
//
//	conditions.MarkTrue(w, "VolumesBound", "Bound", "all %d volumes are bound", n)
//	conditions.MarkFalse(w, "NetworksConfigured", "NADMissing", "network attachment %q not found", name)
//	conditions.SetSummary(w, conditions.ReadyCondition, "NetworksConfigured", "VolumesBound")
//	conditions.MarkReconciling(w, "Progressing", "waiting for volumes") // or MarkStalled / ClearProgress
//	w.Status.ObservedGeneration = w.Generation // only on a clean pass
//
// and patch the status once. In tests, [Check] reports kstatus violations.
//
// # Rules kept by Set
//
//   - ObservedGeneration of the condition is stamped from metadata.generation
//     of the object.
//   - LastTransitionTime is kept from the existing condition of the same type
//     while Status does not change. When the condition is new or its Status
//     flips, LastTransitionTime is the caller's value if non-zero, else [Now].
//   - There is at most one condition per type (Set drops duplicates of the
//     type it writes).
//   - The list is sorted in a stable order: the Ready condition first, then
//     every other condition by type in alphabetical (byte-wise) order. The
//     order never depends on the order of calls, so the status does not flap.
//
// # kstatus
//
// kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute) decides, for a
// custom resource, in this order:
//
//  1. metadata.deletionTimestamp set: Terminating.
//  2. metadata.generation present and status.observedGeneration present but
//     different: InProgress (reason LatestGenerationNotObserved). A resource
//     is therefore Current only when status.observedGeneration equals
//     metadata.generation (or status.observedGeneration is absent).
//  3. Reconciling=True: InProgress; Stalled=True: Failed (the first of the
//     two in list order wins, which is why they must never both be True).
//  4. Ready=True: Current; Ready=False or Unknown: InProgress.
//  5. Otherwise (no known conditions at all): Current. An object that has not
//     reported Ready yet would look done, so [Check] requires Ready.
//
// Reconciling and Stalled are "abnormal-true" conditions: they are present
// only while True and are deleted otherwise ([MarkReconciling],
// [MarkStalled], [ClearProgress] keep this and never leave both True).
package conditions
