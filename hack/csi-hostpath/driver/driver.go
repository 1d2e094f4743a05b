// Package driver is Wukong's own minimal CSI driver for the local cluster:
// a volume is a directory on the node (Store), published into a pod by a
// bind mount, and "expanded" by recording its new size, which is all a
// directory on the node's file system needs. It exists because no
// expandable CSI driver for a single node (csi-driver-host-path, TopoLVM,
// OpenEBS LocalPV, ...) is served by the Go module proxy this project builds
// from, and rancher's local-path-provisioner cannot expand volumes
// (docs/notes/real-cdi-multus.md).
//
// It follows the CSI spec v1.11.0 (github.com/container-storage-interface/
// spec, spec.md): Identity; Controller with CREATE_DELETE_VOLUME,
// CREATE_DELETE_SNAPSHOT, LIST_SNAPSHOTS and CLONE_VOLUME (a snapshot and a
// volume made from a snapshot or a volume are copies of a directory: a
// reflink of every file where the file system can, a plain copy
// otherwise; snapshot.go), and
// EXPAND_VOLUME (online, no node step: ControllerExpandVolume answers
// node_expansion_required=false, so the external-resizer finishes the
// resize and sets the PVC's status.capacity itself); Node with
// NodePublishVolume/NodeUnpublishVolume (no staging) and NodeGetInfo with
// the node as the one topology segment. Mount volumes only (no raw block),
// access modes SINGLE_NODE_WRITER, SINGLE_NODE_SINGLE_WRITER,
// SINGLE_NODE_MULTI_WRITER and SINGLE_NODE_READER_ONLY.
//
// A StorageClass with the parameter shared: "true" makes shared volumes:
// not pinned to a node (no accessible_topology, so the PV has no node
// affinity) and published on any node, with the MULTI_NODE_* access modes
// too (ReadWriteMany). That is only true where every node's driver sees the
// same store directory: the local cluster's nodes all bind the machine's
// one /var/lib/wukong-csi (a stand-in for shared storage; nothing fences
// two writers).
package driver

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultCapacity is the size a CreateVolume without a capacity range gets:
// 1 GiB.
const DefaultCapacity int64 = 1 << 30

// Driver implements csi.IdentityServer, csi.ControllerServer and
// csi.NodeServer over one Store.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	// Name is the driver's name (e.g. hostpath.csi.wukong.novasphere.dev);
	// StorageClasses name it as their provisioner.
	Name string
	// Version is reported by GetPluginInfo.
	Version string
	// NodeID is this node's name; it is also its topology value.
	NodeID string
	// Store holds the volumes.
	Store *Store
	// Mounter does NodePublish's mounts (Linux bind mounts in production).
	Mounter Mounter
}

// TopologyKey is the topology segment key: the node's name. NodeGetInfo
// reports it, CreateVolume answers it, so the PV gets a node affinity for
// the node holding its directory.
func (d *Driver) TopologyKey() string { return "topology." + d.Name + "/node" }

// ---------------------------------------------------------------- Identity

// GetPluginInfo answers the driver's name and version.
func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	if d.Name == "" {
		return nil, status.Error(codes.Unavailable, "driver name not configured")
	}
	return &csi.GetPluginInfoResponse{Name: d.Name, VendorVersion: d.Version}, nil
}

// GetPluginCapabilities: a controller service, topology, online expansion.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	svc := func(t csi.PluginCapability_Service_Type) *csi.PluginCapability {
		return &csi.PluginCapability{Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: t}}}
	}
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{
		svc(csi.PluginCapability_Service_CONTROLLER_SERVICE),
		svc(csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS),
		{Type: &csi.PluginCapability_VolumeExpansion_{VolumeExpansion: &csi.PluginCapability_VolumeExpansion{
			Type: csi.PluginCapability_VolumeExpansion_ONLINE}}},
	}}, nil
}

// Probe answers ready when the store's root is there.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	if _, err := os.Stat(d.Store.root); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "store root: %v", err)
	}
	return &csi.ProbeResponse{}, nil
}

// -------------------------------------------------------------- Controller

// ControllerGetCapabilities: create/delete, expand, snapshots (create,
// delete, list) and clones (CreateVolume from a volume).
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	rpc := func(t csi.ControllerServiceCapability_RPC_Type) *csi.ControllerServiceCapability {
		return &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}}
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{
		rpc(csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME),
		rpc(csi.ControllerServiceCapability_RPC_EXPAND_VOLUME),
		rpc(csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT),
		rpc(csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS),
		rpc(csi.ControllerServiceCapability_RPC_CLONE_VOLUME),
	}}, nil
}

