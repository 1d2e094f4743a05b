package nodenet

import (
	"testing"

	"github.com/stretchr/testify/assert"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestVLANs(t *testing.T) {
	d := &v1alpha1.NodeBridge{Spec: v1alpha1.NodeBridgeSpec{AllowedVLANs: []v1alpha1.VLANRange{{Min: 10, Max: 20}, {Min: 30}}}}
	assert.Equal(t, "10-20,30", vlanList(d))
	assert.True(t, vlanAllowed(d, 30))
	assert.True(t, vlanAllowed(d, 15))
	assert.False(t, vlanAllowed(d, 25))
	assert.Equal(t, "untagged only", vlanList(&v1alpha1.NodeBridge{}))
}
