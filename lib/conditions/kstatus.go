package conditions

// Condition types understood by kstatus.
const (
	// ReadyCondition is the normal-true summary condition: True when the
	// object is fully reconciled and working.
	ReadyCondition = "Ready"
	// ReconcilingCondition is abnormal-true: present (True) only while the
	// controller is working towards the desired state. kstatus: InProgress.
	ReconcilingCondition = "Reconciling"
	// StalledCondition is abnormal-true: present (True) only while the
	// controller cannot make progress without outside help. kstatus: Failed.
	StalledCondition = "Stalled"
)

// MarkReconciling sets Reconciling=True with the given reason and message
// and deletes Stalled.
func MarkReconciling(to Setter, reason, messageFormat string, args ...any) {
	Delete(to, StalledCondition)
	MarkTrue(to, ReconcilingCondition, reason, messageFormat, args...)
}

// MarkStalled sets Stalled=True with the given reason and message and
// deletes Reconciling.
func MarkStalled(to Setter, reason, messageFormat string, args ...any) {
	Delete(to, ReconcilingCondition)
	MarkTrue(to, StalledCondition, reason, messageFormat, args...)
}

// ClearProgress deletes Reconciling and Stalled, as on a clean pass where
// Ready tells the whole story.
func ClearProgress(to Setter) {
	Delete(to, ReconcilingCondition)
	Delete(to, StalledCondition)
}
