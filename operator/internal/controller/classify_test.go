package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// diskWukong has one disk, root, naming class (none when empty), and one
// NIC, lan.
func diskWukong(class string) *v1alpha1.Wukong {
	w := testWukong()
	w.Spec.Disks[0].StorageClassName = class
	return w
}

// testScheme is a scheme with the kinds of adders, for fake clients.
func testScheme(t *testing.T, adders ...func(*runtime.Scheme) error) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range adders {
		require.NoError(t, add(scheme))
	}
	return scheme
}

// failureOn is a stalled lib failure as a lib makes it: its reason and
// cause, the entry (NIC or disk name) and the lib's field at fault.
func failureOn(reason string, err error, subject, field string) *apply.Failure {
	return apply.Stalled(reason, err).On(subject, field)
}

// TestClassify: every lib failure is sorted in one place. A stalled failure
// the table knows gets Wukong's reason and field; one it does not know
// still stalls the Wukong with the lib's reason (never retried silently as
// transient); a waiting one (a predecessor's child) waits the time it
// gives; transient failures and plain API errors are returned for a retry.
func TestClassify(t *testing.T) {
	apiErr := errors.New("etcdserver: request timed out")
	tests := []struct {
		name            string
		err             error
		wantProblems    []problem
		wantTransient   error
		wantPredecessor string
	}{
		{name: "nil", err: nil},
		{name: "known stalled failure", err: apply.Stalled(storage.ReasonShrinkRefused, errors.New("boom")).On("root", "size"),
			wantProblems: []problem{{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonShrinkRefused, Field: "spec.disks[0].size", Message: "boom"}}},
		{name: "unknown stalled failure is a problem, not transient", err: apply.Stalled("SomethingNew", errors.New("the lib says no")).On("root", ""),
			wantProblems: []problem{{Condition: v1alpha1.VolumesBoundCondition, Reason: "SomethingNew", Field: "spec.disks[0]", Message: "the lib says no"}}},
		{name: "wrapped and joined", err: errors.Join(fmt.Errorf("disk %q: %w", "a", apply.Stalled("SomethingNew", errors.New("no"))), apiErr),
			wantProblems:  []problem{{Condition: v1alpha1.VolumesBoundCondition, Reason: "SomethingNew", Field: "spec.disks", Message: "no"}},
			wantTransient: apiErr},
		{name: "transient failure", err: apply.Transient(network.ReasonApplyFailed, apiErr), wantTransient: apiErr},
		{name: "plain API error", err: apiErr, wantTransient: apiErr},
		{name: "predecessor waits", err: apply.ConflictFailure(&apply.ConflictError{Kind: "PersistentVolumeClaim", Name: "vm1-root",
			Controller: &metav1.OwnerReference{Kind: "Wukong", Name: "vm1", UID: "old"}, Predecessor: true}), wantPredecessor: "PersistentVolumeClaim vm1-root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scope{w: diskWukong("")}
			rest := s.classify(tt.err, fromStorage)
			assert.Equal(t, tt.wantProblems, s.problems)
			if tt.wantTransient == nil {
				assert.NoError(t, rest)
			} else {
				assert.ErrorIs(t, rest, tt.wantTransient)
			}
			if tt.wantPredecessor != "" {
				assert.Contains(t, s.predecessor, tt.wantPredecessor)
				assert.Equal(t, apply.PredecessorRetry, s.requeueAfter)
			} else {
				assert.Empty(t, s.predecessor)
			}
		})
	}
}

