package snapshot

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestConsistency(t *testing.T) {
	I := func(s ...v1alpha1.SnapshotIndication) []v1alpha1.SnapshotIndication { return s }
	cases := []struct {
		name   string
		ind    []v1alpha1.SnapshotIndication
		frozen bool
		want   v1alpha1.SnapshotConsistency
	}{
		{"stopped VM: KubeVirt sets no indication", nil, false, v1alpha1.ConsistencyOffline},
		{"running with agent: frozen", I(v1alpha1.IndicationGuestAgent, v1alpha1.IndicationOnline), true, v1alpha1.ConsistencyFrozen},
		{"running without agent", I(v1alpha1.IndicationNoGuestAgent, v1alpha1.IndicationOnline), false, v1alpha1.ConsistencyCrash},
		{"paused", I(v1alpha1.IndicationOnline, v1alpha1.IndicationPaused), false, v1alpha1.ConsistencyCrash},
		{"freeze window ran out", I(v1alpha1.IndicationGuestAgent, v1alpha1.IndicationOnline, v1alpha1.IndicationQuiesceTimeout), false, v1alpha1.ConsistencyCrash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frozen, c := Consistency(tc.ind)
			assert.Equal(t, tc.frozen, frozen)
			assert.Equal(t, tc.want, c)
		})
	}
}

// fixtures for computeSnapshotStatus.
func newSnap() *v1alpha1.WukongSnapshot {
	return &v1alpha1.WukongSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "team-a", Generation: 1},
		Spec:       v1alpha1.WukongSnapshotSpec{WukongName: "vm"},
	}
}

func wukongWithDisks() *v1alpha1.Wukong {
	return &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Name: "vm", Namespace: "team-a", UID: "w-uid"},
		Spec: v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{
			{Name: "root", Size: resource.MustParse("10Gi")},
			{Name: "data", Size: resource.MustParse("5Gi"), StorageClassName: "nosnap"},
		}},
	}
}

func doneVMS(ind ...snapshotv1.Indication) *snapshotv1.VirtualMachineSnapshot {
	now := metav1.NewTime(time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC))
	return &snapshotv1.VirtualMachineSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "team-a"},
		Status: &snapshotv1.VirtualMachineSnapshotStatus{
			Phase: snapshotv1.Succeeded, ReadyToUse: ptr.To(true), CreationTime: &now,
			VirtualMachineSnapshotContentName: ptr.To("vmsnapshot-content-1"),
			Indications:                       ind, //nolint:staticcheck // the deprecated field older KubeVirt writes
		},
	}
}

func content() *snapshotv1.VirtualMachineSnapshotContent {
	backup := func(vol, claim, size string) snapshotv1.VolumeBackup {
		return snapshotv1.VolumeBackup{
			VolumeName:         vol,
			VolumeSnapshotName: ptr.To("vmsnapshot-1-volume-" + vol),
			PersistentVolumeClaim: snapshotv1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: claim},
				Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
			},
		}
	}
	return &snapshotv1.VirtualMachineSnapshotContent{
		Spec: snapshotv1.VirtualMachineSnapshotContentSpec{VolumeBackups: []snapshotv1.VolumeBackup{
			backup("root", "vm-root", "10Gi"), backup("data", "vm-data", "5Gi"),
		}},
		Status: &snapshotv1.VirtualMachineSnapshotContentStatus{VolumeSnapshotStatus: []snapshotv1.VolumeSnapshotStatus{
			{VolumeSnapshotName: "vmsnapshot-1-volume-root", ReadyToUse: ptr.To(true)},
			{VolumeSnapshotName: "vmsnapshot-1-volume-data", ReadyToUse: ptr.To(true)},
		}},
	}
}

