package controller

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestRestrictInstancetypes: the Namespace annotation lists the cluster
// instance types a Wukong may name (blanks ignored, empty: none); without
// it, or for a namespaced instance type, nothing is restricted.
func TestRestrictInstancetypes(t *testing.T) {
	scheme := testScheme(t, corev1.AddToScheme)
	ann := func(v string) map[string]string {
		return map[string]string{v1alpha1.AnnotationAllowedClusterInstancetypes: v}
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		kind        string
		restrict    bool
		allowed     []string
	}{
		{name: "no annotation"},
		{name: "a list", annotations: ann("u1.small, u1.medium,,"), restrict: true, allowed: []string{"u1.small", "u1.medium"}},
		{name: "empty: none", annotations: ann(""), restrict: true},
		{name: "namespaced kind", annotations: ann("u1.small"), kind: kubevirt.KindInstancetype},
		{name: "the cluster kind spelled out", annotations: ann("u1.small"), kind: kubevirt.KindClusterInstancetype, restrict: true, allowed: []string{"u1.small"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Annotations: tc.annotations}}
			r := &WukongReconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(ns).Build()}
			m := kubevirt.Machine{Instancetype: &kubevirt.Matcher{Kind: tc.kind, Name: "u1.large"}}
			require.NoError(t, r.restrictInstancetypes(context.Background(), "team-a", &m))
			assert.Equal(t, tc.restrict, m.RestrictClusterInstancetypes)
			assert.Equal(t, tc.allowed, m.AllowedClusterInstancetypes)
		})
	}
	r := &WukongReconciler{Client: fake.NewClientBuilder().WithScheme(scheme).Build()}
	m := kubevirt.Machine{Instancetype: &kubevirt.Matcher{Name: "u1.large"}}
	require.Error(t, r.restrictInstancetypes(context.Background(), "gone", &m), "a failed lookup is retried, not read as allowed")
}

// TestInstancetypeProblems: the lib's instance type failures go through
// the failures table to Stalled problems naming spec.instancetype.name or
// spec.preference.name; not allowed reads the same for an existing and a
// missing instance type.
func TestInstancetypeProblems(t *testing.T) {
	w := testWukong()
	w.Spec.Instancetype = &v1alpha1.InstancetypeRef{Kind: v1alpha1.KindInstancetype, Name: "small"}
	on := func(reason string, err error, field string) problem {
		return problemOf(fromKubeVirt, w, apply.Stalled(reason, err).On("", field))
	}
	a := on(kubevirt.ReasonInstancetypeNotAllowed, &kubevirt.InstancetypeNotAllowedError{Name: "u1.large"}, "instancetype.name")
	assert.Equal(t, problem{Condition: v1alpha1.ReadyCondition, Reason: v1alpha1.ReasonInstancetypeNotAllowed, Field: "spec.instancetype.name", External: true,
		Message: `VirtualMachineClusterInstancetype "u1.large" is not one this namespace may use (an administrator lists them in the Namespace annotation ` +
			`vm.novasphere.dev/allowed-cluster-instancetypes): name another, or a VirtualMachineInstancetype of this namespace`}, a)

	nf := on(kubevirt.ReasonInstancetypeNotFound, &kubevirt.ReferenceNotFoundError{Field: "instancetype", Kind: kubevirt.KindInstancetype, Name: "small"}, "instancetype.name")
	assert.Equal(t, v1alpha1.ReasonInstancetypeNotFound, nf.Reason)
	assert.Equal(t, "spec.instancetype.name", nf.Field)
	assert.Equal(t, `VirtualMachineInstancetype "small" not found in namespace ns: create it, or name another`, nf.Message)

	pf := on(kubevirt.ReasonPreferenceNotFound, &kubevirt.ReferenceNotFoundError{Field: "preference", Kind: kubevirt.KindClusterPreference, Name: "fedora"}, "preference.name")
	assert.Equal(t, "spec.preference.name", pf.Field)
	assert.Equal(t, `VirtualMachineClusterPreference "fedora" not found in the cluster: create it, or name another`, pf.Message)
}

// TestResourcesStatus: status.resources is what the lib resolved; without
// it the spec (with the defaults) for a Wukong without an instance type,
// and the last shown value while the same instance type is named.
func TestResourcesStatus(t *testing.T) {
	w := testWukong()
	st := resourcesStatus(w, &scope{w: w})
	require.NotNil(t, st)
	assert.Equal(t, int32(1), st.CPU)
	assert.Equal(t, "1Gi", st.Memory.String())
	assert.Equal(t, v1alpha1.ResourcesFromSpec, st.Source)

	w.Spec.CPU, w.Spec.Memory = 3, resource.MustParse("3Gi")
	st = resourcesStatus(w, &scope{w: w})
	assert.Equal(t, int32(3), st.CPU)
	assert.Equal(t, "3Gi", st.Memory.String())

	w.Spec.CPU, w.Spec.Memory = 0, resource.Quantity{}
	w.Spec.Instancetype = &v1alpha1.InstancetypeRef{Name: "u1.medium"}
	assert.Nil(t, resourcesStatus(w, &scope{w: w}), "nothing resolved yet")
	mem := resource.MustParse("4Gi")
	w.Status.Resources = &v1alpha1.ResourcesStatus{CPU: 1, Memory: &mem, Source: v1alpha1.ResourcesFromInstancetype,
		Instancetype: &v1alpha1.InstancetypeRef{Kind: v1alpha1.KindClusterInstancetype, Name: "u1.medium"}}
	assert.Same(t, w.Status.Resources, resourcesStatus(w, &scope{w: w}), "kept while the same instance type is named")
	w.Spec.Instancetype.Name = "u1.large"
	assert.Nil(t, resourcesStatus(w, &scope{w: w}), "not kept for another one")
}
