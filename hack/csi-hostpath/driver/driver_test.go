package driver

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// fakeMounter records bind mounts in memory.
type fakeMounter struct {
	mounts map[string]string // target -> source
	ro     map[string]bool
}

func newFakeMounter() *fakeMounter {
	return &fakeMounter{mounts: map[string]string{}, ro: map[string]bool{}}
}

func (f *fakeMounter) IsMountPoint(p string) (bool, error) { _, ok := f.mounts[p]; return ok, nil }
func (f *fakeMounter) Bind(src, target string, ro bool) error {
	f.mounts[target], f.ro[target] = src, ro
	return nil
}
func (f *fakeMounter) Unmount(target string) error { delete(f.mounts, target); return nil }

const node = "wukong-local"

func newDriver(t *testing.T) (*Driver, *fakeMounter) {
	t.Helper()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMounter()
	return &Driver{Name: "hostpath.csi.wukong.novasphere.dev", Version: "test", NodeID: node, Store: s, Mounter: m}, m
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

var rwo = mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

func code(err error) codes.Code { return status.Code(err) }

func TestCreateVolume(t *testing.T) {
	topo := func(n string) *csi.TopologyRequirement {
		return &csi.TopologyRequirement{Preferred: []*csi.Topology{{Segments: map[string]string{"topology.hostpath.csi.wukong.novasphere.dev/node": n}}}}
	}
	block := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	tests := []struct {
		name     string
		req      *csi.CreateVolumeRequest
		wantCode codes.Code
		wantSize int64
		wantMsg  string
	}{
		{name: "required bytes are the size",
			req:      &csi.CreateVolumeRequest{Name: "pvc-1", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 3 << 30}},
			wantSize: 3 << 30},
		{name: "no range gets the default",
			req:      &csi.CreateVolumeRequest{Name: "pvc-2", VolumeCapabilities: []*csi.VolumeCapability{rwo}},
			wantSize: DefaultCapacity},
		{name: "a small limit alone is the size",
			req:      &csi.CreateVolumeRequest{Name: "pvc-3", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{LimitBytes: 1 << 20}},
			wantSize: 1 << 20},
		{name: "this node in the topology",
			req:      &csi.CreateVolumeRequest{Name: "pvc-4", VolumeCapabilities: []*csi.VolumeCapability{rwo}, AccessibilityRequirements: topo(node)},
			wantSize: DefaultCapacity},
		{name: "another node only",
			req:      &csi.CreateVolumeRequest{Name: "pvc-5", VolumeCapabilities: []*csi.VolumeCapability{rwo}, AccessibilityRequirements: topo("other")},
			wantCode: codes.ResourceExhausted, wantMsg: "accessibility_requirements"},
		{name: "no name",
			req:      &csi.CreateVolumeRequest{VolumeCapabilities: []*csi.VolumeCapability{rwo}},
			wantCode: codes.InvalidArgument, wantMsg: "name"},
		{name: "no capabilities",
			req:      &csi.CreateVolumeRequest{Name: "pvc-6"},
			wantCode: codes.InvalidArgument, wantMsg: "volume_capabilities"},
		{name: "block refused",
			req:      &csi.CreateVolumeRequest{Name: "pvc-7", VolumeCapabilities: []*csi.VolumeCapability{block}},
			wantCode: codes.InvalidArgument, wantMsg: "block"},
		{name: "multi-node refused",
			req:      &csi.CreateVolumeRequest{Name: "pvc-8", VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}},
			wantCode: codes.InvalidArgument, wantMsg: "MULTI_NODE_MULTI_WRITER"},
		{name: "required above limit",
			req:      &csi.CreateVolumeRequest{Name: "pvc-9", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 2, LimitBytes: 1}},
			wantCode: codes.InvalidArgument, wantMsg: "limit_bytes"},
		{name: "a name that is a path",
			req:      &csi.CreateVolumeRequest{Name: "../etc", VolumeCapabilities: []*csi.VolumeCapability{rwo}},
			wantCode: codes.InvalidArgument, wantMsg: "name"},
		{name: "a clone of a missing volume",
			req: &csi.CreateVolumeRequest{Name: "pvc-10", VolumeCapabilities: []*csi.VolumeCapability{rwo},
				VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "pvc-1"}}}},
			wantCode: codes.NotFound, wantMsg: "volume_content_source.volume"},
		{name: "a volume from a missing snapshot",
			req: &csi.CreateVolumeRequest{Name: "pvc-11", VolumeCapabilities: []*csi.VolumeCapability{rwo},
				VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "snapshot-1"}}}},
			wantCode: codes.NotFound, wantMsg: "volume_content_source.snapshot"},
		{name: "an empty content source",
			req: &csi.CreateVolumeRequest{Name: "pvc-12", VolumeCapabilities: []*csi.VolumeCapability{rwo},
				VolumeContentSource: &csi.VolumeContentSource{}},
			wantCode: codes.InvalidArgument, wantMsg: "volume_content_source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := newDriver(t)
			resp, err := d.CreateVolume(context.Background(), tt.req)
			if code(err) != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", code(err), err, tt.wantCode)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not name %q", err, tt.wantMsg)
				}
				if _, statErr := os.Stat(d.Store.DataDir(tt.req.Name)); ValidID(tt.req.Name) && statErr == nil {
					t.Errorf("a refused CreateVolume left a directory")
				}
				return
			}
			v := resp.GetVolume()
			if v.GetVolumeId() != tt.req.Name || v.GetCapacityBytes() != tt.wantSize {
				t.Errorf("volume = %s %d, want %s %d", v.GetVolumeId(), v.GetCapacityBytes(), tt.req.Name, tt.wantSize)
			}
			if got := v.GetAccessibleTopology()[0].GetSegments()[d.TopologyKey()]; got != node {
				t.Errorf("topology = %q, want %q", got, node)
			}
			st, err := os.Stat(d.Store.DataDir(v.GetVolumeId()))
			if err != nil || !st.IsDir() || st.Mode().Perm() != 0o777 {
				t.Errorf("data dir: %v %v, want a 0777 directory", st, err)
			}
		})
	}
}