func TestComputeSnapshotStatus(t *testing.T) {
	type want struct {
		ready       metav1.ConditionStatus
		reason      string
		stalled     bool
		reconciling bool
		msgHas      []string
		requeue     bool
	}
	cases := []struct {
		name string
		// scope builds the observed state.
		scope func() *snapScope
		want  want
	}{
		{
			name:  "no Wukong in this namespace: Stalled, naming only the name",
			scope: func() *snapScope { return &snapScope{snap: newSnap(), wukongMissing: true} },
			want:  want{ready: "False", reason: v1alpha1.ReasonWukongNotFound, stalled: true, msgHas: []string{`spec.wukongName: no Wukong "vm" in this namespace`}},
		},
		{
			name:  "Wukong without VM yet: Reconciling",
			scope: func() *snapScope { return &snapScope{snap: newSnap(), wukong: wukongWithDisks()} },
			want:  want{ready: "False", reason: v1alpha1.ReasonWaitingForVM, reconciling: true},
		},
		{
			name: "a disk's class has no VolumeSnapshotClass: Stalled naming the field",
			scope: func() *snapScope {
				return &snapScope{snap: newSnap(), wukong: wukongWithDisks(), vm: &kubevirtv1.VirtualMachine{},
					unsupported: []unsupportedDisk{{index: 1, name: "data", class: "nosnap", reason: "No VolumeSnapshotClass: Volume snapshots are not configured for this StorageClass [nosnap] [data]"}}}
			},
			want: want{ready: "False", reason: v1alpha1.ReasonSnapshotNotSupported, stalled: true,
				msgHas: []string{"spec.disks[1].storageClassName of Wukong vm", `StorageClass "nosnap"`, "No VolumeSnapshotClass"}},
		},
		{
			name: "KubeVirt has not reported the volumes yet: Reconciling, polled",
			scope: func() *snapScope {
				return &snapScope{snap: newSnap(), wukong: wukongWithDisks(), vm: &kubevirtv1.VirtualMachine{}, snapshotStatusesMissing: true}
			},
			want: want{ready: "False", reason: v1alpha1.ReasonWaitingForVM, reconciling: true, requeue: true},
		},
		{
			name: "a disk's claim not bound (WaitForFirstConsumer, never started): Reconciling, no VirtualMachineSnapshot",
			scope: func() *snapScope {
				w := wukongWithDisks()
				w.Status.Volumes = []v1alpha1.VolumeStatus{{Name: "root", Bound: true, Phase: "Bound"}, {Name: "data", Phase: "WaitForFirstConsumer"}}
				return &snapScope{snap: newSnap(), wukong: w, vm: &kubevirtv1.VirtualMachine{}, unbound: unboundDisks(w)}
			},
			want: want{ready: "False", reason: v1alpha1.ReasonWaitingForDisks, reconciling: true,
				msgHas: []string{"disk(s) data (WaitForFirstConsumer) of Wukong vm are not bound", "taken once every disk is bound"}},
		},
		{
			name: "in progress",
			scope: func() *snapScope {
				vms := doneVMS()
				vms.Status.Phase, vms.Status.ReadyToUse = snapshotv1.InProgress, ptr.To(false)
				return &snapScope{snap: newSnap(), vms: vms}
			},
			want: want{ready: "False", reason: v1alpha1.ReasonSnapshotInProgress, reconciling: true, requeue: true},
		},
		{
			name: "failed: KubeVirt's message",
			scope: func() *snapScope {
				vms := doneVMS()
				vms.Status.Phase, vms.Status.ReadyToUse = snapshotv1.Failed, ptr.To(false)
				vms.Status.Error = &snapshotv1.Error{Message: ptr.To("snapshot deadline exceeded")}
				return &snapScope{snap: newSnap(), vms: vms}
			},
			want: want{ready: "False", reason: v1alpha1.ReasonSnapshotFailed, stalled: true, msgHas: []string{"snapshot deadline exceeded"}},
		},
		{
			name: "ready, frozen",
			scope: func() *snapScope {
				return &snapScope{snap: newSnap(), vms: doneVMS(snapshotv1.VMSnapshotOnlineSnapshotIndication, snapshotv1.VMSnapshotGuestAgentIndication),
					content: content(), restoreSizes: map[string]resource.Quantity{"vmsnapshot-1-volume-root": resource.MustParse("10Gi")}}
			},
			want: want{ready: "True", reason: v1alpha1.ReasonReadyToUse, msgHas: []string{"2 disk(s)", "size 15Gi", "guest frozen"}},
		},
		{
			name: "a taken snapshot outlives its Wukong (Retain)",
			scope: func() *snapScope {
				snap := newSnap()
				snap.Status.VirtualMachineSnapshotName = "s1"
				return &snapScope{snap: snap, wukongMissing: true, vms: doneVMS(), content: content()}
			},
			want: want{ready: "True", reason: v1alpha1.ReasonReadyToUse, msgHas: []string{"taken while the VM was stopped"}},
		},
		{
			name: "name conflict",
			scope: func() *snapScope {
				return &snapScope{snap: newSnap(), conflict: true}
			},
			want: want{ready: "False", reason: v1alpha1.ReasonNameConflict, stalled: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.scope()
			res := computeSnapshotStatus(s)
			c := conditions.Get(s.snap, v1alpha1.ReadyCondition)
			require.NotNil(t, c)
			assert.Equal(t, tc.want.ready, c.Status)
			assert.Equal(t, tc.want.reason, c.Reason)
			for _, m := range tc.want.msgHas {
				assert.Contains(t, c.Message, m)
			}
			assert.Equal(t, tc.want.stalled, conditions.IsTrue(s.snap, v1alpha1.StalledCondition), "Stalled")
			assert.Equal(t, tc.want.reconciling, conditions.IsTrue(s.snap, v1alpha1.ReconcilingCondition), "Reconciling")
			assert.Equal(t, tc.want.requeue, res.RequeueAfter > 0, "requeue")
			assert.NoError(t, conditions.Check(s.snap), "kstatus rules")
		})
	}
}

