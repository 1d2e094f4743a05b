package sandbox

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// Images are the disk images the simulated CDI can import, by source
// (http(s) URL, or registry URL docker://...), with their virtual sizes. A
// source not listed fails as CDI fails on a missing image: an HTTP 404, or
// a registry "manifest unknown". Sizes are the real images' where the image
// is real (qemu-img info of the published files), and small made-up ones for
// the test fixtures on example domains.
var Images = map[string]resource.Quantity{
	// Ubuntu 24.04 (noble) cloud image: 3.5 GiB virtual.
	"https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img": resource.MustParse("3584Mi"),
	// quay.io/containerdisks (KubeVirt's containerdisks project): Fedora 40
	// Cloud Base 5 GiB, CentOS Stream 9 GenericCloud 10 GiB, Ubuntu 24.04
	// 3.5 GiB virtual.
	"docker://quay.io/containerdisks/fedora:40":                   resource.MustParse("5Gi"),
	"docker://quay.io/containerdisks/centos-stream:9":             resource.MustParse("10Gi"),
	"docker://quay.io/containerdisks/ubuntu:24.04":                resource.MustParse("3584Mi"),
	"docker://quay.io/kubevirt/cirros-container-disk-demo:latest": resource.MustParse("44Mi"),
	// Test fixtures (example domains; no such files exist).
	"https://images.example.org/guest.qcow2": resource.MustParse("2Gi"),
	"https://images.example.com/disk.qcow2":  resource.MustParse("1Gi"),
	// Behind a private CA or a login (see accessError).
	"https://private-ca.images.example.org/guest.qcow2": resource.MustParse("1Gi"),
	"https://login.images.example.org/guest.qcow2":      resource.MustParse("1Gi"),
	"docker://private-ca.registry.example.org/guest:1":  resource.MustParse("1Gi"),
	"docker://login.registry.example.org/guest:1":       resource.MustParse("1Gi"),
}

// importError is what the importer pod of dv reports, or "" when the import
// can go on: an unreachable source (http host ending in ".invalid", registry
// URL containing "unreachable": DNS fails), a source the server does not
// have (not in Images), or an image bigger than the claim's space. CDI
// retries all of these (the importer pod restarts) and the DataVolume never
// becomes Failed.
//
// The texts are CDI's: pkg/importer/http-datasource.go ("expected status
// code 200, got 404"), pkg/importer/transport.go (registry errors) and
// pkg/importer/data-processor.go ("A larger PVC is required").
func importError(dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim) string {
	if msg := unreachable(dv); msg != "" {
		return msg
	}
	src := dv.Spec.Source
	if src == nil || (src.HTTP == nil && src.Registry == nil) {
		return ""
	}
	if msg := accessError(src); msg != "" {
		return msg
	}
	key := ""
	if src.HTTP != nil {
		key = src.HTTP.URL
	} else {
		key = deref(src.Registry.URL)
		if !strings.Contains(key, "://") {
			key = "docker://" + key
		}
	}
	size, ok := Images[key]
	if repo, _, digested := strings.Cut(key, "@"); !ok && digested && src.Registry != nil {
		// An import by digest (a DataImportCron's: its poller resolved a
		// tag to the digest) is of an image the registry has under a tag.
		for k, v := range Images {
			if strings.HasPrefix(k, "docker://") && repository(k) == repo {
				size, ok = v, true
			}
		}
	}
	if !ok {
		if src.HTTP != nil {
			return "Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found"
		}
		image := strings.TrimPrefix(key, "docker://")
		return fmt.Sprintf("Unable to process data: Failed to read registry image: Could not fetch image: %s: "+
			"reading manifest in %s: manifest unknown: manifest unknown", image, repository(image))
	}
	available := pvc.Status.Capacity[corev1.ResourceStorage]
	if available.IsZero() {
		available = pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	}
	if size.Cmp(available) > 0 {
		return fmt.Sprintf("Virtual image size %d is larger than the reported available storage %d. A larger PVC is required.",
			size.Value(), available.Value())
	}
	return ""
}

// repository is an image reference without its tag or digest.
func repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		return image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}
