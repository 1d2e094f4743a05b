package apply_test

import (
	"fmt"

	"github.com/novasphere/wukong/lib/apply"
)

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
