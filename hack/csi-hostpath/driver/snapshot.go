package driver

import (
	"context"
	"errors"
	"log"
	"sort"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Snapshots and content sources, as the CSI spec v1.11.0 (spec.md) has
// them: CreateSnapshot, DeleteSnapshot and ListSnapshots (capabilities
// CREATE_DELETE_SNAPSHOT and LIST_SNAPSHOTS), and CreateVolume from a
// snapshot or a volume (CLONE_VOLUME), both copies of a directory
// (Store.CreateSnapshot, Store.CreateFrom: reflink where the file system
// can, a plain copy otherwise).

// csiSnapshot answers sn. A snapshot is ready when it is recorded: the
// copy is done before CreateSnapshot answers ("For SPs that do not do
// additional processing after cut, the ready_to_use parameter SHOULD be
// true after the snapshot is cut", spec.md, The ready_to_use Parameter).
func csiSnapshot(sn Snapshot) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     sn.ID,
		SourceVolumeId: sn.SourceVolumeID,
		SizeBytes:      sn.SizeBytes,
		CreationTime:   timestamppb.New(sn.CreationTime),
		ReadyToUse:     true,
	}
}

// snapshotParamPrefix: the parameters the external-snapshotter itself
// adds (csi.storage.k8s.io/..., e.g. with --extra-create-metadata) are
// accepted and ignored; any other VolumeSnapshotClass parameter is refused,
// since the driver has none.
const snapshotParamPrefix = "csi.storage.k8s.io/"

// CreateSnapshot cuts a snapshot of source_volume_id named name. It is
// idempotent: the same name and source answer the same snapshot; the same
// name with another source is ALREADY_EXISTS; a second call while the
// first still copies is ABORTED (spec.md, CreateSnapshot Errors); an
// unknown source volume is NOT_FOUND.
func (d *Driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name, src := req.GetName(), req.GetSourceVolumeId()
	switch {
	case name == "":
		return nil, status.Error(codes.InvalidArgument, "name: required")
	case src == "":
		return nil, status.Error(codes.InvalidArgument, "source_volume_id: required")
	case !ValidID(name):
		return nil, status.Errorf(codes.InvalidArgument, "name %q: want letters, digits, '-', '_' and '.' (at most 253)", name)
	}
	for k := range req.GetParameters() {
		if !strings.HasPrefix(k, snapshotParamPrefix) {
			return nil, status.Errorf(codes.InvalidArgument, "parameters.%s: unknown (the driver takes no snapshot parameters)", k)
		}
	}
	sn, existed, err := d.Store.CreateSnapshot(name, src)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, status.Errorf(codes.NotFound, "source_volume_id: %v", err)
	case errors.Is(err, ErrPending):
		return nil, status.Errorf(codes.Aborted, "%v", err)
	case err != nil:
		return nil, status.Errorf(codes.Internal, "creating snapshot %s of volume %s: %v", name, src, err)
	}
	if existed && sn.SourceVolumeID != src {
		return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists with source_volume_id %s, the request names %s", name, sn.SourceVolumeID, src)
	}
	if !existed {
		logCopy("snapshot "+sn.ID+" of volume "+src, sn.Copy)
	}
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(sn)}, nil
}

// DeleteSnapshot removes a snapshot; an unknown ID is done (spec.md,
// DeleteSnapshot: "If a snapshot corresponding to the specified
// snapshot_id does not exist ... the Plugin MUST reply 0 OK"). Volumes made
// from it are copies and stay.
func (d *Driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot_id: required")
	}
	if err := d.Store.DeleteSnapshot(req.GetSnapshotId()); err != nil {
		return nil, status.Errorf(codes.Internal, "deleting snapshot %s: %v", req.GetSnapshotId(), err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots answers the snapshots in ID order, filtered by snapshot_id
// and source_volume_id (an unknown one: no entries), at most max_entries of
// them. next_token is the ID of the next page's first snapshot, and a
// starting_token answers the snapshots from that ID on, so a page is right
// even when snapshots were deleted in between (spec.md, ListSnapshots: the
// CO "SHALL NOT expect a consistent view"). A starting_token that cannot be
// an ID is ABORTED (spec.md, ListSnapshots Errors).
func (d *Driver) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_entries: %d is negative", req.GetMaxEntries())
	}
	tok := req.GetStartingToken()
	if tok != "" && !ValidID(tok) {
		return nil, status.Errorf(codes.Aborted, "starting_token %q: not a token this driver gave", tok)
	}
	var all []Snapshot
	if id := req.GetSnapshotId(); id != "" {
		sn, err := d.Store.GetSnapshot(id)
		if err != nil && !errors.Is(err, ErrSnapshotNotFound) {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		if err == nil {
			all = []Snapshot{sn}
		}
	} else {
		var err error
		if all, err = d.Store.Snapshots(); err != nil {
			return nil, status.Errorf(codes.Internal, "listing snapshots: %v", err)
		}
	}
	var out []Snapshot
	for _, sn := range all {
		if v := req.GetSourceVolumeId(); v != "" && sn.SourceVolumeID != v {
			continue
		}
		out = append(out, sn)
	}
	if tok != "" {
		out = out[sort.Search(len(out), func(i int) bool { return out[i].ID >= tok }):]
	}
	resp := &csi.ListSnapshotsResponse{}
	if m := int(req.GetMaxEntries()); m > 0 && len(out) > m {
		resp.NextToken = out[m].ID
		out = out[:m]
	}
	for _, sn := range out {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(sn)})
	}
	return resp, nil
}

