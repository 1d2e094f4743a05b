package mapping

import (
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// DiskOfVolume is the reverse of Machine for a VirtualMachine volume name
// KubeVirt reports (a VirtualMachineSnapshotContent's volumeBackups[].
// volumeName, a VirtualMachineRestore's restores[].volumeName, the VM's
// status.volumeSnapshotStatuses[].name): the index i of the disks[i] whose
// volume it is, and false for a volume that is no disk (the cloud-init
// one). lib/kubevirt names the volume of a disk like the disk
// (kubevirt.Disk.Name, BuildVM).
func DiskOfVolume(disks []v1alpha1.DiskSpec, volume string) (int, bool) {
	for i, d := range disks {
		if d.Name == volume {
			return i, true
		}
	}
	return 0, false
}
