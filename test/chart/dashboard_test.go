package chart

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// TestDashboardRender: the dashboard ConfigMap is off by default; enabled,
// it carries the sidecar's label, the chosen namespace and annotations, and
// dashboards/wukong.json verbatim.
func TestDashboardRender(t *testing.T) {
	rel, err := render(t, nil)
	require.NoError(t, err)
	assert.NotContains(t, parse(t, rel.Manifest), "ConfigMap/wukong-dashboard")

	rel, err = render(t, map[string]any{"grafanaDashboard": map[string]any{
		"enabled": true, "namespace": "monitoring", "annotations": map[string]any{"grafana_folder": "VMs"},
	}})
	require.NoError(t, err)
	cm := get[corev1.ConfigMap](t, parse(t, rel.Manifest), "ConfigMap/wukong-dashboard")
	assert.Equal(t, "monitoring", cm.Namespace)
	assert.Equal(t, "1", cm.Labels["grafana_dashboard"])
	assert.Equal(t, "wukong", cm.Labels["app.kubernetes.io/instance"])
	assert.Equal(t, map[string]string{"grafana_folder": "VMs"}, cm.Annotations)
	want, err := os.ReadFile(repoPath(t, "charts", "wukong", "dashboards", "wukong.json"))
	require.NoError(t, err)
	assert.JSONEq(t, string(want), cm.Data["wukong.json"])

	rel, err = render(t, map[string]any{"grafanaDashboard": map[string]any{
		"enabled": true, "labels": map[string]any{"dashboards": "wukong"},
	}})
	require.NoError(t, err)
	cm = get[corev1.ConfigMap](t, parse(t, rel.Manifest), "ConfigMap/wukong-dashboard")
	assert.Equal(t, "wukong-system", cm.Namespace)
	assert.Equal(t, "wukong", cm.Labels["dashboards"])

	_, err = render(t, map[string]any{"grafanaDashboard": map[string]any{"enabled": "true"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "grafanaDashboard")
}