// TestProblemOfMachine: lib/kubevirt's stalled failures map to Wukong's
// reasons and spec fields.
func TestProblemOfMachine(t *testing.T) {
	w := testWukong()
	p := problemOf(fromKubeVirt, w, apply.Stalled(kubevirt.ReasonKubeVirtNotInstalled, kubevirt.ErrKubeVirtNotInstalled))
	assert.Equal(t, v1alpha1.ReasonKubeVirtMissing, p.Reason)
	assert.True(t, p.External, "the fix is a CRD no watch reports")
	invalid := &kubevirt.InvalidInputError{Field: "containerDiskImage", Message: "bad"}
	p = problemOf(fromKubeVirt, w, apply.Stalled(kubevirt.ReasonInvalidInput, invalid).On("", invalid.Field))
	assert.Equal(t, problem{Condition: v1alpha1.ReadyCondition, Reason: v1alpha1.ReasonInvalidSpec, Field: "spec.osImage", Message: "bad"}, p)
	taken := &apply.ConflictError{Kind: "VirtualMachine", Namespace: "ns", Name: "vm1"}
	p = problemOf(fromKubeVirt, w, apply.ConflictFailure(taken))
	assert.Equal(t, problem{Condition: v1alpha1.ReadyCondition, Reason: v1alpha1.ReasonNameConflict, Field: "metadata.name",
		Message: taken.Error() + ": rename or remove it, or rename this Wukong or its entry", External: true}, p)
}

// TestProblemOfDisk: what CDI reports without an API error names the field
// to fix; the boot disk without an image names spec.osImage.
func TestProblemOfDisk(t *testing.T) {
	w := diskWukong("")
	w.Spec.OSImage = "quay.io/a/b:1"
	p := problemOf(fromStorage, w, apply.Stalled(storage.ReasonImportFailed, errors.New("404")).On("root", "source"))
	assert.Equal(t, problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonImportFailed, Field: "spec.osImage", Message: "404"}, p)
	p = problemOf(fromStorage, w, apply.Stalled(storage.ReasonCDINotInstalled, storage.ErrCDINotInstalled).On("root", "source"))
	assert.Equal(t, "spec.osImage", p.Field, "the boot disk imports spec.osImage, it has no image")
	p = problemOf(fromStorage, w, apply.Stalled(storage.ReasonDiskTooSmall, errors.New("A larger PVC is required")).On("root", "size"))
	assert.Equal(t, "spec.disks[0].size", p.Field)
	assert.Equal(t, "the image is bigger than the disk: grow spec.disks[0].size (CDI retries the import): A larger PVC is required", p.Message)
	p = problemOf(fromStorage, w, apply.Stalled(storage.ReasonStorageClassNotFound, storage.ErrNoDefaultClass).On("root", "storageClassName"))
	assert.Equal(t, "no StorageClass is named and the cluster has no default StorageClass", p.Message)
	p = problemOf(fromNetwork, w, apply.Stalled(network.ReasonInvalidAttachment,
		&network.InvalidAttachmentError{NIC: "lan", Field: "vlan", Reason: "out of range"}).On("lan", "vlan"))
	assert.Equal(t, problem{Condition: v1alpha1.NetworksConfiguredCondition, Reason: v1alpha1.ReasonInvalidNetwork,
		Field: "spec.networks[0].vlanId", Message: "out of range"}, p)
}

// TestProblemOfExistingClaim: a claim a disk names (claimName) that is
// missing, controlled by another object or too small stalls the Wukong
// naming spec.disks[i].claimName (or .size), retried on a timer (the
// user's claim is not watched).
func TestProblemOfExistingClaim(t *testing.T) {
	w := diskWukong("")
	w.Spec.Disks[0].ClaimName = "kept"
	p := problemOf(fromStorage, w, apply.Stalled(storage.ReasonClaimNotFound, &storage.ClaimNotFoundError{Name: "kept"}).On("root", "claimName"))
	assert.Equal(t, problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonClaimNotFound, Field: "spec.disks[0].claimName", External: true,
		Message: "PersistentVolumeClaim kept not found in this namespace: create it, or name another claim (a claim a deleted Wukong retained keeps its name, <wukong>-<disk>)"}, p)
	inUse := &storage.ClaimInUseError{Name: "kept", Kind: "DataVolume", Controller: "other-root"}
	p = problemOf(fromStorage, w, apply.Stalled(storage.ReasonClaimInUse, inUse).On("root", "claimName"))
	assert.Equal(t, problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonClaimInUse, Field: "spec.disks[0].claimName", External: true,
		Message: inUse.Error()}, p)
	p = problemOf(fromStorage, w, apply.Stalled(storage.ReasonClaimTooSmall, &storage.ClaimTooSmallError{Name: "kept"}).On("root", "size"))
	assert.Equal(t, v1alpha1.ReasonClaimTooSmall, p.Reason)
	assert.Equal(t, "spec.disks[0].size", p.Field)
}

