package driver

import (
	"context"
	"log"

	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// Registration is the kubelet plugin registration service
// (k8s.io/kubelet/pkg/apis/pluginregistration/v1) node-driver-registrar
// serves for a CSI driver; this driver serves it itself, on a socket in the
// kubelet's plugins_registry directory, since node-driver-registrar's module
// is not served by the Go module proxy. The kubelet's plugin watcher finds
// the socket, calls GetInfo, then reaches the driver's CSI socket at
// Endpoint and calls NodeGetInfo (kubelet pkg/volume/csi/csi_plugin.go),
// and reports the outcome with NotifyRegistrationStatus.
type Registration struct {
	// DriverName is the CSI driver's name.
	DriverName string
	// Endpoint is the CSI socket's path as the kubelet sees it, e.g.
	// /var/lib/kubelet/plugins/<driver>/csi.sock.
	Endpoint string
	// Registered receives every NotifyRegistrationStatus (buffered sends
	// are dropped when nobody reads); may be nil.
	Registered chan<- *registerapi.RegistrationStatus
	// Logger logs the kubelet's answers; log.Default() when nil.
	Logger *log.Logger
}

// GetInfo answers a CSIPlugin with the driver's name, endpoint, and the CSI
// versions the kubelet's csi plugin accepts (1.0.0 and later).
func (r *Registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.DriverName,
		Endpoint:          r.Endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

// NotifyRegistrationStatus logs the kubelet's verdict.
func (r *Registration) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	l := r.Logger
	if l == nil {
		l = log.Default()
	}
	if s.PluginRegistered {
		l.Printf("kubelet registered %s (endpoint %s)", r.DriverName, r.Endpoint)
	} else {
		l.Printf("kubelet refused %s: %s", r.DriverName, s.Error)
	}
	if r.Registered != nil {
		select {
		case r.Registered <- s:
		default:
		}
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
