package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

// Volume is what the store records of one volume, in <root>/meta/<id>.json.
// Its data is the directory <root>/volumes/<id>.
type Volume struct {
	// ID is the CSI volume ID; it is the CreateVolume name (the
	// external-provisioner's "pvc-<uid>"), so a retried CreateVolume finds it.
	ID string `json:"id"`
	// CapacityBytes is the size the volume was created or last expanded to,
	// in bytes. A directory has no size of its own: this is the number the
	// driver reports to Kubernetes (PV capacity), not a quota.
	CapacityBytes int64 `json:"capacityBytes"`
	// Node is the node the volume's directory is on (its topology); empty
	// for a shared volume, which every node may publish.
	Node string `json:"node"`
	// Source is what the volume's content was copied from (CreateVolume's
	// volume_content_source); nil for an empty volume.
	Source *Source `json:"source,omitempty"`
	// Copy says how the content was copied (reflink or plain copy); nil
	// for an empty volume.
	Copy *CopyStats `json:"copy,omitempty"`
}

// Source names a volume's content source.
type Source struct {
	// Kind is SourceSnapshot or SourceVolume.
	Kind string `json:"kind"`
	// ID is the snapshot's or the volume's ID.
	ID string `json:"id"`
}

// The kinds of Source.
const (
	SourceSnapshot = "snapshot"
	SourceVolume   = "volume"
)

// idPattern is what a volume ID may look like: letters, digits, '-', '_'
// and '.', starting and ending with a letter or digit, at most 253 (the
// external-provisioner sends "pvc-<uid>"), so an ID never names a path
// outside the store. Case is kept: "A" and "a" are two volumes.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9._]{0,251}[A-Za-z0-9])?$`)

// ErrNotFound is returned for a volume ID the store has no record of.
var ErrNotFound = errors.New("volume not found")

// ErrPending is returned while another call creates the same volume or
// snapshot (CSI's "Operation pending": ABORTED).
var ErrPending = errors.New("an operation is pending for this name")

// Store keeps volumes as directories under one root:
//
//	<root>/volumes/<id>/    the data (mode 0777, like local-path's, so the
//	                        importer's and virt-launcher's non-root users write)
//	<root>/meta/<id>.json   the Volume record
//	<root>/snapshots/<id>/  a snapshot's data (see Snapshot)
//	<root>/snapshot-meta/<id>.json   the Snapshot record
//	<root>/tmp/             copies being made, renamed into place when done
//
// A record is written last: a directory without one is an unfinished
// copy, replaced by the next attempt. Safe for concurrent use within one
// process; a copy runs outside the lock, and a second call for the same
// name meanwhile gets ErrPending.
type Store struct {
	root string
	mu   sync.Mutex
	// pending names the volumes ("volume/<id>") and snapshots
	// ("snapshot/<id>") being copied.
	pending map[string]bool
}

