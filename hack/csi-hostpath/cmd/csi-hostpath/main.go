// Command csi-hostpath runs Wukong's minimal CSI driver (package driver) for
// the local cluster: the CSI Identity, Controller and Node services on
// -endpoint, and the kubelet plugin registration service on
// -registration-socket (when set), which tells the kubelet to reach the
// driver at -kubelet-endpoint.
//
// Usage:
//
//	csi-hostpath -node-id NODE [-endpoint unix:///csi/csi.sock] [-root /var/lib/wukong-csi]
//	    [-driver-name hostpath.csi.wukong.novasphere.dev] [-socket-gid GID]
//	    [-registration-socket /registration/hostpath.csi.wukong.novasphere.dev-reg.sock
//	     -kubelet-endpoint /var/lib/kubelet/plugins/hostpath.csi.wukong.novasphere.dev/csi.sock]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/novasphere/wukong/hack/csi-hostpath/driver"
)

// version is set by the build (-ldflags -X main.version=...).
var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "csi-hostpath: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	name := flag.String("driver-name", "hostpath.csi.wukong.novasphere.dev", "the CSI driver's name")
	endpoint := flag.String("endpoint", "unix:///csi/csi.sock", "the CSI socket (unix://PATH)")
	nodeID := flag.String("node-id", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	root := flag.String("root", "/var/lib/wukong-csi", "the directory holding the volumes")
	regSock := flag.String("registration-socket", "", "the kubelet plugin registration socket to serve (empty: none)")
	kubeletEndpoint := flag.String("kubelet-endpoint", "", "the CSI socket's path as the kubelet sees it (with -registration-socket)")
	socketGID := flag.Int("socket-gid", -1, "the group that may use the CSI socket (mode 0660; the sidecars run as non-root in it); -1: root only")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *nodeID == "" {
		return errors.New("-node-id (or $NODE_NAME) is required")
	}
	if *regSock != "" && *kubeletEndpoint == "" {
		return errors.New("-kubelet-endpoint is required with -registration-socket")
	}
	store, err := driver.NewStore(*root)
	if err != nil {
		return err
	}
	d := &driver.Driver{Name: *name, Version: version, NodeID: *nodeID, Store: store, Mounter: driver.LinuxMounter{}}

	path, ok := strings.CutPrefix(*endpoint, "unix://")
	if !ok {
		return fmt.Errorf("-endpoint %q: want unix://PATH", *endpoint)
	}
	csiLis, err := listenUnix(path)
	if err != nil {
		return err
	}
	// Connecting to a unix socket needs write permission on it; the socket
	// is made 0755 by the umask, so non-root sidecars get it by group.
	if *socketGID >= 0 {
		if err := os.Chown(path, -1, *socketGID); err != nil {
			return fmt.Errorf("-socket-gid %d: %w", *socketGID, err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			return fmt.Errorf("-socket-gid %d: %w", *socketGID, err)
		}
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	csi.RegisterIdentityServer(srv, d)
	csi.RegisterControllerServer(srv, d)
	csi.RegisterNodeServer(srv, d)
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(csiLis) }()
	log.Printf("%s: CSI on %s, volumes in %s", d, path, *root)

	var reg *grpc.Server
	if *regSock != "" {
		regLis, err := listenUnix(*regSock)
		if err != nil {
			return err
		}
		reg = grpc.NewServer()
		registerapi.RegisterRegistrationServer(reg, &driver.Registration{DriverName: *name, Endpoint: *kubeletEndpoint})
		go func() { errs <- reg.Serve(regLis) }()
		log.Printf("registration on %s (kubelet endpoint %s)", *regSock, *kubeletEndpoint)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case err = <-errs:
	case <-ctx.Done():
		log.Printf("stopping: %v", ctx.Err())
	}
	// The registration socket goes first so the kubelet stops using the
	// driver; both are removed so a restart finds no stale socket.
	if reg != nil {
		reg.Stop()
		_ = os.Remove(*regSock)
	}
	srv.GracefulStop()
	_ = os.Remove(path)
	return err
}

// listenUnix listens on a unix socket at path, removing a stale one first.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	return l, nil
}

// logCalls logs every CSI call but the probes and capability queries,
// secrets stripped, with its error.
func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if !strings.HasSuffix(info.FullMethod, "/Probe") && !strings.HasSuffix(info.FullMethod, "Capabilities") {
		if err != nil {
			log.Printf("%s %s: error: %v", info.FullMethod, protosanitizer.StripSecrets(req), err)
		} else {
			log.Printf("%s %s: ok", info.FullMethod, protosanitizer.StripSecrets(req))
		}
	}
	return resp, err
}