// libReasons lists every Reason* constant of each lib's package (by name,
// with its value); TestFailuresCoverEveryLibReason checks the list against
// the packages' source, so a new reason cannot be missed. Under
// lib/kubevirt, the apply reasons it returns (apply.ConflictFailure).
var libReasons = map[source]map[string]string{
	fromNetwork: {
		"ReasonInvalidAttachment":   network.ReasonInvalidAttachment,
		"ReasonNADNotFound":         network.ReasonNADNotFound,
		"ReasonMultusNotInstalled":  network.ReasonMultusNotInstalled,
		"ReasonNameConflict":        network.ReasonNameConflict,
		"ReasonPredecessor":         network.ReasonPredecessor,
		"ReasonNamespaceNotAllowed": network.ReasonNamespaceNotAllowed,
		"ReasonApplyFailed":         network.ReasonApplyFailed,
		"ReasonPolicyPending":       network.ReasonPolicyPending,
		"ReasonUnsupportedCNI":      network.ReasonUnsupportedCNI,
		"ReasonNMStateNotInstalled": network.ReasonNMStateNotInstalled,
		"ReasonInvalidBridge":       network.ReasonInvalidBridge,
	},
	fromStorage: {
		"ReasonShrinkRefused":        storage.ReasonShrinkRefused,
		"ReasonExpansionNotAllowed":  storage.ReasonExpansionNotAllowed,
		"ReasonExpansionPendingBind": storage.ReasonExpansionPendingBind,
		"ReasonStorageClassNotFound": storage.ReasonStorageClassNotFound,
		"ReasonCDINotInstalled":      storage.ReasonCDINotInstalled,
		"ReasonInvalidDisk":          storage.ReasonInvalidDisk,
		"ReasonImportFailed":         storage.ReasonImportFailed,
		"ReasonClaimLost":            storage.ReasonClaimLost,
		"ReasonDiskTooSmall":         storage.ReasonDiskTooSmall,
		"ReasonNameConflict":         storage.ReasonNameConflict,
		"ReasonPredecessor":          storage.ReasonPredecessor,
		"ReasonClaimNotValid":        storage.ReasonClaimNotValid,
		"ReasonClaimNotFound":        storage.ReasonClaimNotFound,
		"ReasonClaimInUse":           storage.ReasonClaimInUse,
		"ReasonClaimTooSmall":        storage.ReasonClaimTooSmall,
		"ReasonImageAccessNotFound":  storage.ReasonImageAccessNotFound,
		"ReasonImageUntrusted":       storage.ReasonImageUntrusted,
		"ReasonImageUnauthorized":    storage.ReasonImageUnauthorized,
		"ReasonQuotaExceeded":        storage.ReasonQuotaExceeded,
	},
	fromKubeVirt: {
		"ReasonInvalidInput":           kubevirt.ReasonInvalidInput,
		"ReasonBindingNotRegistered":   kubevirt.ReasonBindingNotRegistered,
		"ReasonKubeVirtNotInstalled":   kubevirt.ReasonKubeVirtNotInstalled,
		"ReasonVirtualMachineMissing":  kubevirt.ReasonVirtualMachineMissing,
		"ReasonStopped":                kubevirt.ReasonStopped,
		"ReasonStopping":               kubevirt.ReasonStopping,
		"ReasonUnschedulable":          kubevirt.ReasonUnschedulable,
		"ReasonVolumesNotReady":        kubevirt.ReasonVolumesNotReady,
		"ReasonImagePullFailed":        kubevirt.ReasonImagePullFailed,
		"ReasonCrashLoopBackOff":       kubevirt.ReasonCrashLoopBackOff,
		"ReasonFailed":                 kubevirt.ReasonFailed,
		"ReasonPaused":                 kubevirt.ReasonPaused,
		"ReasonStarting":               kubevirt.ReasonStarting,
		"ReasonGuestNotReady":          kubevirt.ReasonGuestNotReady,
		"ReasonLauncherQuotaExceeded":  kubevirt.ReasonLauncherQuotaExceeded,
		"ReasonLauncherLimitRange":     kubevirt.ReasonLauncherLimitRange,
		"ReasonLauncherPodSecurity":    kubevirt.ReasonLauncherPodSecurity,
		"ReasonInstancetypeNotAllowed": kubevirt.ReasonInstancetypeNotAllowed,
		"ReasonInstancetypeNotFound":   kubevirt.ReasonInstancetypeNotFound,
		"ReasonPreferenceNotFound":     kubevirt.ReasonPreferenceNotFound,
		"ReasonSSHKeySecretNotFound":   kubevirt.ReasonSSHKeySecretNotFound,
		"ReasonPasswordSecretNotFound": kubevirt.ReasonPasswordSecretNotFound,
		"ReasonPasswordKeyNotFound":    kubevirt.ReasonPasswordKeyNotFound,
		"apply.ReasonNameConflict":     apply.ReasonNameConflict,
		"apply.ReasonPredecessor":      apply.ReasonPredecessor,
	},
}

