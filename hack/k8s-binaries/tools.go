//go:build tools

// Package tools pins the commands built by scripts/envtest-assets.sh and
// scripts/local-cluster/core.sh (kubelet).
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain" // wrapped by cmd/etcd
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