func TestCreateVolumeIdempotent(t *testing.T) {
	d, _ := newDriver(t)
	req := &csi.CreateVolumeRequest{Name: "pvc-a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}}
	if _, err := d.CreateVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Store.DataDir("pvc-a"), "disk.img"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := d.CreateVolume(context.Background(), req)
	if err != nil || again.GetVolume().GetCapacityBytes() != 1<<30 {
		t.Fatalf("retry = %v, %v; want the same volume", again, err)
	}
	if _, err := os.Stat(filepath.Join(d.Store.DataDir("pvc-a"), "disk.img")); err != nil {
		t.Errorf("a retried CreateVolume lost the data: %v", err)
	}
	// Names keep their case: "PVC-A" is another volume, not "pvc-a" again.
	upper, err := d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "PVC-A", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}})
	if err != nil || upper.GetVolume().GetVolumeId() != "PVC-A" || upper.GetVolume().GetCapacityBytes() != 2<<30 {
		t.Errorf("PVC-A = %v, %v; want a new 2Gi volume", upper, err)
	}
	bigger := &csi.CreateVolumeRequest{Name: "pvc-a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}}
	if _, err := d.CreateVolume(context.Background(), bigger); code(err) != codes.AlreadyExists {
		t.Errorf("same name, bigger size: code %v (%v), want AlreadyExists", code(err), err)
	}
}

