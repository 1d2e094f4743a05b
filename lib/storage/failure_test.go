package storage

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/novasphere/wukong/lib/apply"
)

// TestObservedFailure: what CDI or the claim reports without an API error
// is a stalled failure naming the Disk field to fix; a disk that is only
// on its way (importing, pending, growth waiting for the bind) is none.
func TestObservedFailure(t *testing.T) {
	tests := []struct {
		name          string
		o             Observation
		reason, field string
		msg           string
	}{
		{name: "importing", o: Observation{Phase: PhaseImporting}},
		{name: "growth waits for the bind", o: Observation{Phase: PhasePending, Reason: ReasonExpansionPendingBind, Message: "growing"}},
		{name: "StorageProfile without claim properties", o: Observation{Phase: PhasePending, Reason: ReasonClaimNotValid, Message: "no accessMode specified"},
			reason: ReasonClaimNotValid, field: "storageClassName", msg: "no accessMode specified"},
		{name: "image bigger than the disk", o: Observation{Phase: PhaseFailed, Reason: ReasonDiskTooSmall, Message: "A larger PVC is required"},
			reason: ReasonDiskTooSmall, field: "size", msg: "A larger PVC is required"},
		{name: "claim lost", o: Observation{Phase: PhaseFailed, Reason: ReasonClaimLost, Message: "the PersistentVolume of the claim is lost"},
			reason: ReasonClaimLost, msg: "the PersistentVolume of the claim is lost"},
		{name: "importer error", o: Observation{Phase: PhaseFailed, Reason: "CrashLoopBackOff"},
			reason: ReasonImportFailed, field: "source", msg: "the disk failed: CrashLoopBackOff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := observedFailure("root", tt.o)
			if tt.reason == "" {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, tt.msg, requireStalled(t, err, tt.reason, "root", tt.field))
		})
	}
}

// requireStalled requires err to be a stalled *apply.Failure of reason on
// subject (a disk's name) naming field ("" for none), and returns its
// message.
func requireStalled(t *testing.T, err error, reason, subject, field string) string {
	t.Helper()
	f, ok := apply.AsFailure(err)
	require.True(t, ok, "want a stalled %s failure, got %v", reason, err)
	assert.Equal(t, reason, f.Reason)
	assert.True(t, f.Stalled, "stalled")
	assert.Equal(t, subject, f.Subject)
	assert.Equal(t, field, f.Field)
	return f.Error()
}
