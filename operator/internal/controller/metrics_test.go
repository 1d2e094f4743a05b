package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestImportProgressMetric: wukong_import_progress_ratio has one series per
// importing disk, follows the progress, and loses the series of a disk that
// finished importing and of a Wukong that is gone.
func TestImportProgressMetric(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	w := testWukong()
	vol := func(name, phase, progress string) v1alpha1.VolumeStatus {
		return v1alpha1.VolumeStatus{Name: name, Phase: phase, Progress: progress}
	}
	ratio := func(disk string) float64 {
		return testutil.ToFloat64(m.progress.WithLabelValues("ns", "vm1", disk))
	}
	series := func() int { return testutil.CollectAndCount(m.progress) }

	w.Status.Volumes = []v1alpha1.VolumeStatus{vol("root", "Importing", "45.50%"), vol("data", "Importing", ""), vol("swap", "Bound", "")}
	m.observe(w)
	require.Equal(t, 2, series())
	assert.InDelta(t, 0.455, ratio("root"), 1e-9)
	assert.InDelta(t, 0, ratio("data"), 1e-9)

	w.Status.Volumes = []v1alpha1.VolumeStatus{vol("root", "Bound", "100.00%"), vol("data", "Importing", "12.00%"), vol("swap", "Bound", "")}
	m.observe(w)
	assert.Equal(t, 1, series(), "root finished importing")
	assert.InDelta(t, 0.12, ratio("data"), 1e-9)

	m.forget(types.NamespacedName{Namespace: "ns", Name: "vm1"})
	assert.Equal(t, 0, series(), "the Wukong is gone")

	problems, err := testutil.CollectAndLint(m.progress)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