// ParamShared is the StorageClass parameter ("true" or "false") that makes
// shared volumes (see the package doc).
const ParamShared = "shared"

// sharedParam reads ParamShared from CreateVolume's parameters.
func sharedParam(params map[string]string) (bool, error) {
	switch v, ok := params[ParamShared]; {
	case !ok || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	default:
		return false, status.Errorf(codes.InvalidArgument, "parameters.%s: %q, want \"true\" or \"false\"", ParamShared, v)
	}
}

// checkCapabilities refuses what the driver cannot serve: raw block, and,
// unless multiNode (a shared volume), access modes reaching more than one
// node.
func checkCapabilities(caps []*csi.VolumeCapability, multiNode bool) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume_capabilities: at least one is required")
	}
	for i, c := range caps {
		if c == nil {
			return status.Errorf(codes.InvalidArgument, "volume_capabilities[%d]: empty", i)
		}
		if c.GetBlock() != nil {
			return status.Errorf(codes.InvalidArgument, "volume_capabilities[%d]: block access is not supported (a volume is a directory)", i)
		}
		if c.GetMount() == nil {
			return status.Errorf(codes.InvalidArgument, "volume_capabilities[%d]: access_type: want mount", i)
		}
		switch m := c.GetAccessMode().GetMode(); m {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		case csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
			if !multiNode {
				return status.Errorf(codes.InvalidArgument, "volume_capabilities[%d]: access_mode %s needs a StorageClass with parameters.%s: \"true\" (a volume lives on one node)", i, m, ParamShared)
			}
		default:
			return status.Errorf(codes.InvalidArgument, "volume_capabilities[%d]: access_mode %s is not supported (a volume lives on one node)", i, m)
		}
	}
	return nil
}

// capacityOf picks a size from a CapacityRange: the required bytes, else the
// limit when it is below DefaultCapacity, else DefaultCapacity.
func capacityOf(r *csi.CapacityRange) (int64, error) {
	req, lim := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || lim < 0 {
		return 0, status.Error(codes.InvalidArgument, "capacity_range: negative bytes")
	}
	if lim > 0 && req > lim {
		return 0, status.Errorf(codes.InvalidArgument, "capacity_range: required_bytes %d above limit_bytes %d", req, lim)
	}
	switch {
	case req > 0:
		return req, nil
	case lim > 0 && lim < DefaultCapacity:
		return lim, nil
	default:
		return DefaultCapacity, nil
	}
}

// node picks the node for a new volume: this driver's node. A request whose
// accessibility requirements name other nodes only is refused, since the
// directory can only be made here (the external-provisioner in
// --node-deployment mode sends each node's claims to that node's driver).
func (d *Driver) node(req *csi.TopologyRequirement) (string, error) {
	if req == nil || (len(req.GetRequisite()) == 0 && len(req.GetPreferred()) == 0) {
		return d.NodeID, nil
	}
	for _, t := range append(req.GetPreferred(), req.GetRequisite()...) {
		if t.GetSegments()[d.TopologyKey()] == d.NodeID {
			return d.NodeID, nil
		}
	}
	return "", status.Errorf(codes.ResourceExhausted, "accessibility_requirements: none names node %s (%s)", d.NodeID, d.TopologyKey())
}

// VolumeContextCopyMethod is the volume_context key (the PV's
// spec.csi.volumeAttributes) of a volume made from a snapshot or a clone:
// how its content was copied, CopyReflink (copy-on-write), CopyPlain,
// CopyMixed or CopyNone.
const VolumeContextCopyMethod = "copyMethod"

// csiVolume answers v; a shared volume (no Node) has no topology, so the
// PV has no node affinity.
func (d *Driver) csiVolume(v Volume) *csi.Volume {
	out := &csi.Volume{VolumeId: v.ID, CapacityBytes: v.CapacityBytes}
	if v.Copy != nil {
		// The external-provisioner copies volume_context into the PV's
		// spec.csi.volumeAttributes, where it can be read on the cluster.
		out.VolumeContext = map[string]string{VolumeContextCopyMethod: v.Copy.Method}
	}
	if v.Node != "" {
		out.AccessibleTopology = []*csi.Topology{{Segments: map[string]string{d.TopologyKey(): v.Node}}}
	}
	// "If specified, indicates that the volume is not empty and is
	// pre-populated with data from the specified source" (spec.md, Volume).
	switch {
	case v.Source == nil:
	case v.Source.Kind == SourceSnapshot:
		out.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: v.Source.ID}}}
	case v.Source.Kind == SourceVolume:
		out.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: v.Source.ID}}}
	}
	return out
}