func TestControllerExpandVolume(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-g", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		req      *csi.ControllerExpandVolumeRequest
		wantCode codes.Code
		wantSize int64 // the stored size after the call
	}{
		{name: "grow", req: &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-g", CapacityRange: &csi.CapacityRange{RequiredBytes: 3 << 30}}, wantSize: 3 << 30},
		{name: "smaller keeps the size", req: &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-g", CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}}, wantSize: 3 << 30},
		{name: "limit below the size", req: &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-g", CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30, LimitBytes: 1 << 30}},
			wantCode: codes.OutOfRange, wantSize: 3 << 30},
		{name: "unknown volume", req: &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-none", CapacityRange: &csi.CapacityRange{RequiredBytes: 1}},
			wantCode: codes.NotFound, wantSize: 3 << 30},
		{name: "no range", req: &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-g"}, wantCode: codes.InvalidArgument, wantSize: 3 << 30},
		{name: "no id", req: &csi.ControllerExpandVolumeRequest{CapacityRange: &csi.CapacityRange{RequiredBytes: 1}}, wantCode: codes.InvalidArgument, wantSize: 3 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := d.ControllerExpandVolume(ctx, tt.req)
			if code(err) != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", code(err), err, tt.wantCode)
			}
			if err == nil {
				if resp.GetCapacityBytes() != tt.wantSize || resp.GetNodeExpansionRequired() {
					t.Errorf("response = %d node=%v, want %d node=false", resp.GetCapacityBytes(), resp.GetNodeExpansionRequired(), tt.wantSize)
				}
			}
			v, err := d.Store.Get("pvc-g")
			if err != nil || v.CapacityBytes != tt.wantSize {
				t.Errorf("stored = %d (%v), want %d", v.CapacityBytes, err, tt.wantSize)
			}
		})
	}
	// The record survives a new Store over the same root (a driver restart).
	s2, err := NewStore(d.Store.root)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s2.Get("pvc-g"); err != nil || v.CapacityBytes != 3<<30 || v.Node != node {
		t.Errorf("after restart: %+v %v", v, err)
	}
}

func TestDeleteVolume(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-d", VolumeCapabilities: []*csi.VolumeCapability{rwo}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second call finds nothing and succeeds
		if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "pvc-d"}); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	if _, err := os.Stat(d.Store.DataDir("pvc-d")); !os.IsNotExist(err) {
		t.Errorf("data dir still there: %v", err)
	}
	if _, err := d.Store.Get("pvc-d"); err == nil {
		t.Errorf("record still there")
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{}); code(err) != codes.InvalidArgument {
		t.Errorf("no id: %v, want InvalidArgument", err)
	}
}

func TestNodePublishUnpublish(t *testing.T) {
	d, m := newDriver(t)
	ctx := context.Background()
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-p", VolumeCapabilities: []*csi.VolumeCapability{rwo}}); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "pods", "uid", "mount")
	pub := &csi.NodePublishVolumeRequest{VolumeId: "pvc-p", TargetPath: target, VolumeCapability: rwo}
	for i := range 2 { // idempotent
		if _, err := d.NodePublishVolume(ctx, pub); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if m.mounts[target] != d.Store.DataDir("pvc-p") || m.ro[target] {
		t.Errorf("mounts = %v ro=%v, want %s rw at %s", m.mounts, m.ro, d.Store.DataDir("pvc-p"), target)
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("target not created: %v", err)
	}
	roTarget := target + "-ro"
	if _, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "pvc-p", TargetPath: roTarget,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY)}); err != nil || !m.ro[roTarget] {
		t.Errorf("reader-only publish: ro=%v err=%v, want a read-only mount", m.ro[roTarget], err)
	}
	if _, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "pvc-none", TargetPath: target + "x", VolumeCapability: rwo}); code(err) != codes.NotFound {
		t.Errorf("unknown volume: %v, want NotFound", err)
	}
	if _, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "pvc-p", VolumeCapability: rwo}); code(err) != codes.InvalidArgument {
		t.Errorf("no target: %v, want InvalidArgument", err)
	}
	for i := range 2 { // idempotent
		if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-p", TargetPath: target}); err != nil {
			t.Fatalf("unpublish %d: %v", i, err)
		}
	}
	if _, ok := m.mounts[target]; ok {
		t.Errorf("still mounted at %s", target)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target not removed: %v", err)
	}
}

func TestNodePublishOtherNode(t *testing.T) {
	d, _ := newDriver(t)
	if _, _, err := d.Store.Create(Volume{ID: "pvc-o", CapacityBytes: 1, Node: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	_, err := d.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{VolumeId: "pvc-o", TargetPath: filepath.Join(t.TempDir(), "t"), VolumeCapability: rwo})
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "elsewhere") {
		t.Errorf("err = %v, want FailedPrecondition naming the node", err)
	}
}