// notWukong are the lib reasons of stalled failures only another
// controller's lib calls report, never a Wukong's steps, and whose.
var notWukong = map[failureKey]string{
	{fromNetwork, network.ReasonNMStateNotInstalled}: "a NodeBridge's (network.ReconcilePolicy): nodebridge.policyFailures",
	{fromNetwork, network.ReasonInvalidBridge}:       "a NodeBridge's (network.ReconcilePolicy): nodebridge.policyFailures",
}

// notStalled are the lib reasons no stalled *apply.Failure carries, and why.
var notStalled = map[failureKey]string{
	{fromNetwork, network.ReasonPredecessor}:             "waits (RequeueAfter)",
	{fromNetwork, network.ReasonApplyFailed}:             "transient: an API error, retried",
	{fromNetwork, network.ReasonPolicyPending}:           "an observation of a NodeNetworkConfigurationPolicy",
	{fromStorage, storage.ReasonPredecessor}:             "waits (RequeueAfter)",
	{fromStorage, storage.ReasonExpansionPendingBind}:    "an observation: growth waits for the claim to bind",
	{fromKubeVirt, apply.ReasonPredecessor}:              "waits (RequeueAfter)",
	{fromKubeVirt, kubevirt.ReasonVirtualMachineMissing}: "an observation of the VM (Observation.NotReadyReason)",
	{fromKubeVirt, kubevirt.ReasonStopped}:               "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonStopping}:              "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonUnschedulable}:         "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonVolumesNotReady}:       "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonImagePullFailed}:       "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonCrashLoopBackOff}:      "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonFailed}:                "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonPaused}:                "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonStarting}:              "an observation of the VM",
	{fromKubeVirt, kubevirt.ReasonGuestNotReady}:         "an observation of the VM",
}

