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
// With -tls-cert and -tls-key it serves HTTPS instead (a certificate of a
// private CA, for the local cluster's check of CDI's certConfigMap). With
// -auth-dir every request but /healthz needs HTTP basic authentication
// with the user and password in the files accessKeyId and secretKey of that
// directory: the keys of the Secret CDI's secretRef names, so one mounted
// Secret serves both sides (CDI's HTTP source sends them as basic auth).
// A request without them gets 401 and WWW-Authenticate.
//
// Usage: image-server [-addr :8080] [-dir /srv] [-tls-cert F -tls-key F] [-auth-dir D]
package main

import (
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	dir := flag.String("dir", "/srv", "directory to serve (read-only)")
	certFile := flag.String("tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs -tls-key")
	keyFile := flag.String("tls-key", "", "PEM private key of -tls-cert")
	authDir := flag.String("auth-dir", "", "directory with files accessKeyId and secretKey: the basic-auth user and password every request needs")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "image-server: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if (*certFile == "") != (*keyFile == "") {
		fmt.Fprintln(os.Stderr, "image-server: -tls-cert and -tls-key go together")
		os.Exit(2)
	}
	st, err := os.Stat(*dir)
	if err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "image-server: -dir %q is not a directory: %v\n", *dir, err)
		os.Exit(2)
	}
	h := newHandler(*dir, log.Default())
	if *authDir != "" {
		user, password, err := readLogin(*authDir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "image-server: -auth-dir: %v\n", err)
			os.Exit(2)
		}
		h = withBasicAuth(h, user, password)
	}
	srv := &http.Server{
		Addr:              *addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
	if *certFile != "" {
		log.Printf("serving %s on %s over HTTPS (login: %t)", *dir, *addr, *authDir != "")
		err = srv.ListenAndServeTLS(*certFile, *keyFile)
	} else {
		log.Printf("serving %s on %s (login: %t)", *dir, *addr, *authDir != "")
		err = srv.ListenAndServe()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// readLogin reads the user (file accessKeyId) and password (file
// secretKey) of dir, a mounted Secret of CDI's secretRef shape. Trailing
// newlines are dropped; neither may be empty.
func readLogin(dir string) (user, password string, err error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("%s is empty", filepath.Join(dir, name))
		}
		return v, nil
	}
	if user, err = read("accessKeyId"); err != nil {
		return "", "", err
	}
	if password, err = read("secretKey"); err != nil {
		return "", "", err
	}
	return user, password, nil
}

// withBasicAuth answers 401 with a WWW-Authenticate challenge to every
// request but /healthz that lacks basic authentication as user/password
// (RFC 7617), and passes the others to h.
func withBasicAuth(h http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if r.URL.Path != "/healthz" && (!ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1) {
			w.Header().Set("WWW-Authenticate", `Basic realm="image-server", charset="UTF-8"`)
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
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
