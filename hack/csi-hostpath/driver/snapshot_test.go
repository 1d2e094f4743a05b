package driver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

func mkVolume(t *testing.T, d *Driver, name string, size int64) {
	t.Helper()
	if _, err := d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}}); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fromSnapshot(id string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
}

func fromVolume(id string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
}

// A snapshot is the volume's content when it was cut: a volume restored
// from it has that content, not what was written after.
func TestSnapshotRestore(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	mkVolume(t, d, "pvc-src", 2<<30)
	writeFile(t, filepath.Join(d.Store.DataDir("pvc-src"), "disk.img"), "before")
	writeFile(t, filepath.Join(d.Store.DataDir("pvc-src"), "sub", "note"), "nested")
	if err := os.Symlink("disk.img", filepath.Join(d.Store.DataDir("pvc-src"), "link")); err != nil {
		t.Fatal(err)
	}

	snap, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: "pvc-src"})
	if err != nil {
		t.Fatal(err)
	}
	s := snap.GetSnapshot()
	if s.GetSnapshotId() != "snapshot-1" || s.GetSourceVolumeId() != "pvc-src" || s.GetSizeBytes() != 2<<30 || !s.GetReadyToUse() || s.GetCreationTime() == nil {
		t.Errorf("snapshot = %v, want snapshot-1 of pvc-src, 2Gi, ready, with a creation time", s)
	}
	writeFile(t, filepath.Join(d.Store.DataDir("pvc-src"), "disk.img"), "after")

	// Idempotent: the same name and source answer the same snapshot, the
	// copy is not made again.
	again, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: "pvc-src"})
	if err != nil || !again.GetSnapshot().GetCreationTime().AsTime().Equal(s.GetCreationTime().AsTime()) {
		t.Errorf("retry = %v, %v; want the same snapshot", again, err)
	}
	if got := readFile(t, filepath.Join(d.Store.SnapshotDir("snapshot-1"), "disk.img")); got != "before" {
		t.Errorf("snapshot content after a retry = %q, want %q", got, "before")
	}

	resp, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-restored", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}, VolumeContentSource: fromSnapshot("snapshot-1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetVolume().GetContentSource().GetSnapshot().GetSnapshotId(); got != "snapshot-1" {
		t.Errorf("content_source = %v, want snapshot-1", resp.GetVolume().GetContentSource())
	}
	dir := d.Store.DataDir("pvc-restored")
	if got := readFile(t, filepath.Join(dir, "disk.img")); got != "before" {
		t.Errorf("restored disk.img = %q, want %q", got, "before")
	}
	if got := readFile(t, filepath.Join(dir, "sub", "note")); got != "nested" {
		t.Errorf("restored sub/note = %q, want %q", got, "nested")
	}
	if l, err := os.Readlink(filepath.Join(dir, "link")); err != nil || l != "disk.img" {
		t.Errorf("restored link = %q, %v; want a symbolic link to disk.img", l, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "disk.img")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("restored disk.img mode = %v, %v; want 0640 as the source", st, err)
	}
	v, err := d.Store.Get("pvc-restored")
	if err != nil || v.Copy == nil || (v.Copy.Method != CopyReflink && v.Copy.Method != CopyPlain) || v.Copy.Files != 2 {
		t.Errorf("record = %+v, %v; want the copy method and 2 files recorded", v.Copy, err)
	}
	if v.Source == nil || *v.Source != (Source{Kind: SourceSnapshot, ID: "snapshot-1"}) {
		t.Errorf("record source = %v, want snapshot snapshot-1", v.Source)
	}
	// Nothing is left in tmp.
	if ents, _ := os.ReadDir(filepath.Join(d.Store.root, "tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %v after the copies", ents)
	}

	// Deleting the snapshot leaves the volume made from it.
	if _, err := d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "snapshot-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Store.SnapshotDir("snapshot-1")); !os.IsNotExist(err) {
		t.Errorf("snapshot data after DeleteSnapshot: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, "disk.img")); got != "before" {
		t.Errorf("restored volume after its snapshot was deleted: %q", got)
	}
	// A retried CreateVolume still answers the volume though its source is gone.
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-restored", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}, VolumeContentSource: fromSnapshot("snapshot-1")}); err != nil {
		t.Errorf("retry after the source went: %v", err)
	}
	if _, err := d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "snapshot-1"}); err != nil {
		t.Errorf("deleting a deleted snapshot: %v, want OK", err)
	}
}