// TestSnapshotDisks: volume backups become disks under spec.disks names,
// with the VolumeSnapshot's restoreSize when reported, else the claim's
// request, and their sum.
func TestSnapshotDisks(t *testing.T) {
	spec := &wukongWithDisks().Spec
	disks, total := snapshotDisks(content(), spec, map[string]resource.Quantity{"vmsnapshot-1-volume-data": resource.MustParse("6Gi")})
	want := []v1alpha1.SnapshotDisk{
		{Name: "data", ClaimName: "vm-data", VolumeSnapshotName: "vmsnapshot-1-volume-data", ReadyToUse: ptr.To(true), RestoreSize: ptr.To(resource.MustParse("6Gi"))},
		{Name: "root", ClaimName: "vm-root", VolumeSnapshotName: "vmsnapshot-1-volume-root", ReadyToUse: ptr.To(true), RestoreSize: ptr.To(resource.MustParse("10Gi"))},
	}
	if diff := cmp.Diff(want, disks, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("disks (-want +got):\n%s", diff)
	}
	require.NotNil(t, total)
	assert.Equal(t, 0, total.Cmp(resource.MustParse("16Gi")), "total %s", total)
}

func TestMirrorVMSnapshotIndications(t *testing.T) {
	vms := doneVMS(snapshotv1.VMSnapshotOnlineSnapshotIndication)
	vms.Status.SourceIndications = []snapshotv1.SourceIndication{{Indication: snapshotv1.VMSnapshotNoGuestAgentIndication}}
	st := &v1alpha1.WukongSnapshotStatus{}
	mirrorVMSnapshot(st, vms)
	assert.Equal(t, []v1alpha1.SnapshotIndication{v1alpha1.IndicationNoGuestAgent, v1alpha1.IndicationOnline}, st.Indications)
	require.NotNil(t, st.Frozen)
	assert.False(t, *st.Frozen)
	assert.Equal(t, v1alpha1.ConsistencyCrash, st.Consistency)
	assert.Equal(t, "vmsnapshot-content-1", st.VirtualMachineSnapshotContentName)
}

