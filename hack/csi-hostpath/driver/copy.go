package driver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Copy methods, as recorded in a volume's or snapshot's record
// (CopyMethod) and logged, so a benchmark can tell which one ran.
const (
	// CopyReflink: every regular file was cloned with the FICLONE ioctl
	// (copy-on-write: the copy shares the source's blocks until either is
	// written; btrfs, XFS with reflink=1, bcachefs, ...).
	CopyReflink = "reflink"
	// CopyPlain: every regular file was copied byte by byte (the file
	// system refused FICLONE, e.g. ext4 or overlayfs), holes kept.
	CopyPlain = "copy"
	// CopyMixed: some files were cloned, some copied.
	CopyMixed = "reflink+copy"
	// CopyNone: the tree had no regular file, nothing to clone or copy.
	CopyNone = "none"
)

// CopyStats says what copyTree did.
type CopyStats struct {
	// Method is one of CopyReflink, CopyPlain, CopyMixed, CopyNone.
	Method string `json:"method"`
	// Files is the number of regular files; Reflinked of them were cloned.
	Files     int `json:"files"`
	Reflinked int `json:"reflinked"`
	// Bytes is the regular files' apparent size (holes included), in bytes;
	// CopiedBytes is what a plain copy read and wrote (holes skipped).
	Bytes       int64 `json:"bytes"`
	CopiedBytes int64 `json:"copiedBytes"`
	// Seconds is the copy's wall time.
	Seconds float64 `json:"seconds"`
}

func (s *CopyStats) method() string {
	switch {
	case s.Files == 0:
		return CopyNone
	case s.Reflinked == s.Files:
		return CopyReflink
	case s.Reflinked == 0:
		return CopyPlain
	default:
		return CopyMixed
	}
}

// copyTree copies the directory src to dst (which must not exist): the
// directories, regular files (FICLONE first, else a sparse-aware copy),
// and symbolic links, each with its permission bits, owner (when run as
// root) and modification time. A hard link becomes two files; a device,
// FIFO or socket is an error naming its path (a volume's data is files).
func copyTree(src, dst string) (CopyStats, error) {
	start := time.Now()
	var st CopyStats
	root := os.Geteuid() == 0
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime
	err := filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, fi.ModTime()})
		case fi.Mode().IsRegular():
			reflinked, copied, err := copyFile(p, target)
			if err != nil {
				return fmt.Errorf("copying %s: %w", p, err)
			}
			st.Files++
			st.Bytes += fi.Size()
			st.CopiedBytes += copied
			if reflinked {
				st.Reflinked++
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: a %s, not a file, directory or symbolic link", p, fi.Mode().Type())
		}
		if root && sys != nil {
			if err := os.Lchown(target, int(sys.Uid), int(sys.Gid)); err != nil {
				return err
			}
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			// Permission, setuid, setgid and sticky bits; after the chown,
			// which clears setuid/setgid.
			if sys != nil {
				if err := unix.Chmod(target, sys.Mode&0o7777); err != nil {
					return fmt.Errorf("chmod %s: %w", target, err)
				}
			}
			if fi.Mode().IsRegular() {
				if err := os.Chtimes(target, fi.ModTime(), fi.ModTime()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	// Directory times last: making their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime); err != nil {
			return st, err
		}
	}
	st.Method = st.method()
	st.Seconds = time.Since(start).Seconds()
	return st, nil
}

// copyFile makes dst a copy of the regular file src: a reflink (FICLONE,
// ioctl_ficlone(2)) when the file system can, else a copy of src's data
// extents (lseek(2) SEEK_DATA/SEEK_HOLE), so a sparse disk image stays
// sparse. It answers whether the reflink ran and the bytes a plain copy
// wrote.
func copyFile(src, dst string) (reflinked bool, copied int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return false, 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, 0, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return true, 0, nil
	}
	// Any refusal (EOPNOTSUPP on ext4, EXDEV across file systems, EINVAL
	// on overlayfs, ...) falls back to the copy; a real I/O error shows
	// there again.
	fi, err := in.Stat()
	if err != nil {
		return false, 0, err
	}
	size := fi.Size()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(in.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil { // no SEEK_DATA: the rest is data
			data = off
		}
		hole, err := unix.Seek(int(in.Fd()), data, unix.SEEK_HOLE)
		if err != nil || hole <= data {
			hole = size
		}
		n, err := io.CopyBuffer(io.NewOffsetWriter(out, data), io.NewSectionReader(in, data, hole-data), buf)
		copied += n
		if err != nil {
			return false, copied, err
		}
		off = hole
	}
	// The size, with any trailing hole.
	return false, copied, out.Truncate(size)
}
