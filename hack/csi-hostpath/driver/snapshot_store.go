package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Snapshot is what the store records of one snapshot, in
// <root>/snapshot-meta/<id>.json. Its data is the directory
// <root>/snapshots/<id>: a copy of the source volume's directory when it
// was cut, made as copyTree makes one (a reflink of every file where the
// file system can, so a snapshot costs no space until the volume changes;
// a plain, hole-keeping copy otherwise). A directory copy rather than a
// tar: files can be reflinked into a directory, both when cutting and when
// restoring, where a tar would be a full copy each way. It is read-only in
// that no RPC writes it or publishes it into a pod: CreateVolume copies it
// out, DeleteSnapshot removes it.
type Snapshot struct {
	// ID is the CSI snapshot ID; it is the CreateSnapshot name (the
	// external-snapshotter's "snapshot-<uid>"), so a retried CreateSnapshot
	// finds it.
	ID string `json:"id"`
	// SourceVolumeID is the volume it was cut from.
	SourceVolumeID string `json:"sourceVolumeId"`
	// SizeBytes is the source volume's capacity when it was cut, in bytes:
	// the least a volume made from it may have (the CSI Snapshot message's
	// size_bytes; the external-snapshotter makes it the
	// VolumeSnapshot's status.restoreSize).
	SizeBytes int64 `json:"sizeBytes"`
	// CreationTime is when the copy began (the point in time it shows).
	CreationTime time.Time `json:"creationTime"`
	// Copy says how the copy ran.
	Copy *CopyStats `json:"copy,omitempty"`
}

// ErrSnapshotNotFound is returned for a snapshot ID the store has no
// record of.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// SnapshotDir is the directory holding snapshot id's data.
func (s *Store) SnapshotDir(id string) string { return filepath.Join(s.root, "snapshots", id) }

func (s *Store) snapshotMetaPath(id string) string {
	return filepath.Join(s.root, "snapshot-meta", id+".json")
}

// GetSnapshot returns the record of snapshot id, or ErrSnapshotNotFound.
func (s *Store) GetSnapshot(id string) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getSnapshot(id)
}

func (s *Store) getSnapshot(id string) (Snapshot, error) {
	if !ValidID(id) {
		return Snapshot{}, fmt.Errorf("snapshot ID %q: %w", id, ErrSnapshotNotFound)
	}
	b, err := os.ReadFile(s.snapshotMetaPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return Snapshot{}, fmt.Errorf("snapshot ID %q: %w", id, ErrSnapshotNotFound)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading snapshot %q: %w", id, err)
	}
	var sn Snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q: bad record %s: %w", id, s.snapshotMetaPath(id), err)
	}
	return sn, nil
}

// CreateSnapshot cuts snapshot id of volume volumeID unless a snapshot
// with that ID exists; it returns the stored snapshot and whether it
// existed (the caller compares its source). ErrNotFound: no such volume;
// ErrPending: another call is cutting the same ID.
func (s *Store) CreateSnapshot(id, volumeID string) (Snapshot, bool, error) {
	if !ValidID(id) {
		return Snapshot{}, false, fmt.Errorf("snapshot name %q: want letters, digits, '-', '_' and '.' (at most 253)", id)
	}
	key := "snapshot/" + id
	s.mu.Lock()
	old, err := s.getSnapshot(id)
	if err == nil {
		s.mu.Unlock()
		return old, true, nil
	}
	if !errors.Is(err, ErrSnapshotNotFound) {
		s.mu.Unlock()
		return Snapshot{}, false, err
	}
	if s.pending[key] {
		s.mu.Unlock()
		return Snapshot{}, false, fmt.Errorf("snapshot %s: %w", id, ErrPending)
	}
	v, err := s.get(volumeID)
	if err != nil {
		s.mu.Unlock()
		return Snapshot{}, false, err
	}
	s.pending[key] = true
	s.mu.Unlock()
	defer s.done(key)

	sn := Snapshot{ID: id, SourceVolumeID: v.ID, SizeBytes: v.CapacityBytes, CreationTime: time.Now().UTC()}
	st, err := s.copyIn(s.DataDir(v.ID), "snapshot-"+id, s.SnapshotDir(id))
	if err != nil {
		return Snapshot{}, false, err
	}
	sn.Copy = &st
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.putSnapshot(sn); err != nil {
		return Snapshot{}, false, err
	}
	return sn, false, nil
}

// DeleteSnapshot removes snapshot id's data and record; a missing snapshot
// is not an error (CSI DeleteSnapshot is idempotent). The record goes
// first, so a half-removed snapshot is never listed.
func (s *Store) DeleteSnapshot(id string) error {
	if !ValidID(id) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.snapshotMetaPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", s.snapshotMetaPath(id), err)
	}
	if err := os.RemoveAll(s.SnapshotDir(id)); err != nil {
		return fmt.Errorf("removing %s: %w", s.SnapshotDir(id), err)
	}
	return nil
}

// Snapshots returns every recorded snapshot, ordered by ID.
func (s *Store) Snapshots() ([]Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(filepath.Join(s.root, "snapshot-meta"))
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue // put's .tmp files
		}
		sn, err := s.getSnapshot(id)
		if errors.Is(err, ErrSnapshotNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// putSnapshot writes sn's record atomically.
func (s *Store) putSnapshot(sn Snapshot) error {
	b, err := json.Marshal(sn)
	if err != nil {
		return err
	}
	p := s.snapshotMetaPath(sn.ID)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}
