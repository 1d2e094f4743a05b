// Command imagetool writes an image as a docker-archive tar (the format
// `ctr -n k8s.io images import` reads) from whole directory trees, one layer
// per tree, with go-containerregistry. scripts/kubevirt-build.sh uses it for
// KubeVirt's component images (a static binary and a passwd file, or a
// Debian root filesystem made with debootstrap) and for the guest's
// containerDisk. hack/local-images/cmd/mkimage writes single files owned by
// root; this tool also keeps owners, modes, symlinks, hard links and file
// capabilities (security.capability), which a root filesystem needs.
//
// Usage:
//
//	imagetool -ref localhost/kubevirt/virt-api:v1.9.0 -out virt-api.tar \
//	  -layer DIR[:UID:GID] [-layer ...] [-exclude usr/share/doc ...] \
//	  [-entrypoint /usr/bin/virt-api] [-user 1001] [-env K=V ...] [-workdir /]
//
// -layer DIR[:UID:GID]: the tree under DIR becomes one layer, rooted at /;
// with UID:GID every entry gets that owner (a containerDisk's /disk/ is
// 107:107, KubeVirt's qemu user), else each keeps its owner on disk.
// -exclude PATH (repeatable) leaves out PATH and everything under it (PATH is
// relative to each layer's root). Sockets, FIFOs and device nodes are left
// out (the container runtime provides /dev). Every entry carries the Unix
// epoch as its modification time, so the same trees give the same digest.
//
// Errors: a missing -ref/-out/-layer, a bad reference, or a tree that cannot
// be read ends the command with status 1 and a message naming the flag or
// the path.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the modification time of every entry (reproducible layers).
var epoch = time.Unix(0, 0).UTC()

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type layerSpec struct {
	dir      string
	uid, gid int // -1: keep the owner on disk
}

func parseLayer(v string) (layerSpec, error) {
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 1:
		return layerSpec{dir: parts[0], uid: -1, gid: -1}, nil
	case 3:
		uid, err1 := strconv.Atoi(parts[1])
		gid, err2 := strconv.Atoi(parts[2])
		if err := errors.Join(err1, err2); err != nil || uid < 0 || gid < 0 {
			return layerSpec{}, fmt.Errorf("-layer %q: UID and GID must be non-negative integers", v)
		}
		return layerSpec{dir: parts[0], uid: uid, gid: gid}, nil
	default:
		return layerSpec{}, fmt.Errorf("-layer %q: want DIR or DIR:UID:GID", v)
	}
}

func main() {
	var layers, excludes, envs multi
	ref := flag.String("ref", "", "image reference, e.g. localhost/kubevirt/virt-api:v1.9.0 (required)")
	out := flag.String("out", "", "docker-archive tar to write (required)")
	entrypoint := flag.String("entrypoint", "", "comma-separated entrypoint")
	user := flag.String("user", "", "image user, e.g. 1001 (empty: root)")
	workdir := flag.String("workdir", "", "working directory")
	flag.Var(&layers, "layer", "DIR[:UID:GID] whose tree becomes one layer (repeatable, in order)")
	flag.Var(&excludes, "exclude", "path relative to a layer root to leave out, with everything under it (repeatable)")
	flag.Var(&envs, "env", "K=V in the image config (repeatable; default PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)")
	flag.Parse()
	if err := run(*ref, *out, *entrypoint, *user, *workdir, layers, excludes, envs); err != nil {
		fmt.Fprintln(os.Stderr, "imagetool:", err)
		os.Exit(1)
	}
}

func run(ref, out, entrypoint, user, workdir string, layers, excludes, envs []string) error {
	if ref == "" || out == "" || len(layers) == 0 {
		return errors.New("-ref, -out and at least one -layer are required")
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("-ref %q: %w", ref, err)
	}
	img := empty.Image
	var temps []string
	defer func() {
		for _, t := range temps {
			_ = os.Remove(t)
		}
	}()
	for i, l := range layers {
		spec, err := parseLayer(l)
		if err != nil {
			return err
		}
		tmp := fmt.Sprintf("%s.layer%d.tar", out, i)
		temps = append(temps, tmp)
		skipped, err := writeLayer(spec, excludes, tmp)
		if err != nil {
			return err
		}
		if skipped > 0 {
			fmt.Fprintf(os.Stderr, "imagetool: %s: left out %d sockets, FIFOs or device nodes\n", spec.dir, skipped)
		}
		layer, err := tarball.LayerFromFile(tmp, tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Env = envs
	if len(envs) == 0 {
		cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cf.Config.User = user
	cf.Config.WorkingDir = workdir
	if entrypoint != "" {
		cf.Config.Entrypoint = strings.Split(entrypoint, ",")
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

type inode struct{ dev, ino uint64 }

// writeLayer writes the tree under spec.dir as an uncompressed tar to dst
// and returns how many special files it left out.
func writeLayer(spec layerSpec, excludes []string, dst string) (int, error) {
	root, err := filepath.Abs(spec.dir)
	if err != nil {
		return 0, err
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return 0, fmt.Errorf("-layer %q: not a directory", spec.dir)
	}
	f, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	links := map[inode]string{}
	skipped := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, x := range excludes {
			if rel == x || strings.HasPrefix(rel, strings.TrimSuffix(x, "/")+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode()
		if mode&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			skipped++
			return nil
		}
		target := ""
		if mode&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.ModTime, h.AccessTime, h.ChangeTime = epoch, time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if st != nil {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		}
		if spec.uid >= 0 {
			h.Uid, h.Gid = spec.uid, spec.gid
		}
		if mode.IsRegular() && st != nil && st.Nlink > 1 {
			key := inode{dev: st.Dev, ino: st.Ino}
			if first, ok := links[key]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(h)
			}
			links[key] = rel
		}
		if mode.IsRegular() {
			if c := capability(p); c != "" {
				h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": c}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !mode.IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := io.Copy(tw, src); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("-layer %q: %w", spec.dir, err)
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return skipped, f.Close()
}

// capability returns the raw security.capability xattr of p, or "" when it
// has none (setcap's file capabilities, which containerd restores).
func capability(p string) string {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(p, "security.capability", buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}
