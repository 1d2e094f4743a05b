package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// selector is a nodeSelector / matchLabels block of n entries, each key and
// value as long as given, indented by indent spaces.
func selector(indent string, n, keyLen, valueLen int) string {
	var b strings.Builder
	for i := range n {
		key := fmt.Sprintf("k%d", i)
		key += strings.Repeat("k", max(0, keyLen-len(key)))
		value := strings.Repeat("v", valueLen)
		fmt.Fprintf(&b, "%s%s: %q\n", indent, key, value)
	}
	return b.String()
}

func tolerations(n int, key, value string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "    - key: %s%d\n      operator: Equal\n      value: %q\n      effect: NoSchedule\n", key, i, value)
	}
	return b.String()
}

// TestSizeBounds: every list and map a tenant fills in a Wukong, and the
// NodeBridge's selectors, have a bound the API server enforces (#28: a
// Wukong of 898 KiB with 20,000 nodeSelector entries was accepted, and the
// manager caches every Wukong). The bounds sit far above real use: 64
// nodeSelector entries, 32 tolerations, label-sized keys and values.
func TestSizeBounds(t *testing.T) {
	ns := newNamespace(t)
	long := strings.Repeat("k", 318)
	checkAdmission(t, []admissionCase{
		{"64 nodeSelector entries of the longest label key and value", "spec:\n  highAvailability:\n    nodeSelector:\n" + selector("      ", 64, 317, 63), true, "", ""},
		{"65 nodeSelector entries", "spec:\n  highAvailability:\n    nodeSelector:\n" + selector("      ", 65, 8, 8), false, "spec.highAvailability.nodeSelector", "must have at most 64 items"},
		{"20,000 nodeSelector entries", "spec:\n  highAvailability:\n    nodeSelector:\n" + selector("      ", 20000, 8, 8), false, "spec.highAvailability.nodeSelector", "must have at most 64 items"},
		{"nodeSelector key too long", "spec:\n  highAvailability:\n    nodeSelector:\n      " + long + ": v\n", false, "spec.highAvailability.nodeSelector", "at most 317"},
		{"nodeSelector value too long", "spec:\n  highAvailability:\n    nodeSelector:\n" + selector("      ", 1, 8, 64), false, "spec.highAvailability.nodeSelector", "at most 63"},
		{"32 tolerations", "spec:\n  highAvailability:\n    tolerations:\n" + tolerations(32, "example.com/t", strings.Repeat("v", 63)), true, "", ""},
		{"33 tolerations", "spec:\n  highAvailability:\n    tolerations:\n" + tolerations(33, "t", "v"), false, "spec.highAvailability.tolerations", "must have at most 32 items"},
		{"toleration key too long", "spec:\n  highAvailability:\n    tolerations:\n" + tolerations(1, long, "v"), false, "spec.highAvailability.tolerations", "key is at most 317"},
		{"toleration value too long", "spec:\n  highAvailability:\n    tolerations:\n" + tolerations(1, "t", strings.Repeat("v", 64)), false, "spec.highAvailability.tolerations", "value at most 63"},
	}, numberedWukongs(ns, "bound"))
}

// TestNodeBridgeSizeBounds: a NodeBridge's node and namespace selectors
// are bounded like a Wukong's nodeSelector.
func TestNodeBridgeSizeBounds(t *testing.T) {
	long := strings.Repeat("k", 318)
	checkAdmission(t, []admissionCase{
		{"64 nodeSelector entries", "nodeSelector:\n" + selector("  ", 64, 317, 63), true, "", ""},
		{"65 nodeSelector entries", "nodeSelector:\n" + selector("  ", 65, 8, 8), false, "spec.nodeSelector", "must have at most 64 items"},
		{"nodeSelector key too long", "nodeSelector:\n  " + long + ": v\n", false, "spec.nodeSelector", "at most 317"},
		{"64 matchLabels", "namespaceSelector:\n  matchLabels:\n" + selector("    ", 64, 317, 63), true, "", ""},
		{"65 matchLabels", "namespaceSelector:\n  matchLabels:\n" + selector("    ", 65, 8, 8), false, "spec.namespaceSelector.matchLabels", "at most 64 entries"},
		{"matchLabels value too long", "namespaceSelector:\n  matchLabels:\n" + selector("    ", 1, 8, 64), false, "spec.namespaceSelector.matchLabels", "values of at most 63"},
		{"32 matchExpressions of 64 values", "namespaceSelector:\n  matchExpressions:\n" + expressions(32, 64), true, "", ""},
		{"33 matchExpressions", "namespaceSelector:\n  matchExpressions:\n" + expressions(33, 1), false, "spec.namespaceSelector.matchExpressions", "at most 32 entries"},
		{"65 values", "namespaceSelector:\n  matchExpressions:\n" + expressions(1, 65), false, "spec.namespaceSelector.matchExpressions", "at most 64 values"},
	}, func(t *testing.T, i int, spec string) error {
		return createCleaned(t, fmt.Sprintf("apiVersion: vm.novasphere.dev/v1alpha1\nkind: NodeBridge\nmetadata:\n  name: bnd%d\nspec:\n  uplinks: [eth1]\n", i)+
			indent(spec, "  "))
	})
}

// admissionCase is a spec fragment and the API server's answer: accepted
// (ok), or refused as Invalid with a message containing field and msg.
type admissionCase struct {
	name, spec string
	ok         bool
	field, msg string
}

// checkAdmission creates the object create makes of each case's spec (i is
// the case's index, for a unique name) and checks the API server's answer.
func checkAdmission(t *testing.T, cases []admissionCase, create func(t *testing.T, i int, spec string) error) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireAdmission(t, create(t, i, tc.spec), tc.ok, tc.field, tc.msg)
		})
	}
}

func expressions(n, values int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - key: k%d\n    operator: In\n    values:\n", i)
		for j := range values {
			fmt.Fprintf(&b, "    - v%d\n", j)
		}
	}
	return b.String()
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// createCleaned creates the object of a YAML manifest (deleted when the
// test ends, if created) and returns the API server's answer.
func createCleaned(t *testing.T, manifest string) error {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(manifest), &u.Object))
	err := k8s.Create(context.Background(), u)
	if err == nil {
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), u) })
	}
	return err
}

// requireAdmission: with ok the API server accepted the object; otherwise
// it refused it as Invalid with a message containing every one of want
// (the field path, the rule's message).
func requireAdmission(t *testing.T, err error, ok bool, want ...string) {
	t.Helper()
	if ok {
		require.NoError(t, err)
		return
	}
	require.Error(t, err, "manifest was accepted")
	require.True(t, apierrors.IsInvalid(err), "want Invalid, got %v", err)
	requireRefused(t, err, want...)
}

// requireRefused: the API server refused the object (as Invalid, or, for
// strict field validation, as a bad request) with a message containing
// every one of want.
func requireRefused(t *testing.T, err error, want ...string) {
	t.Helper()
	require.Error(t, err, "manifest was accepted")
	for _, w := range want {
		require.Contains(t, err.Error(), w)
	}
}
