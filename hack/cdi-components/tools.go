//go:build tools

// Package tools pins the CDI v1.65.0 commands that scripts/cdi-build.sh
// builds from this module: the operator and what it deploys
// (pkg/operator/resources: controller, apiserver, uploadproxy; the
// controller's IMPORTER_IMAGE, CLONER_IMAGE, UPLOADSERVER_IMAGE and
// OVIRT_POPULATOR_IMAGE pods; the importer image also carries the
// openstack populator and the three tools cmd/cdi-importer/BUILD.bazel puts
// in it), and CDI's manifest generator
// (tools/manifest-generator), which renders cdi-operator.yaml and
// cdi-cr.yaml from the operator's own resource code.
package tools

import (
	_ "kubevirt.io/containerized-data-importer/cmd/cdi-apiserver"
	_ "kubevirt.io/containerized-data-importer/cmd/cdi-cloner"
	_ "kubevirt.io/containerized-data-importer/cmd/cdi-controller"
	_ "kubevirt.io/containerized-data-importer/cmd/cdi-importer"
	_ "kubevirt.io/containerized-data-importer/cmd/cdi-operator"
	_ "kubevirt.io/containerized-data-importer/cmd/cdi-uploadproxy"
	_ "kubevirt.io/containerized-data-importer/cmd/cdi-uploadserver"
	_ "kubevirt.io/containerized-data-importer/cmd/openstack-populator"
	_ "kubevirt.io/containerized-data-importer/cmd/ovirt-populator"
	_ "kubevirt.io/containerized-data-importer/tools/cdi-containerimage-server"
	_ "kubevirt.io/containerized-data-importer/tools/cdi-image-size-detection"
	_ "kubevirt.io/containerized-data-importer/tools/cdi-source-update-poller"
	_ "kubevirt.io/containerized-data-importer/tools/manifest-generator"
)
