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
}

// idPattern is what a volume ID may look like: letters, digits, '-', '_'
// and '.', starting and ending with a letter or digit, at most 253 (the
// external-provisioner sends "pvc-<uid>"), so an ID never names a path
// outside the store. Case is kept: "A" and "a" are two volumes.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9._]{0,251}[A-Za-z0-9])?$`)

// ErrNotFound is returned for a volume ID the store has no record of.
var ErrNotFound = errors.New("volume not found")

// Store keeps volumes as directories under one root:
//
//	<root>/volumes/<id>/    the data (mode 0777, like local-path's, so the
//	                        importer's and virt-launcher's non-root users write)
//	<root>/meta/<id>.json   the Volume record
//
// Safe for concurrent use within one process.
type Store struct {
	root string
	mu   sync.Mutex
}

// NewStore returns a Store under root, creating its two directories.
func NewStore(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("store root %q is not an absolute path", root)
	}
	for _, d := range []string{filepath.Join(root, "volumes"), filepath.Join(root, "meta")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	return &Store{root: root}, nil
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
