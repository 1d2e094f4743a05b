package conditions_test

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/conditions"
)

// A controller records what it observed, summarizes it into Ready and says
// whether it is still working (Reconciling) or stuck (Stalled).
func Example() {
	restore := conditions.Now
	defer func() { conditions.Now = restore }()
	conditions.Now = func() metav1.Time { return metav1.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

	w := &widget{ObjectMeta: metav1.ObjectMeta{Name: "vm1", Generation: 2}}

	conditions.MarkTrue(w, "VolumesBound", "Bound", "%d volumes bound", 2)
	conditions.MarkFalse(w, "NetworksConfigured", "NADMissing", "network attachment %q not found", "lan")
	conditions.SetSummary(w, conditions.ReadyCondition, "NetworksConfigured", "VolumesBound")
	conditions.MarkStalled(w, "NADMissing", "network attachment %q not found", "lan")
	w.Status.ObservedGeneration = w.Generation

	for _, c := range w.Status.Conditions {
		fmt.Printf("%s=%s %s %q gen=%d\n", c.Type, c.Status, c.Reason, c.Message, c.ObservedGeneration)
	}
	fmt.Println("check:", conditions.Check(w))

	// The user fixes the network; the next pass is clean.
	conditions.MarkTrue(w, "NetworksConfigured", "Configured", "")
	conditions.SetSummary(w, conditions.ReadyCondition, "NetworksConfigured", "VolumesBound")
	conditions.ClearProgress(w)
	fmt.Println("ready:", conditions.IsTrue(w, conditions.ReadyCondition), conditions.GetReason(w, conditions.ReadyCondition))

	// Output:
	// Ready=False NADMissing "network attachment \"lan\" not found" gen=2
	// NetworksConfigured=False NADMissing "network attachment \"lan\" not found" gen=2
	// Stalled=True NADMissing "network attachment \"lan\" not found" gen=2
	// VolumesBound=True Bound "2 volumes bound" gen=2
	// check: <nil>
	// ready: true Succeeded
}