func TestCreateSnapshotErrors(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	mkVolume(t, d, "pvc-a", 1<<30)
	mkVolume(t, d, "pvc-b", 1<<30)
	if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: "pvc-a"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		req      *csi.CreateSnapshotRequest
		wantCode codes.Code
		wantMsg  string
	}{
		{"no name", &csi.CreateSnapshotRequest{SourceVolumeId: "pvc-a"}, codes.InvalidArgument, "name"},
		{"no source", &csi.CreateSnapshotRequest{Name: "snapshot-2"}, codes.InvalidArgument, "source_volume_id"},
		{"a path as name", &csi.CreateSnapshotRequest{Name: "../x", SourceVolumeId: "pvc-a"}, codes.InvalidArgument, "name"},
		{"a missing source", &csi.CreateSnapshotRequest{Name: "snapshot-3", SourceVolumeId: "pvc-none"}, codes.NotFound, "source_volume_id"},
		{"same name, another source", &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: "pvc-b"}, codes.AlreadyExists, "pvc-a"},
		{"an unknown parameter", &csi.CreateSnapshotRequest{Name: "snapshot-4", SourceVolumeId: "pvc-a", Parameters: map[string]string{"speed": "fast"}}, codes.InvalidArgument, "parameters.speed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.CreateSnapshot(ctx, tt.req)
			if code(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want %v naming %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	// The external-snapshotter's own parameters are accepted.
	if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-5", SourceVolumeId: "pvc-a",
		Parameters: map[string]string{"csi.storage.k8s.io/volumesnapshot/name": "s"}}); err != nil {
		t.Errorf("csi.storage.k8s.io/ parameter: %v", err)
	}
	// A second call while the first copies: ABORTED (spec.md, "Operation
	// pending for snapshot").
	d.Store.pending["snapshot/snapshot-6"] = true
	if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-6", SourceVolumeId: "pvc-a"}); code(err) != codes.Aborted {
		t.Errorf("pending snapshot: %v, want Aborted", err)
	}
	d.Store.pending["volume/pvc-c"] = true
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-c", VolumeCapabilities: []*csi.VolumeCapability{rwo}, VolumeContentSource: fromVolume("pvc-a")}); code(err) != codes.Aborted {
		t.Errorf("pending volume: %v, want Aborted", err)
	}
}

