package apply_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/apply"
)

// Apply writes under the caller's identity only what differs: the first call
// creates, the second sends nothing, a changed field updates. k8s is a client
// of the API server this package's tests start (TestMain); any
// controller-runtime client with a scheme that knows the object's kind works.
func ExampleApply() {
	ctx := context.Background()
	id := apply.Identity{FieldManager: "my-controller", Domain: "example.com"}
	cm := func(v string) *corev1.ConfigMap {
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "example-apply", Labels: id.ManagedByLabels()},
			Data:       map[string]string{"greeting": v},
		}
	}
	for _, v := range []string{"hello", "hello", "bonjour"} {
		obj := cm(v)
		res, err := apply.Apply(ctx, k8s, obj, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res, obj.Data["greeting"], obj.Annotations[id.HashAnnotationKey()] != "")
	}
	_, err := apply.Apply(ctx, k8s, cm("x"), apply.Identity{Domain: "example.com"})
	fmt.Println(err)
	// Output:
	// created hello true
	// unchanged hello true
	// updated bonjour true
	// invalid identity: FieldManager is required
}

// Contains is the comparison Apply uses: the live object may carry more
// (defaults, other managers' fields), never less or different.
func ExampleContains() {
	live := map[string]any{"spec": map[string]any{"replicas": int64(3), "paused": false}}
	fmt.Println(apply.Contains(live, map[string]any{"spec": map[string]any{"replicas": float64(3)}}))
	fmt.Println(apply.Contains(live, map[string]any{"spec": map[string]any{"replicas": int64(2)}}))
	// Output:
	// true
	// false
}
