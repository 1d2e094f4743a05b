package driver

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Mounter makes and removes the driver's mounts.
type Mounter interface {
	// IsMountPoint reports whether path is a mount point; a missing path
	// is not one (false, nil).
	IsMountPoint(path string) (bool, error)
	// Bind bind-mounts src at target, read-only when ro.
	Bind(src, target string, ro bool) error
	// Unmount unmounts target.
	Unmount(target string) error
}

// LinuxMounter is the Mounter of a Linux node: mount(2) and umount(2), and
// /proc/self/mountinfo for mount points (the driver's container must see
// the kubelet's pod directories with Bidirectional propagation, so its
// mounts reach the kubelet and the pod).
type LinuxMounter struct {
	// MountInfo is the mountinfo file to read; /proc/self/mountinfo when empty.
	MountInfo string
}

// IsMountPoint looks for path (symlinks resolved) among the mount points of
// the mountinfo file (proc(5): the fifth field, octal escapes for space,
// tab, newline and backslash).
func (m LinuxMounter) IsMountPoint(path string) (bool, error) {
	p, err := filepath.EvalSymlinks(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	info := m.MountInfo
	if info == "" {
		info = "/proc/self/mountinfo"
	}
	f, err := os.Open(info)
	if err != nil {
		return false, err
	}
	defer f.Close() //nolint:errcheck // read only
	return mountPointIn(bufio.NewScanner(f), p)
}

func mountPointIn(sc *bufio.Scanner, path string) (bool, error) {
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && unescapeMountInfo(f[4]) == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountInfo undoes mountinfo's \ooo octal escapes.
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Bind bind-mounts src at target; a read-only bind needs a second,
// remounting call (mount(2): MS_BIND ignores MS_RDONLY on the first).
func (LinuxMounter) Bind(src, target string, ro bool) error {
	if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount --bind %s %s: %w", src, target, err)
	}
	if ro {
		if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			_ = syscall.Unmount(target, 0)
			return fmt.Errorf("remounting %s read-only: %w", target, err)
		}
	}
	return nil
}

// Unmount unmounts target.
func (LinuxMounter) Unmount(target string) error {
	if err := syscall.Unmount(target, 0); err != nil {
		return fmt.Errorf("umount %s: %w", target, err)
	}
	return nil
}
