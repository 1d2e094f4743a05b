package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// readTar returns the headers of the tar at p by name, and the content of
// regular files.
func readTar(t *testing.T, p string) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			data[h.Name] = string(b)
		}
	}
}

func TestWriteLayerKeepsTreeAndForcesOwner(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "disk"), 0o755))
	must(os.WriteFile(filepath.Join(root, "disk", "disk.qcow2"), []byte("qcow"), 0o644))
	must(os.Link(filepath.Join(root, "disk", "disk.qcow2"), filepath.Join(root, "disk", "same.qcow2")))
	must(os.Symlink("disk.qcow2", filepath.Join(root, "disk", "link")))
	must(os.MkdirAll(filepath.Join(root, "usr", "share", "doc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr", "share", "doc", "README"), []byte("x"), 0o644))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))

	out := filepath.Join(t.TempDir(), "layer.tar")
	skipped, err := writeLayer(layerSpec{dir: root, uid: 107, gid: 107}, []string{"usr/share/doc"}, out)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 {
		t.Errorf("skipped = %d, want 1 (the FIFO)", skipped)
	}
	hdrs, data := readTar(t, out)
	if data["disk/disk.qcow2"] != "qcow" {
		t.Errorf("disk/disk.qcow2 content = %q, want %q", data["disk/disk.qcow2"], "qcow")
	}
	for name, h := range hdrs {
		if h.Uid != 107 || h.Gid != 107 {
			t.Errorf("%s owner = %d:%d, want 107:107", name, h.Uid, h.Gid)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s mtime = %v, want the epoch", name, h.ModTime)
		}
	}
	if h := hdrs["disk/same.qcow2"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "disk/disk.qcow2" {
		t.Errorf("disk/same.qcow2 = %+v, want a hard link to disk/disk.qcow2", h)
	}
	if h := hdrs["disk/link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "disk.qcow2" {
		t.Errorf("disk/link = %+v, want a symlink to disk.qcow2", h)
	}
	if h := hdrs["disk/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("disk/ = %+v, want a directory entry", h)
	}
	for _, gone := range []string{"usr/share/doc/", "usr/share/doc/README", "fifo"} {
		if _, ok := hdrs[gone]; ok {
			t.Errorf("%s is in the layer, want it left out", gone)
		}
	}
	if _, ok := hdrs["usr/share/"]; !ok {
		t.Error("usr/share/ is missing: only usr/share/doc was excluded")
	}
}

func TestParseLayerRejectsBadOwner(t *testing.T) {
	for _, v := range []string{"dir:1", "dir:a:b", "dir:-1:0", "dir:1:2:3"} {
		if _, err := parseLayer(v); err == nil {
			t.Errorf("parseLayer(%q) = nil error, want an error naming -layer", v)
		}
	}
	spec, err := parseLayer("dir")
	if err != nil || spec.uid != -1 || spec.gid != -1 {
		t.Errorf("parseLayer(\"dir\") = %+v, %v; want owners kept (-1)", spec, err)
	}
}

func TestRunNeedsRefOutLayer(t *testing.T) {
	if err := run("", "x.tar", "", "", "", []string{"d"}, nil, nil); err == nil {
		t.Error("run without -ref: nil error")
	}
	if err := run("localhost/a:b", "x.tar", "", "", "", nil, nil, nil); err == nil {
		t.Error("run without -layer: nil error")
	}
}
