// Command image-server serves the files of one directory over plain HTTP
// with net/http.FileServer: GET and HEAD with Content-Length,
// Last-Modified and byte ranges (Accept-Ranges: bytes), which CDI's importer
// uses (its HTTP source probes the size with HEAD and nbdkit's curl plugin
// reads ranges). /healthz answers 200 "ok" for probes. Each request is
// logged with its method, path, Range header, status and bytes sent.
//
// In the local cluster it serves the guest disk as /guest.qcow2 from the
// image localhost/wukong/image-server (scripts/image-server-build.sh), so a DataVolume
// with source http://image-server.<ns>.svc:8080/guest.qcow2 imports it.
//
// Usage: image-server [-addr :8080] [-dir /srv]
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	dir := flag.String("dir", "/srv", "directory to serve (read-only)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "image-server: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	st, err := os.Stat(*dir)
	if err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "image-server: -dir %q is not a directory: %v\n", *dir, err)
		os.Exit(2)
	}
	srv := &http.Server{
		Addr:              *addr,
		Handler:           newHandler(*dir, log.Default()),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving %s on %s", *dir, *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// newHandler serves dir with http.FileServer, /healthz with 200 "ok", and
// logs every request to l.
func newHandler(dir string, l *log.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/", http.FileServer(http.Dir(dir)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		mux.ServeHTTP(rec, r)
		if r.URL.Path != "/healthz" {
			l.Printf("%s %s range=%q %d %dB %s %s", r.Method, r.URL.Path, r.Header.Get("Range"), rec.status, rec.bytes,
				time.Since(start).Round(time.Millisecond), r.RemoteAddr)
		}
	})
}

// recorder keeps the status and body size a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}