func TestComputeRestoreStatus(t *testing.T) {
	w := wukongWithDisks()
	readySnap := func() *v1alpha1.WukongSnapshot {
		s := newSnap()
		s.Status.ReadyToUse, s.Status.VirtualMachineSnapshotName, s.Status.WukongUID = ptr.To(true), "s1", w.UID
		return s
	}
	rst := func() *v1alpha1.WukongRestore {
		return &v1alpha1.WukongRestore{ObjectMeta: metav1.ObjectMeta{Name: "r1", Namespace: "team-a"},
			Spec: v1alpha1.WukongRestoreSpec{WukongName: "vm", SnapshotName: "s1"}}
	}
	vm := &kubevirtv1.VirtualMachine{}
	vmr := func(complete bool) *snapshotv1.VirtualMachineRestore {
		return &snapshotv1.VirtualMachineRestore{ObjectMeta: metav1.ObjectMeta{Name: "r1"}, Status: &snapshotv1.VirtualMachineRestoreStatus{
			Complete: ptr.To(complete),
			Restores: []snapshotv1.VolumeRestore{{VolumeName: "root", PersistentVolumeClaimName: "vm-root", VolumeSnapshotName: "vmsnapshot-1-volume-root"}},
		}}
	}
	otherUID := readySnap()
	otherUID.Status.WukongUID = "old-uid"
	cases := []struct {
		name    string
		scope   *restoreScope
		phase   v1alpha1.RestorePhase
		reason  string
		stalled bool
		msgHas  string
	}{
		{"no Wukong", &restoreScope{rst: rst(), wukongMissing: true, snap: readySnap()}, v1alpha1.RestorePending, v1alpha1.ReasonWukongNotFound, true, `no Wukong "vm" in this namespace`},
		{"no snapshot", &restoreScope{rst: rst(), wukong: w, snapMissing: true}, v1alpha1.RestorePending, v1alpha1.ReasonSnapshotNotFound, true, `no WukongSnapshot "s1" in this namespace`},
		{"snapshot of a deleted Wukong of the same name", &restoreScope{rst: rst(), wukong: w, snap: otherUID, vm: vm}, v1alpha1.RestorePending, v1alpha1.ReasonSnapshotOfOtherWukong, true, "not of Wukong vm"},
		{"running, WaitEventually: stop it first", &restoreScope{rst: rst(), wukong: w, snap: readySnap(), vm: vm, running: true}, v1alpha1.RestorePending, v1alpha1.ReasonTargetRunning, false, "stop the Wukong first"},
		{"KubeVirt at work", &restoreScope{rst: rst(), wukong: w, snap: readySnap(), vm: vm, vmr: vmr(false)}, v1alpha1.RestoreInProgress, v1alpha1.ReasonRestoring, false, "VirtualMachineRestore r1"},
		{"complete and restarted", &restoreScope{rst: rst(), wukong: w, snap: readySnap(), vm: vm, vmr: vmr(true), restarted: true}, v1alpha1.RestoreSucceeded, v1alpha1.ReasonRestored, false, "1 disk(s) restored"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			computeRestoreStatus(tc.scope)
			r := tc.scope.rst
			assert.Equal(t, tc.phase, r.Status.Phase)
			assert.Equal(t, tc.reason, conditions.GetReason(r, v1alpha1.ReadyCondition))
			assert.Contains(t, conditions.GetMessage(r, v1alpha1.ReadyCondition), tc.msgHas)
			assert.Equal(t, tc.stalled, conditions.IsTrue(r, v1alpha1.StalledCondition))
			assert.NoError(t, conditions.Check(r))
		})
	}
	done := &restoreScope{rst: rst(), wukong: w, snap: readySnap(), vm: vm, vmr: vmr(true), restarted: true}
	computeRestoreStatus(done)
	assert.Equal(t, []v1alpha1.RestoredDisk{{Name: "root", ClaimName: "vm-root", VolumeSnapshotName: "vmsnapshot-1-volume-root"}}, done.rst.Status.Disks)
}