// CreateVolume makes a directory for the volume and records its size;
// with a volume_content_source (a snapshot, or a volume: a clone) the
// directory is a copy of the source's (see contentSource, sourceCapacity).
// A second call with the same name answers the same volume when its size,
// shared parameter and content source fit the request, else ALREADY_EXISTS
// (spec.md, CreateVolume Errors: "Volume already exists but is
// incompatible"); a second call while the first still copies is ABORTED
// ("Operation pending for volume").
func (d *Driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name: required")
	}
	shared, err := sharedParam(req.GetParameters())
	if err != nil {
		return nil, err
	}
	if err := checkCapabilities(req.GetVolumeCapabilities(), shared); err != nil {
		return nil, err
	}
	if _, err := capacityOf(req.GetCapacityRange()); err != nil {
		return nil, err
	}
	node := "" // shared: on no one node
	if !shared {
		if node, err = d.node(req.GetAccessibilityRequirements()); err != nil {
			return nil, err
		}
	}
	id := req.GetName()
	if !ValidID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "name %q: want letters, digits, '-', '_' and '.' (at most 253)", id)
	}
	cs := req.GetVolumeContentSource()
	// An existing volume answers before its source is looked at: the
	// source may be gone since, and the call is a retry.
	if v, err := d.Store.Get(id); err == nil {
		return d.existingVolume(v, req, shared)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	var (
		v       Volume
		existed bool
	)
	if cs == nil {
		size, _ := capacityOf(req.GetCapacityRange())
		v, existed, err = d.Store.Create(Volume{ID: id, CapacityBytes: size, Node: node})
	} else {
		dir, srcSize, src, serr := d.contentSource(cs)
		if serr != nil {
			return nil, serr
		}
		size, serr := sourceCapacity(req.GetCapacityRange(), srcSize)
		if serr != nil {
			return nil, serr
		}
		v, existed, err = d.Store.CreateFrom(Volume{ID: id, CapacityBytes: size, Node: node, Source: src}, dir)
		if err == nil && !existed {
			logCopy("volume "+id+" from "+src.Kind+" "+src.ID, v.Copy)
		}
	}
	if errors.Is(err, ErrPending) {
		return nil, status.Errorf(codes.Aborted, "%v", err)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "creating volume %s: %v", id, err)
	}
	if existed {
		return d.existingVolume(v, req, shared)
	}
	return &csi.CreateVolumeResponse{Volume: d.csiVolume(v)}, nil
}

// existingVolume answers a CreateVolume for a volume that exists: the
// volume when the request fits it, else ALREADY_EXISTS naming what differs.
func (d *Driver) existingVolume(v Volume, req *csi.CreateVolumeRequest, shared bool) (*csi.CreateVolumeResponse, error) {
	id := v.ID
	if (v.Node == "") != shared {
		return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with shared=%t, the request asks shared=%t", id, v.Node == "", shared)
	}
	if want, got := sourceOf(req.GetVolumeContentSource()), v.Source; !sameSource(want, got) {
		return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with volume_content_source %s, the request names %s", id, got, want)
	}
	// The least size the request would have made: for a volume from a
	// source, what it asks (the source's size may have changed or be gone).
	r := req.GetCapacityRange()
	least, _ := capacityOf(r)
	if v.Source != nil {
		least = r.GetRequiredBytes()
	}
	if lim := r.GetLimitBytes(); v.CapacityBytes < least || (lim > 0 && v.CapacityBytes > lim) {
		return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with %d bytes, outside the requested range", id, v.CapacityBytes)
	}
	return &csi.CreateVolumeResponse{Volume: d.csiVolume(v)}, nil
}

// sourceOf is the Source a volume_content_source names (nil for none).
func sourceOf(cs *csi.VolumeContentSource) *Source {
	switch {
	case cs.GetSnapshot() != nil:
		return &Source{Kind: SourceSnapshot, ID: cs.GetSnapshot().GetSnapshotId()}
	case cs.GetVolume() != nil:
		return &Source{Kind: SourceVolume, ID: cs.GetVolume().GetVolumeId()}
	}
	return nil
}

