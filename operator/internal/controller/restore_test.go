package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/kubevirt"
)

func TestKeepRestoredClaimVolumes(t *testing.T) {
	claimVol := func(name, claim string) kubevirtv1.Volume {
		return kubevirtv1.Volume{Name: name, VolumeSource: kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{
			PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
	}
	dvVol := func(name, dv string) kubevirtv1.Volume {
		return kubevirtv1.Volume{Name: name, VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: dv}}}
	}
	vm := func(vols ...kubevirtv1.Volume) *kubevirtv1.VirtualMachine {
		return &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
			Spec: kubevirtv1.VirtualMachineInstanceSpec{Volumes: vols}}}}
	}
	cases := []struct {
		name string
		live *kubevirtv1.VirtualMachine
		want []bool // DataVolume per disk (root, data)
	}{
		{"no VM yet: as built", nil, []bool{true, true}},
		{"dataVolume volumes: unchanged", vm(dvVol("root", "vm-root"), dvVol("data", "vm-data")), []bool{true, true}},
		{"restored: claim volumes of the disks' own claims are kept", vm(claimVol("root", "vm-root"), claimVol("data", "vm-data")), []bool{false, false}},
		{"a claim volume of another claim is drift: the spec wins", vm(claimVol("root", "other"), dvVol("data", "vm-data")), []bool{true, true}},
		{"only the restored disk changes", vm(dvVol("root", "vm-root"), claimVol("data", "vm-data")), []bool{true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := kubevirt.Machine{Disks: []kubevirt.Disk{{Name: "root", ClaimName: "vm-root", DataVolume: true}, {Name: "data", ClaimName: "vm-data", DataVolume: true}}}
			keepRestoredClaimVolumes(&m, tc.live)
			assert.Equal(t, tc.want, []bool{m.Disks[0].DataVolume, m.Disks[1].DataVolume})
		})
	}
}
