package controller

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestStalledRetryAfter(t *testing.T) {
	clock := newClock()
	stalledFor := func(d time.Duration) *metav1.Condition {
		return &metav1.Condition{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonStorageClassNotFound, ObservedGeneration: 3,
			LastTransitionTime: metav1.NewTime(clock.now().Add(-d))}
	}
	with := func(c *metav1.Condition, f func(*metav1.Condition)) *metav1.Condition { f(c); return c }
	defaults := StalledRetry{Now: clock.now}
	for _, tc := range []struct {
		name  string
		retry StalledRetry
		prev  *metav1.Condition
		// reason and generation of this pass (default: prev's).
		reason     string
		generation int64
		want       time.Duration
	}{
		{name: "newly Stalled: no condition before", retry: defaults, prev: nil, want: time.Minute},
		{name: "newly Stalled: was False", retry: defaults,
			prev: with(stalledFor(time.Hour), func(c *metav1.Condition) { c.Status = metav1.ConditionFalse }), want: time.Minute},
		{name: "Stalled for 10s waits the base", retry: defaults, prev: stalledFor(10 * time.Second), want: time.Minute},
		{name: "Stalled for 1m waits 1m", retry: defaults, prev: stalledFor(time.Minute), want: time.Minute},
		{name: "Stalled for 2m waits 2m (the next pass at 4m)", retry: defaults, prev: stalledFor(2 * time.Minute), want: 2 * time.Minute},
		{name: "Stalled for 4m waits 4m", retry: defaults, prev: stalledFor(4 * time.Minute), want: 4 * time.Minute},
		{name: "Stalled for 16m waits 16m", retry: defaults, prev: stalledFor(16 * time.Minute), want: 16 * time.Minute},
		{name: "Stalled for 32m waits the cap", retry: defaults, prev: stalledFor(32 * time.Minute), want: 30 * time.Minute},
		{name: "Stalled for a week waits the cap", retry: defaults, prev: stalledFor(7 * 24 * time.Hour), want: 30 * time.Minute},
		{name: "another reason starts over", retry: defaults, prev: stalledFor(time.Hour),
			reason: v1alpha1.ReasonNADNotFound, want: time.Minute},
		{name: "a new generation (spec change) starts over", retry: defaults, prev: stalledFor(time.Hour),
			generation: 4, want: time.Minute},
		{name: "no transition time waits the base", retry: defaults,
			prev: with(stalledFor(time.Hour), func(c *metav1.Condition) { c.LastTransitionTime = metav1.Time{} }), want: time.Minute},
		{name: "a clock behind the transition time waits the base", retry: defaults, prev: stalledFor(-time.Hour), want: time.Minute},
		{name: "own base and cap", retry: StalledRetry{Base: time.Second, Max: 10 * time.Second, Now: clock.now},
			prev: stalledFor(3 * time.Second), want: 3 * time.Second},
		{name: "own cap", retry: StalledRetry{Base: time.Second, Max: 10 * time.Second, Now: clock.now},
			prev: stalledFor(time.Minute), want: 10 * time.Second},
		{name: "a cap below the base is the base", retry: StalledRetry{Base: time.Hour, Max: time.Minute, Now: clock.now},
			prev: stalledFor(3 * time.Hour), want: time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, generation := tc.reason, tc.generation
			if reason == "" {
				reason = v1alpha1.ReasonStorageClassNotFound
			}
			if generation == 0 {
				generation = 3
			}
			assert.Equal(t, tc.want, tc.retry.After(tc.prev, reason, generation))
		})
	}
}

// TestStalledRetrySchedule follows the waits of a Wukong that stays Stalled
// for a day: they double from the base to the cap, and the passes of an
// hour stay few.
func TestStalledRetrySchedule(t *testing.T) {
	clock := newClock()
	start := clock.now()
	retry := StalledRetry{Now: clock.now}
	var prev *metav1.Condition
	var waits []time.Duration
	passes := map[int]int{} // by hour
	for clock.now().Sub(start) < 24*time.Hour {
		passes[int(clock.now().Sub(start)/time.Hour)]++
		d := retry.After(prev, v1alpha1.ReasonStorageClassNotFound, 1)
		if prev == nil {
			prev = &metav1.Condition{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue,
				Reason: v1alpha1.ReasonStorageClassNotFound, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(start)}
		}
		if len(waits) < 8 {
			waits = append(waits, d)
		}
		clock.add(d)
	}
	m := time.Minute
	assert.Equal(t, []time.Duration{m, m, 2 * m, 4 * m, 8 * m, 16 * m, 30 * m, 30 * m}, waits)
	assert.Equal(t, 7, passes[0], "passes in the first hour (at 0, 1, 2, 4, 8, 16 and 32 minutes)")
	for h := 1; h < 24; h++ {
		assert.Equal(t, 2, passes[h], "passes in hour %d", h)
	}
}