func TestIdentityAndInfo(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	info, err := d.GetPluginInfo(ctx, nil)
	if err != nil || info.GetName() != "hostpath.csi.wukong.novasphere.dev" || info.GetVendorVersion() != "test" {
		t.Errorf("plugin info = %v, %v", info, err)
	}
	caps, err := d.GetPluginCapabilities(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var online, controller bool
	for _, c := range caps.GetCapabilities() {
		online = online || c.GetVolumeExpansion().GetType() == csi.PluginCapability_VolumeExpansion_ONLINE
		controller = controller || c.GetService().GetType() == csi.PluginCapability_Service_CONTROLLER_SERVICE
	}
	if !online || !controller {
		t.Errorf("capabilities %v: want CONTROLLER_SERVICE and online expansion", caps)
	}
	cc, _ := d.ControllerGetCapabilities(ctx, nil)
	have := map[csi.ControllerServiceCapability_RPC_Type]bool{}
	for _, c := range cc.GetCapabilities() {
		have[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	} {
		if !have[want] {
			t.Errorf("controller capabilities %v: want %s", cc, want)
		}
	}
	ni, _ := d.NodeGetInfo(ctx, nil)
	if ni.GetNodeId() != node || ni.GetAccessibleTopology().GetSegments()["topology.hostpath.csi.wukong.novasphere.dev/node"] != node {
		t.Errorf("node info = %v", ni)
	}
	if _, err := d.Probe(ctx, nil); err != nil {
		t.Errorf("probe: %v", err)
	}
	if err := os.RemoveAll(d.Store.root); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Probe(ctx, nil); err == nil {
		t.Errorf("probe without the root answered ready")
	}
}

func TestRegistration(t *testing.T) {
	ch := make(chan *registerapi.RegistrationStatus, 1)
	r := &Registration{DriverName: "d.example", Endpoint: "/var/lib/kubelet/plugins/d.example/csi.sock", Registered: ch}
	info, err := r.GetInfo(context.Background(), &registerapi.InfoRequest{})
	if err != nil || info.Type != registerapi.CSIPlugin || info.Name != "d.example" || info.Endpoint != r.Endpoint || len(info.SupportedVersions) == 0 {
		t.Errorf("info = %+v, %v", info, err)
	}
	if _, err := r.NotifyRegistrationStatus(context.Background(), &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if s := <-ch; !s.PluginRegistered {
		t.Errorf("status not passed on: %+v", s)
	}
}

func TestMountPointIn(t *testing.T) {
	info := `22 1 0:21 / / rw - overlay overlay rw
31 22 0:5 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc-1/mount rw - ext4 /dev/vda rw
32 22 0:5 / /tmp/with\040space rw - ext4 /dev/vda rw
`
	tests := []struct {
		path string
		want bool
	}{
		{"/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc-1/mount", true},
		{"/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc-1", false},
		{"/tmp/with space", true},
		{"/tmp/with", false},
	}
	for _, tt := range tests {
		got, err := mountPointIn(bufio.NewScanner(strings.NewReader(info)), tt.path)
		if err != nil || got != tt.want {
			t.Errorf("%s: %v %v, want %v", tt.path, got, err, tt.want)
		}
	}
}

// TestLinuxMounterBind bind-mounts for real (root only): the data written
// through the target shows in the source, a read-only bind refuses writes,
// and IsMountPoint follows.
func TestLinuxMounterBind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mount(2)")
	}
	m := LinuxMounter{}
	dir := t.TempDir()
	src, target := filepath.Join(dir, "src"), filepath.Join(dir, "target")
	for _, p := range []string{src, target} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Bind(src, target, false); err != nil {
		t.Skipf("bind mount not permitted here: %v", err)
	}
	if ok, err := m.IsMountPoint(target); !ok || err != nil {
		t.Errorf("IsMountPoint after bind = %v %v", ok, err)
	}
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "f")); err != nil {
		t.Errorf("a file written through the mount is not in the source: %v", err)
	}
	if err := m.Unmount(target); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.IsMountPoint(target); ok {
		t.Errorf("still a mount point after Unmount")
	}
	if err := m.Bind(src, target, true); err != nil {
		t.Fatal(err)
	}
	defer m.Unmount(target) //nolint:errcheck // cleanup
	if err := os.WriteFile(filepath.Join(target, "g"), []byte("x"), 0o600); err == nil {
		t.Errorf("wrote through a read-only bind")
	}
}

