// Command mkimage writes a single-layer OCI image as a docker-archive tar
// (the format `ctr images import` and `docker load` read) from files on disk,
// with go-containerregistry. scripts/local-cluster/core.sh builds the pause and
// manager images with it, so the local cluster needs no registry and no
// Docker.
//
// Usage:
//
//	mkimage -ref localhost/wukong/manager:dev -out manager.tar \
//	  -file /path/to/manager=/manager:0755 -entrypoint /manager -user 65532:65532
//
// -file (repeatable) is SRC=DEST:MODE with an octal MODE; parent directories
// of DEST are added as 0755 root-owned directories. Every entry belongs to
// uid/gid 0 and carries a fixed modification time, so the same inputs give
// the same image digest.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the modification time of every entry (reproducible layers).
var epoch = time.Unix(0, 0).UTC()

type fileSpec struct {
	src, dest string
	mode      int64
}

type fileList []fileSpec

func (f *fileList) String() string { return fmt.Sprint(*f) }

func (f *fileList) Set(v string) error {
	src, rest, ok := strings.Cut(v, "=")
	if !ok || src == "" {
		return fmt.Errorf("-file %q: want SRC=DEST:MODE", v)
	}
	dest, modeText, ok := strings.Cut(rest, ":")
	if !ok || !strings.HasPrefix(dest, "/") {
		return fmt.Errorf("-file %q: DEST must be absolute and followed by :MODE", v)
	}
	mode, err := strconv.ParseInt(modeText, 8, 32)
	if err != nil {
		return fmt.Errorf("-file %q: MODE %q is not octal: %w", v, modeText, err)
	}
	*f = append(*f, fileSpec{src: src, dest: path.Clean(dest), mode: mode})
	return nil
}

func main() {
	var files fileList
	ref := flag.String("ref", "", "image reference, e.g. localhost/wukong/pause:dev (required)")
	out := flag.String("out", "", "docker-archive tar to write (required)")
	entrypoint := flag.String("entrypoint", "", "comma-separated entrypoint")
	user := flag.String("user", "", "image user, e.g. 65532:65532 (empty: root)")
	flag.Var(&files, "file", "SRC=DEST:MODE to put in the image (repeatable)")
	flag.Parse()
	if err := run(*ref, *out, *entrypoint, *user, files); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(ref, out, entrypoint, user string, files fileList) error {
	if ref == "" || out == "" || len(files) == 0 {
		return errors.New("-ref, -out and at least one -file are required")
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("-ref %q: %w", ref, err)
	}
	layer, err := layer(files)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Env = []string{"PATH=/"}
	cf.Config.User = user
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

// layer is one uncompressed tar layer holding files and their parents.
func layer(files fileList) (v1.Layer, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.dest); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range sorted {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.dest, "/"), Mode: f.mode, Size: int64(len(data)), ModTime: epoch}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