// NewStore returns a Store under root, creating its two directories.
func NewStore(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("store root %q is not an absolute path", root)
	}
	for _, d := range []string{filepath.Join(root, "volumes"), filepath.Join(root, "meta"),
		filepath.Join(root, "snapshots"), filepath.Join(root, "snapshot-meta"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	return &Store{root: root, pending: map[string]bool{}}, nil
}

// ValidID reports whether id may name a volume (see idPattern).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// DataDir is the directory holding volume id's data.
func (s *Store) DataDir(id string) string { return filepath.Join(s.root, "volumes", id) }

func (s *Store) metaPath(id string) string { return filepath.Join(s.root, "meta", id+".json") }

// Get returns the record of volume id, or ErrNotFound.
func (s *Store) Get(id string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(id)
}

func (s *Store) get(id string) (Volume, error) {
	if !ValidID(id) {
		return Volume{}, fmt.Errorf("volume ID %q: %w", id, ErrNotFound)
	}
	b, err := os.ReadFile(s.metaPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return Volume{}, fmt.Errorf("volume ID %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("reading volume %q: %w", id, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return Volume{}, fmt.Errorf("volume %q: bad record %s: %w", id, s.metaPath(id), err)
	}
	return v, nil
}

// Create makes volume v (its directory, then its record) unless a volume
// with its ID exists; it returns the stored volume and whether it existed.
func (s *Store) Create(v Volume) (Volume, bool, error) {
	if !ValidID(v.ID) {
		return Volume{}, false, fmt.Errorf("volume name %q: want letters, digits, '-', '_' and '.' (at most 253)", v.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.get(v.ID)
	if err == nil {
		return old, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Volume{}, false, err
	}
	if s.pending["volume/"+v.ID] {
		return Volume{}, false, fmt.Errorf("volume %s: %w", v.ID, ErrPending)
	}
	d := s.DataDir(v.ID)
	if err := os.MkdirAll(d, 0o777); err != nil {
		return Volume{}, false, fmt.Errorf("creating %s: %w", d, err)
	}
	// MkdirAll's mode is masked by the umask.
	if err := os.Chmod(d, 0o777); err != nil {
		return Volume{}, false, fmt.Errorf("chmod %s: %w", d, err)
	}
	if err := s.put(v); err != nil {
		return Volume{}, false, err
	}
	return v, false, nil
}

// Expand records capacity for volume id when it is larger than the recorded
// one (never shrinks) and returns the volume as stored.
func (s *Store) Expand(id string, capacity int64) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get(id)
	if err != nil {
		return Volume{}, err
	}
	if capacity <= v.CapacityBytes {
		return v, nil
	}
	v.CapacityBytes = capacity
	if err := s.put(v); err != nil {
		return Volume{}, err
	}
	return v, nil
}

// Delete removes volume id's data and record; a missing volume is not an
// error (CSI DeleteVolume is idempotent).
func (s *Store) Delete(id string) error {
	if !ValidID(id) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.RemoveAll(s.DataDir(id)); err != nil {
		return fmt.Errorf("removing %s: %w", s.DataDir(id), err)
	}
	if err := os.Remove(s.metaPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", s.metaPath(id), err)
	}
	return nil
}

// put writes v's record atomically (a temporary file renamed over).
func (s *Store) put(v Volume) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p := s.metaPath(v.ID)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// CreateFrom makes volume v with a copy of the directory src as its data
// (see copyTree), unless a volume with v's ID exists; it returns the
// stored volume (its Copy says how the copy ran) and whether it existed.
// The copy is made in <root>/tmp and renamed into place, then the record
// written; while it runs, a second call for the same ID gets ErrPending.
func (s *Store) CreateFrom(v Volume, src string) (Volume, bool, error) {
	if !ValidID(v.ID) {
		return Volume{}, false, fmt.Errorf("volume name %q: want letters, digits, '-', '_' and '.' (at most 253)", v.ID)
	}
	key := "volume/" + v.ID
	s.mu.Lock()
	old, err := s.get(v.ID)
	if err == nil {
		s.mu.Unlock()
		return old, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		s.mu.Unlock()
		return Volume{}, false, err
	}
	if s.pending[key] {
		s.mu.Unlock()
		return Volume{}, false, fmt.Errorf("volume %s: %w", v.ID, ErrPending)
	}
	s.pending[key] = true
	s.mu.Unlock()
	defer s.done(key)

	st, err := s.copyIn(src, "volume-"+v.ID, s.DataDir(v.ID))
	if err != nil {
		return Volume{}, false, err
	}
	v.Copy = &st
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.put(v); err != nil {
		return Volume{}, false, err
	}
	return v, false, nil
}

// copyIn copies src to <root>/tmp/<name>, then renames it to dst (first
// removing what an unfinished earlier attempt left there).
func (s *Store) copyIn(src, name, dst string) (CopyStats, error) {
	tmp := filepath.Join(s.root, "tmp", name)
	if err := os.RemoveAll(tmp); err != nil {
		return CopyStats{}, err
	}
	st, err := copyTree(src, tmp)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return CopyStats{}, err
	}
	if err := os.RemoveAll(dst); err != nil {
		return CopyStats{}, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return CopyStats{}, fmt.Errorf("moving %s to %s: %w", tmp, dst, err)
	}
	return st, nil
}

func (s *Store) done(key string) {
	s.mu.Lock()
	delete(s.pending, key)
	s.mu.Unlock()
}
