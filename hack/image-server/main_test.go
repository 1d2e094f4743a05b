package main

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func serve(t *testing.T) (*httptest.Server, *bytes.Buffer, []byte) {
	t.Helper()
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	if err := os.WriteFile(filepath.Join(dir, "guest.qcow2"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv := httptest.NewServer(newHandler(dir, log.New(&logs, "", 0)))
	t.Cleanup(srv.Close)
	return srv, &logs, data
}

func TestWholeFileAndHead(t *testing.T) {
	srv, logs, data := serve(t)
	resp, err := http.Get(srv.URL + "/guest.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET: status %d, %d bytes, want 200 and %d bytes", resp.StatusCode, len(body), len(data))
	}
	if got := resp.Header.Get("Accept-Ranges"); got != "bytes" {
		t.Errorf("Accept-Ranges = %q, want bytes", got)
	}
	head, err := http.Head(srv.URL + "/guest.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	_ = head.Body.Close()
	if head.ContentLength != int64(len(data)) {
		t.Errorf("HEAD Content-Length = %d, want %d", head.ContentLength, len(data))
	}
	if !strings.Contains(logs.String(), "GET /guest.qcow2 range=\"\" 200 65536B") {
		t.Errorf("log lacks the GET line: %q", logs.String())
	}
}

func TestRange(t *testing.T) {
	srv, logs, data := serve(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/guest.qcow2", nil)
	req.Header.Set("Range", "bytes=16-31")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[16:32]) {
		t.Fatalf("range: status %d body %q, want 206 and %q", resp.StatusCode, body, data[16:32])
	}
	if !strings.Contains(logs.String(), `range="bytes=16-31" 206 16B`) {
		t.Errorf("log lacks the range line: %q", logs.String())
	}
}

func TestMissingAndHealthz(t *testing.T) {
	srv, logs, _ := serve(t)
	resp, err := http.Get(srv.URL + "/nope.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: status %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("healthz: %d %q, want 200 ok", resp.StatusCode, body)
	}
	if strings.Contains(logs.String(), "/healthz") {
		t.Errorf("healthz was logged: %q", logs.String())
	}
}

func TestBasicAuth(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "guest.qcow2"), []byte("disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	login := t.TempDir()
	for name, v := range map[string]string{"accessKeyId": "robot\n", "secretKey": "s3cr3t"} {
		if err := os.WriteFile(filepath.Join(login, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	user, password, err := readLogin(login)
	if err != nil || user != "robot" || password != "s3cr3t" {
		t.Fatalf("readLogin = %q, %q, %v; want robot, s3cr3t (the trailing newline dropped)", user, password, err)
	}
	var logs bytes.Buffer
	srv := httptest.NewServer(withBasicAuth(newHandler(dir, log.New(&logs, "", 0)), user, password))
	t.Cleanup(srv.Close)
	get := func(path, u, p string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if u != "" {
			req.SetBasicAuth(u, p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	for _, c := range []struct {
		path, user, password string
		want                 int
	}{
		{"/guest.qcow2", "", "", http.StatusUnauthorized},
		{"/guest.qcow2", "robot", "wrong", http.StatusUnauthorized},
		{"/guest.qcow2", "other", "s3cr3t", http.StatusUnauthorized},
		{"/guest.qcow2", "robot", "s3cr3t", http.StatusOK},
		{"/healthz", "", "", http.StatusOK},
	} {
		status, header := get(c.path, c.user, c.password)
		if status != c.want {
			t.Errorf("GET %s as %q/%q: %d, want %d", c.path, c.user, c.password, status, c.want)
		}
		if c.want == http.StatusUnauthorized && !strings.HasPrefix(header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("GET %s as %q: WWW-Authenticate %q, want a Basic challenge", c.path, c.user, header.Get("WWW-Authenticate"))
		}
	}

	if err := os.WriteFile(filepath.Join(login, "secretKey"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readLogin(login); err == nil || !strings.Contains(err.Error(), "secretKey is empty") {
		t.Errorf("readLogin with an empty secretKey: %v, want an error naming it", err)
	}
}