func TestCloneVolume(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	mkVolume(t, d, "pvc-src", 4<<30)
	writeFile(t, filepath.Join(d.Store.DataDir("pvc-src"), "disk.img"), "data")
	clone := func(name string, r *csi.CapacityRange, src *csi.VolumeContentSource) (*csi.CreateVolumeResponse, error) {
		return d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: r, VolumeContentSource: src})
	}
	tests := []struct {
		name     string
		r        *csi.CapacityRange
		wantSize int64
		wantCode codes.Code
	}{
		{"the source's size", &csi.CapacityRange{RequiredBytes: 4 << 30}, 4 << 30, codes.OK},
		{"larger than the source", &csi.CapacityRange{RequiredBytes: 8 << 30}, 8 << 30, codes.OK},
		{"no range: the source's size", nil, 4 << 30, codes.OK},
		{"a limit alone above the source", &csi.CapacityRange{LimitBytes: 6 << 30}, 4 << 30, codes.OK},
		{"smaller than the source", &csi.CapacityRange{RequiredBytes: 1 << 30}, 0, codes.OutOfRange},
		{"a limit below the source", &csi.CapacityRange{LimitBytes: 2 << 30}, 0, codes.OutOfRange},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "pvc-clone-" + string(rune('a'+i))
			resp, err := clone(name, tt.r, fromVolume("pvc-src"))
			if code(err) != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", code(err), err, tt.wantCode)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "capacity_range") {
					t.Errorf("error %q does not name capacity_range", err)
				}
				if _, statErr := os.Stat(d.Store.DataDir(name)); statErr == nil {
					t.Errorf("a refused clone left a directory")
				}
				return
			}
			if resp.GetVolume().GetCapacityBytes() != tt.wantSize {
				t.Errorf("size = %d, want %d", resp.GetVolume().GetCapacityBytes(), tt.wantSize)
			}
			if got := resp.GetVolume().GetContentSource().GetVolume().GetVolumeId(); got != "pvc-src" {
				t.Errorf("content_source = %v, want volume pvc-src", resp.GetVolume().GetContentSource())
			}
			if got := readFile(t, filepath.Join(d.Store.DataDir(name), "disk.img")); got != "data" {
				t.Errorf("clone's disk.img = %q, want %q", got, "data")
			}
			// The method that ran is in the volume context (the PV's
			// volumeAttributes) and the record: reflink where the test's
			// file system clones, a plain copy elsewhere (tmpfs, ext4).
			method := resp.GetVolume().GetVolumeContext()[VolumeContextCopyMethod]
			if method != CopyReflink && method != CopyPlain {
				t.Errorf("volume_context %s = %q, want %s or %s", VolumeContextCopyMethod, method, CopyReflink, CopyPlain)
			}
			if v, err := d.Store.Get(name); err != nil || v.Copy == nil || v.Copy.Method != method {
				t.Errorf("record's copy = %+v (%v), want method %q", v.Copy, err, method)
			}
		})
	}
	// The clone is a copy: writing it leaves the source as it was.
	writeFile(t, filepath.Join(d.Store.DataDir("pvc-clone-a"), "disk.img"), "changed")
	if got := readFile(t, filepath.Join(d.Store.DataDir("pvc-src"), "disk.img")); got != "data" {
		t.Errorf("source after writing its clone = %q", got)
	}
	// Same name, another source or none: ALREADY_EXISTS.
	mkVolume(t, d, "pvc-other", 4<<30)
	if _, err := clone("pvc-clone-a", &csi.CapacityRange{RequiredBytes: 4 << 30}, fromVolume("pvc-other")); code(err) != codes.AlreadyExists {
		t.Errorf("same name, another source: %v, want AlreadyExists", err)
	}
	if _, err := clone("pvc-clone-a", &csi.CapacityRange{RequiredBytes: 4 << 30}, nil); code(err) != codes.AlreadyExists {
		t.Errorf("same name, no source: %v, want AlreadyExists", err)
	}
	if _, err := clone("pvc-other", &csi.CapacityRange{RequiredBytes: 4 << 30}, fromVolume("pvc-src")); code(err) != codes.AlreadyExists {
		t.Errorf("an empty volume's name with a source: %v, want AlreadyExists", err)
	}
	// Same name and source: the same volume, not copied again.
	if _, err := clone("pvc-clone-a", &csi.CapacityRange{RequiredBytes: 4 << 30}, fromVolume("pvc-src")); err != nil {
		t.Errorf("retry: %v", err)
	}
	if got := readFile(t, filepath.Join(d.Store.DataDir("pvc-clone-a"), "disk.img")); got != "changed" {
		t.Errorf("a retried clone copied again: %q", got)
	}
}