// reasonConstants returns the names of the package-level Reason* constants
// in the non-test Go files of dir.
func reasonConstants(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files, dir)
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		file, err := parser.ParseFile(token.NewFileSet(), f, src, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Reason") {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestFailuresCoverEveryLibReason walks every reason constant of
// lib/network, lib/storage and lib/kubevirt through the failures table: a
// reason is a row, known not to stall (notStalled) or another
// controller's (notWukong), so a new lib reason without a row fails here. Each row gives a condition, Wukong's
// reason, a field on the Wukong and a message.
func TestFailuresCoverEveryLibReason(t *testing.T) {
	dirs := map[source]string{fromNetwork: "network", fromStorage: "storage", fromKubeVirt: "kubevirt"}
	for from, dir := range dirs {
		var listed []string
		for name := range maps.Keys(libReasons[from]) {
			if !strings.HasPrefix(name, "apply.") {
				listed = append(listed, name)
			}
		}
		slices.Sort(listed)
		assert.Equal(t, reasonConstants(t, filepath.Join("..", "..", "..", "lib", dir)), listed,
			"libReasons lists every Reason* constant of lib/%s", dir)
	}
	w := coverageWukong()
	spec := specJSON(t, w)
	// The entries a failure is about: under lib/storage the boot disk
	// importing spec.osImage and a disk with an image of its own.
	subjects := map[source][]string{fromNetwork: {"lan"}, fromStorage: {"root", "data"}, fromKubeVirt: {"lan"}}
	for from, reasons := range libReasons {
		for name, reason := range reasons {
			for _, subject := range subjects[from] {
				t.Run(dirs[from]+"."+name+"/"+subject, func(t *testing.T) {
					key := failureKey{from, reason}
					row, inTable := failures[key]
					why, skipped := notStalled[key]
					whose, elsewhere := notWukong[key]
					require.Equal(t, 1, count(inTable, skipped, elsewhere),
						"lib/%s %s: a row in failures, a reason in notStalled or in notWukong (only one): %q %q", dirs[from], reason, why, whose)
					if !inTable {
						return
					}
					p := problemOf(from, w, apply.Stalled(reason, errors.New("the lib's message")).On(subject, ""))
					assert.Equal(t, row.condition, p.Condition)
					assert.Equal(t, row.reason, p.Reason)
					assert.NotEmpty(t, p.Message)
					if from != fromKubeVirt || reason == kubevirt.ReasonBindingNotRegistered {
						assert.Regexp(t, `^spec\.(networks|disks)\[\d+\]|^spec\.osImage$`, p.Field)
					}
					if p.Field != "" {
						assert.True(t, setIn(spec, p.Field), "%s is not a field the fixture's Wukong sets: %v", p.Field, spec)
					}
					for _, c := range []string{v1alpha1.NetworksConfiguredCondition, v1alpha1.VolumesBoundCondition, v1alpha1.ReadyCondition} {
						if c == p.Condition {
							return
						}
					}
					t.Errorf("condition %q is not one a problem sets", p.Condition)
				})
			}
		}
	}
}

// count is how many of bs are true.
func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// coverageWukong is the Wukong TestFailuresCoverEveryLibReason reports
// on: testWukong (boot disk root, NIC lan) with spec.osImage, which root
// imports, a second disk, data, importing an image of its own, NIC lan's
// type as the CRD's default stores it, and the Secrets lib/kubevirt's
// failures name. A row naming a field none of them sets fails the test.
func coverageWukong() *v1alpha1.Wukong {
	w := testWukong()
	w.Spec.OSImage = "quay.io/a/b:1"
	w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "data", Size: resource.MustParse("20Gi"), Image: "https://images.example/data.img"})
	w.Spec.Networks[0].Type = v1alpha1.NetworkTypeBridge
	w.Spec.SSHKeySecret = "keys"
	w.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "user", PasswordSecretRef: &v1alpha1.PasswordSecretRef{Name: "pw", Key: "password"}}
	return w
}

// specJSON is w as the API server stores it: its JSON, decoded.
func specJSON(t *testing.T, w *v1alpha1.Wukong) map[string]any {
	t.Helper()
	raw, err := json.Marshal(w)
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(raw, &obj))
	return obj
}

// setIn reports whether path (e.g. spec.disks[1].image, as a problem's
// Field) names a value set in obj (specJSON).
func setIn(obj map[string]any, path string) bool {
	var cur any = obj
	for part := range strings.SplitSeq(path, ".") {
		name, index, indexed := strings.Cut(strings.TrimSuffix(part, "]"), "[")
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[name]; !ok {
			return false
		}
		if !indexed {
			continue
		}
		i, err := strconv.Atoi(index)
		list, ok := cur.([]any)
		if err != nil || !ok || i < 0 || i >= len(list) {
			return false
		}
		cur = list[i]
	}
	return true
}