func sameSource(a, b *Source) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// String names a source for messages: "snapshot <id>", "volume <id>" or
// "none".
func (s *Source) String() string {
	if s == nil {
		return "none"
	}
	return s.Kind + " " + s.ID
}

// DeleteVolume removes the directory and the record; an unknown ID is done.
func (d *Driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id: required")
	}
	if err := d.Store.Delete(req.GetVolumeId()); err != nil {
		return nil, status.Errorf(codes.Internal, "deleting volume %s: %v", req.GetVolumeId(), err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms what checkCapabilities accepts.
func (d *Driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id: required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume_capabilities: required")
	}
	v, err := d.Store.Get(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "%v", err)
	}
	if err := checkCapabilities(req.GetVolumeCapabilities(), v.Node == ""); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(), Parameters: req.GetParameters(),
	}}, nil
}

// ControllerExpandVolume records the new size (never smaller than the
// recorded one). Nothing is left for the node to do: a directory has no
// file system of its own to grow, so node_expansion_required is false and
// the external-resizer marks the PVC resized (its status.capacity) at once.
func (d *Driver) ControllerExpandVolume(_ context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id: required")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity_range: required")
	}
	if c := req.GetVolumeCapability(); c != nil {
		v, err := d.Store.Get(req.GetVolumeId())
		if errors.Is(err, ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "%v", err)
		}
		if err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		if err := checkCapabilities([]*csi.VolumeCapability{c}, v.Node == ""); err != nil {
			return nil, err
		}
	}
	size, err := capacityOf(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	v, err := d.Store.Expand(req.GetVolumeId(), size)
	if errors.Is(err, ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "%v", err)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "expanding volume %s: %v", req.GetVolumeId(), err)
	}
	if lim := req.GetCapacityRange().GetLimitBytes(); lim > 0 && v.CapacityBytes > lim {
		return nil, status.Errorf(codes.OutOfRange, "volume %s already has %d bytes, above limit_bytes %d (volumes never shrink)", v.ID, v.CapacityBytes, lim)
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: v.CapacityBytes, NodeExpansionRequired: false}, nil
}

// -------------------------------------------------------------------- Node

// NodeGetCapabilities: none (no staging, no node-side expansion, no stats).
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// NodeGetInfo answers the node ID and its topology segment.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{
		NodeId:             d.NodeID,
		AccessibleTopology: &csi.Topology{Segments: map[string]string{d.TopologyKey(): d.NodeID}},
	}, nil
}

// NodePublishVolume bind-mounts the volume's directory at the target path
// (made when missing), read-only when asked. Idempotent: a target that is
// already a mount point is left as it is.
func (d *Driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id: required")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "target_path: required")
	case req.GetVolumeCapability() == nil:
		return nil, status.Error(codes.InvalidArgument, "volume_capability: required")
	}
	v, err := d.Store.Get(id)
	if errors.Is(err, ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "%v", err)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if err := checkCapabilities([]*csi.VolumeCapability{req.GetVolumeCapability()}, v.Node == ""); err != nil {
		return nil, err
	}
	if v.Node != "" && v.Node != d.NodeID {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is on node %s, not %s", id, v.Node, d.NodeID)
	}
	mounted, err := d.Mounter.IsMountPoint(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "checking target_path %s: %v", target, err)
	}
	if mounted {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "creating target_path %s: %v", target, err)
	}
	mode := req.GetVolumeCapability().GetAccessMode().GetMode()
	ro := req.GetReadonly() || mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY || mode == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	if err := d.Mounter.Bind(d.Store.DataDir(id), target, ro); err != nil {
		return nil, status.Errorf(codes.Internal, "mounting volume %s at %s: %v", id, target, err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target path and removes it; a target
// that is gone or not mounted is done.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id: required")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "target_path: required")
	}
	mounted, err := d.Mounter.IsMountPoint(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "checking target_path %s: %v", target, err)
	}
	if mounted {
		if err := d.Mounter.Unmount(target); err != nil {
			return nil, status.Errorf(codes.Internal, "unmounting %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "removing target_path %s: %v", target, err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// String names the driver for logs.
func (d *Driver) String() string { return fmt.Sprintf("%s %s on %s", d.Name, d.Version, d.NodeID) }