// contentSource resolves CreateVolume's volume_content_source: the
// directory to copy, the source's size in bytes, and its record. A source
// that does not exist is NOT_FOUND (spec.md, CreateVolume Errors: "Source
// does not exist"); a content source of neither kind is INVALID_ARGUMENT
// ("Source incompatible or not supported").
func (d *Driver) contentSource(cs *csi.VolumeContentSource) (string, int64, *Source, error) {
	switch {
	case cs.GetSnapshot() != nil:
		id := cs.GetSnapshot().GetSnapshotId()
		if id == "" {
			return "", 0, nil, status.Error(codes.InvalidArgument, "volume_content_source.snapshot.snapshot_id: required")
		}
		sn, err := d.Store.GetSnapshot(id)
		if errors.Is(err, ErrSnapshotNotFound) {
			return "", 0, nil, status.Errorf(codes.NotFound, "volume_content_source.snapshot: %v", err)
		}
		if err != nil {
			return "", 0, nil, status.Errorf(codes.Internal, "%v", err)
		}
		return d.Store.SnapshotDir(id), sn.SizeBytes, &Source{Kind: SourceSnapshot, ID: id}, nil
	case cs.GetVolume() != nil:
		id := cs.GetVolume().GetVolumeId()
		if id == "" {
			return "", 0, nil, status.Error(codes.InvalidArgument, "volume_content_source.volume.volume_id: required")
		}
		v, err := d.Store.Get(id)
		if errors.Is(err, ErrNotFound) {
			return "", 0, nil, status.Errorf(codes.NotFound, "volume_content_source.volume: %v", err)
		}
		if err != nil {
			return "", 0, nil, status.Errorf(codes.Internal, "%v", err)
		}
		return d.Store.DataDir(id), v.CapacityBytes, &Source{Kind: SourceVolume, ID: id}, nil
	default:
		return "", 0, nil, status.Error(codes.InvalidArgument, "volume_content_source: want a snapshot or a volume")
	}
}

// sourceCapacity picks a size for a volume made from a source of srcSize
// bytes. Without a capacity range it is the larger of DefaultCapacity and
// the source's size; a range below the source's size is OUT_OF_RANGE
// (spec.md, Snapshot.size_bytes: "The size of the volume MUST NOT be less
// than the size of the source snapshot"; CreateVolume Errors: "Unsupported
// capacity_range ... when trying to create a volume smaller than the
// source snapshot"). A larger one is served: a directory has no size of
// its own, so the copy holds the source's data and the larger size is
// recorded (spec.md, CreateVolume: the plugin "MUST provide a volume that
// ... has both the requested (larger) size and contains data from the
// snapshot").
func sourceCapacity(r *csi.CapacityRange, srcSize int64) (int64, error) {
	size, err := capacityOf(r)
	if err != nil {
		return 0, err
	}
	if r.GetRequiredBytes() == 0 && r.GetLimitBytes() == 0 {
		return max(size, srcSize), nil
	}
	if lim := r.GetLimitBytes(); lim > 0 && lim < srcSize {
		return 0, status.Errorf(codes.OutOfRange, "capacity_range: limit_bytes %d is below the source's %d bytes", lim, srcSize)
	}
	if size < srcSize {
		if r.GetRequiredBytes() == 0 { // a limit alone: the source's size fits under it
			return srcSize, nil
		}
		return 0, status.Errorf(codes.OutOfRange, "capacity_range: required_bytes %d is below the source's %d bytes", size, srcSize)
	}
	return size, nil
}

// logCopy logs how a copy ran (reflink or plain copy), so a benchmark
// reading the driver's log can tell; the same is in the record's "copy".
func logCopy(what string, st *CopyStats) {
	if st == nil {
		return
	}
	log.Printf("%s: copy method %s (%d files, %d reflinked, %d bytes, %d bytes copied) in %.3f s",
		what, st.Method, st.Files, st.Reflinked, st.Bytes, st.CopiedBytes, st.Seconds)
}
