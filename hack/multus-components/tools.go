//go:build tools

// Package tools pins the Multus thick commands scripts/multus-build.sh builds:
// the daemon, the shim CNI binary containerd runs, the installer the
// DaemonSet's init container runs, and the passthru CNI plugin that
// installer copies (Multus's hack/build-go.sh builds them the same way,
// with the version in pkg/multus.version).
package tools

import (
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/install_multus"
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus-daemon"
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus-shim"
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/passthru-cni"
)