// A shared volume (parameters.shared "true") is on no node: no topology,
// the multi-node access modes accepted, and published by another node's
// driver over the same store (what the local cluster's nodes do), read-only
// for MULTI_NODE_READER_ONLY.
func TestSharedVolume(t *testing.T) {
	rwx := mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
	shared := map[string]string{ParamShared: "true"}
	d, m := newDriver(t)
	resp, err := d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-rwx", Parameters: shared,
		VolumeCapabilities: []*csi.VolumeCapability{rwx}})
	if err != nil {
		t.Fatalf("CreateVolume RWX shared: %v", err)
	}
	if topo := resp.GetVolume().GetAccessibleTopology(); len(topo) != 0 {
		t.Errorf("a shared volume has topology %v, want none (no node affinity)", topo)
	}
	// A second node's driver over the same store publishes it.
	other := &Driver{Name: d.Name, Version: "test", NodeID: "wukong-local-2", Store: d.Store, Mounter: m}
	for _, tt := range []struct {
		drv    *Driver
		target string
		mode   csi.VolumeCapability_AccessMode_Mode
		wantRO bool
	}{
		{d, filepath.Join(t.TempDir(), "a"), csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, false},
		{other, filepath.Join(t.TempDir(), "b"), csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, false},
		{other, filepath.Join(t.TempDir(), "c"), csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, true},
	} {
		if _, err := tt.drv.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{VolumeId: "pvc-rwx",
			TargetPath: tt.target, VolumeCapability: mountCap(tt.mode)}); err != nil {
			t.Fatalf("NodePublishVolume on %s (%s): %v", tt.drv.NodeID, tt.mode, err)
		}
		if m.mounts[tt.target] != d.Store.DataDir("pvc-rwx") || m.ro[tt.target] != tt.wantRO {
			t.Errorf("%s on %s: mount %q ro=%t, want %q ro=%t", tt.mode, tt.drv.NodeID, m.mounts[tt.target], m.ro[tt.target], d.Store.DataDir("pvc-rwx"), tt.wantRO)
		}
	}
	// The same name asked unshared is another volume: refused.
	_, err = d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-rwx", VolumeCapabilities: []*csi.VolumeCapability{rwo}})
	if code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "shared") {
		t.Errorf("CreateVolume unshared over a shared volume: %v, want AlreadyExists naming shared", err)
	}
	// A node-local volume still refuses RWX and other nodes.
	if _, err := d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-local", VolumeCapabilities: []*csi.VolumeCapability{rwo}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{VolumeId: "pvc-local",
		TargetPath: filepath.Join(t.TempDir(), "d"), VolumeCapability: rwo}); code(err) != codes.FailedPrecondition {
		t.Errorf("another node publishing a node-local volume: %v, want FailedPrecondition", err)
	}
	if _, err := d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-bad", Parameters: map[string]string{ParamShared: "yes"},
		VolumeCapabilities: []*csi.VolumeCapability{rwx}}); code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "parameters.shared") {
		t.Errorf("shared: yes: %v, want InvalidArgument naming parameters.shared", err)
	}
	resp2, err := d.ValidateVolumeCapabilities(context.Background(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: "pvc-rwx",
		VolumeCapabilities: []*csi.VolumeCapability{rwx}})
	if err != nil || resp2.GetConfirmed() == nil {
		t.Errorf("ValidateVolumeCapabilities RWX on a shared volume: %v %v, want confirmed", resp2, err)
	}
}