// TestStalledClassUsers: a StorageClass event wakes the Stalled Wukongs
// whose disks name it, and, for a class marked default, those naming none;
// Wukongs that are not Stalled are left alone.
func TestStalledClassUsers(t *testing.T) {
	wk := func(name string, stalled bool, classes ...string) *v1alpha1.Wukong {
		w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		for i, c := range classes {
			w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: fmt.Sprintf("d%d", i), Size: resource.MustParse("1Gi"), StorageClassName: c})
		}
		if stalled {
			w.Status.Conditions = []metav1.Condition{{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonStorageClassNotFound}}
		}
		return w
	}
	scheme := testScheme(t, v1alpha1.AddToScheme)
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&v1alpha1.Wukong{}, indexStorageClasses, wukongIndex(storageClassesOf)).
		WithObjects(wk("gold-stalled", true, "gold", "gold"), wk("gold-fine", false, "gold"),
			wk("default-stalled", true, ""), wk("silver-stalled", true, "silver", "")).
		Build()
	r := &WukongReconciler{Client: c}
	names := func(o client.Object) []string {
		var out []string
		for _, req := range r.stalledClassUsers(context.Background(), o) {
			out = append(out, req.Name)
		}
		sort.Strings(out)
		return out
	}
	class := func(name string, isDefault bool) *storagev1.StorageClass {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if isDefault {
			sc.Annotations = map[string]string{storage.AnnotationDefaultClass: "true"}
		}
		return sc
	}
	assert.Equal(t, []string{"gold-stalled"}, names(class("gold", false)))
	assert.Equal(t, []string{"silver-stalled"}, names(class("silver", false)))
	assert.Equal(t, []string{"default-stalled", "silver-stalled"}, names(class("standard", true)))
	assert.Equal(t, []string{"default-stalled", "gold-stalled", "silver-stalled"}, names(class("gold", true)))
	assert.Empty(t, names(class("bronze", false)))
}

// TestStalledInstancetypeUsers: a cluster instance type or preference event
// wakes the Stalled Wukongs naming it (kind empty or the cluster kind),
// not those naming a namespaced one of that name, nor those not Stalled.
func TestStalledInstancetypeUsers(t *testing.T) {
	wk := func(name string, stalled bool, it, pref *v1alpha1.InstancetypeRef) *v1alpha1.Wukong {
		w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		w.Spec.Instancetype = it
		if pref != nil {
			w.Spec.Preference = &v1alpha1.PreferenceRef{Kind: pref.Kind, Name: pref.Name}
		}
		if stalled {
			w.Status.Conditions = []metav1.Condition{{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonInstancetypeNotFound}}
		}
		return w
	}
	ref := func(kind, name string) *v1alpha1.InstancetypeRef {
		return &v1alpha1.InstancetypeRef{Kind: kind, Name: name}
	}
	scheme := testScheme(t, v1alpha1.AddToScheme)
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&v1alpha1.Wukong{}, indexClusterInstancetypes, wukongIndex(clusterInstancetypesOf)).
		WithObjects(
			wk("medium-stalled", true, ref("", "u1.medium"), nil),
			wk("medium-explicit", true, ref(kubevirt.KindClusterInstancetype, "u1.medium"), nil),
			wk("medium-fine", false, ref("", "u1.medium"), nil),
			wk("medium-namespaced", true, ref(kubevirt.KindInstancetype, "u1.medium"), nil),
			wk("pref-stalled", true, nil, ref("", "fedora")),
		).Build()
	r := &WukongReconciler{Client: c}
	names := func(kind string, name string) []string {
		var out []string
		for _, req := range r.stalledInstancetypeUsers(kind)(context.Background(), &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name}}) {
			out = append(out, req.Name)
		}
		sort.Strings(out)
		return out
	}
	assert.Equal(t, []string{"medium-explicit", "medium-stalled"}, names(kubevirt.KindClusterInstancetype, "u1.medium"))
	assert.Equal(t, []string{"pref-stalled"}, names(kubevirt.KindClusterPreference, "fedora"))
	assert.Empty(t, names(kubevirt.KindClusterPreference, "u1.medium"))
	assert.Empty(t, names(kubevirt.KindClusterInstancetype, "u1.large"))
}