// A sparse disk image stays sparse through a plain copy, and a copy has
// the source's bytes.
func TestCopyFileSparse(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.img")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	head, tail := bytes.Repeat([]byte("a"), 4096), bytes.Repeat([]byte("z"), 4096)
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(tail, 32<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dst := filepath.Join(dir, "copy.img")
	reflinked, copied, err := copyFile(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size || !bytes.Equal(got[:4096], head) || !bytes.Equal(got[32<<20:32<<20+4096], tail) || bytes.Count(got, []byte{0}) != size-8192 {
		t.Fatalf("copy differs from the source (%d bytes)", len(got))
	}
	if reflinked {
		return // the file system cloned it: nothing copied
	}
	if copied >= size/2 {
		t.Errorf("copied %d bytes of a %d-byte file with 8 KiB of data: holes were written", copied, size)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 >= size/2 {
		t.Errorf("copy allocates %d bytes of %d: not sparse", st.Blocks*512, size)
	}
}

func TestListSnapshots(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	mkVolume(t, d, "pvc-a", 1<<30)
	mkVolume(t, d, "pvc-b", 1<<30)
	for _, s := range []struct{ name, vol string }{{"snap-1", "pvc-a"}, {"snap-2", "pvc-b"}, {"snap-3", "pvc-a"}, {"snap-4", "pvc-a"}, {"snap-5", "pvc-b"}} {
		if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: s.name, SourceVolumeId: s.vol}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(r *csi.ListSnapshotsResponse) string {
		var out []string
		for _, e := range r.GetEntries() {
			out = append(out, e.GetSnapshot().GetSnapshotId())
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name      string
		req       *csi.ListSnapshotsRequest
		want      string
		wantToken string
	}{
		{"all", &csi.ListSnapshotsRequest{}, "snap-1,snap-2,snap-3,snap-4,snap-5", ""},
		{"one by id", &csi.ListSnapshotsRequest{SnapshotId: "snap-3"}, "snap-3", ""},
		{"an unknown id", &csi.ListSnapshotsRequest{SnapshotId: "snap-9"}, "", ""},
		{"by source", &csi.ListSnapshotsRequest{SourceVolumeId: "pvc-b"}, "snap-2,snap-5", ""},
		{"id and another source", &csi.ListSnapshotsRequest{SnapshotId: "snap-3", SourceVolumeId: "pvc-b"}, "", ""},
		{"an unknown source", &csi.ListSnapshotsRequest{SourceVolumeId: "pvc-z"}, "", ""},
		{"first page", &csi.ListSnapshotsRequest{MaxEntries: 2}, "snap-1,snap-2", "snap-3"},
		{"second page", &csi.ListSnapshotsRequest{MaxEntries: 2, StartingToken: "snap-3"}, "snap-3,snap-4", "snap-5"},
		{"the rest", &csi.ListSnapshotsRequest{StartingToken: "snap-3"}, "snap-3,snap-4,snap-5", ""},
		{"a page by source", &csi.ListSnapshotsRequest{SourceVolumeId: "pvc-a", MaxEntries: 2}, "snap-1,snap-3", "snap-4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := d.ListSnapshots(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(r); got != tt.want || r.GetNextToken() != tt.wantToken {
				t.Errorf("entries %q next %q, want %q next %q", got, r.GetNextToken(), tt.want, tt.wantToken)
			}
		})
	}
	// A page's token stays good when the snapshot it names is deleted.
	if _, err := d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "snap-3"}); err != nil {
		t.Fatal(err)
	}
	if r, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "snap-3"}); err != nil || ids(r) != "snap-4,snap-5" {
		t.Errorf("after deleting the token's snapshot: %q, %v; want snap-4,snap-5", ids(r), err)
	}
	if _, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "../x"}); code(err) != codes.Aborted {
		t.Errorf("a bad token: %v, want Aborted", err)
	}
	if _, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: -1}); code(err) != codes.InvalidArgument {
		t.Errorf("negative max_entries: %v, want InvalidArgument", err)
	}
}

// TestCopyTreeReflink checks the copy-on-write path on a file system that
// has it: set CSI_HOSTPATH_REFLINK_DIR to a directory on XFS (reflink=1) or
// btrfs, e.g. a loop-mounted `mkfs.xfs -m reflink=1` image. Skipped
// otherwise (this machine's ext4 refuses FICLONE; TestCopyFileSparse covers
// the plain copy).
func TestCopyTreeReflink(t *testing.T) {
	base := os.Getenv("CSI_HOSTPATH_REFLINK_DIR")
	if base == "" {
		t.Skip("CSI_HOSTPATH_REFLINK_DIR is not set (a directory on XFS with reflink=1 or btrfs)")
	}
	dir, err := os.MkdirTemp(base, "reflink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := filepath.Join(dir, "src")
	data := bytes.Repeat([]byte("wukong"), 4<<20) // 24 MiB
	writeFile(t, filepath.Join(src, "disk.img"), string(data))
	writeFile(t, filepath.Join(src, "sub", "note"), "nested")
	st, err := copyTree(src, filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Method != CopyReflink || st.Reflinked != 2 || st.CopiedBytes != 0 {
		t.Errorf("copy = %+v, want every file reflinked and nothing copied", st)
	}
	if got := readFile(t, filepath.Join(dir, "dst", "disk.img")); got != string(data) {
		t.Errorf("the reflinked disk.img differs from the source")
	}
	// Copy-on-write: writing the copy leaves the source as it was.
	writeFile(t, filepath.Join(dir, "dst", "sub", "note"), "changed")
	if got := readFile(t, filepath.Join(src, "sub", "note")); got != "nested" {
		t.Errorf("source after writing the copy = %q", got)
	}
}
