package kubevirt

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// DockerScheme is the optional scheme of a registry image source, as CDI
// writes registry URLs (docker://IMAGE). A container runtime does not know
// it: an image reference never has a scheme.
const DockerScheme = "docker://"

// ContainerDiskImage turns a boot image source into the image reference a
// KubeVirt containerDisk volume needs (containerDisk.image is pulled by the
// kubelet like any container image; see KubeVirt's user guide, "Disks and
// Volumes: containerDisk").
//
// Accepted: docker://REF or a bare REF, where REF is a container image
// reference [host[:port]/]path[:tag][@digest]. The result is REF parsed and
// normalized by github.com/distribution/reference (the parser the kubelet
// uses for image names): the scheme is removed, tag, digest and registry
// port are kept, and a name without a registry is qualified the way Docker
// qualifies it (fedora:40 -> docker.io/library/fedora:40), so every container
// runtime pulls the same image whatever its short-name policy.
//
// Refused, as an *InvalidInputError on field "containerDiskImage": an empty
// source, an http:// or https:// URL (only CDI can import those, into a
// disk), any other scheme, and anything the parser rejects (upper case in the
// repository, a malformed tag or digest, ...).
func ContainerDiskImage(source string) (string, error) {
	invalid := func(format string, args ...any) error {
		return &InvalidInputError{Field: "containerDiskImage", Message: fmt.Sprintf(format, args...)}
	}
	if source == "" {
		return "", invalid("must not be empty")
	}
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		return "", invalid("%q is an http(s) URL, which cannot boot as a container disk (a container runtime pulls only registry images): add a disk for it to be imported into, or use a registry image", source)
	}
	named, err := parseImage(source)
	if err != nil {
		return "", invalid("%s", err.Error())
	}
	return named.String(), nil
}

// RegistryHost returns the registry a registry image source is pulled from:
// the domain of docker://REF or a bare REF as
// github.com/distribution/reference normalizes it (the parse
// ContainerDiskImage does), with its port if it names one. A reference
// without a registry is Docker Hub's, "docker.io"; a first component is a
// registry when it has a '.' or a ':', is "localhost", or has upper case
// (myregistry:5000/x, localhost/x, UPPER/x), else it is part of the path
// (myservice/x is docker.io's). IPv6 registries keep their brackets ("[::1]:5000").
// An http(s) URL, another scheme or an invalid reference is an error.
func RegistryHost(source string) (string, error) {
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		return "", fmt.Errorf("%q is an http(s) URL, not a registry image", source)
	}
	named, err := parseImage(source)
	if err != nil {
		return "", err
	}
	return reference.Domain(named), nil
}

// parseImage parses docker://REF or a bare REF (no other scheme) with
// reference.ParseNormalizedNamed.
func parseImage(source string) (reference.Named, error) {
	ref, hadScheme := strings.CutPrefix(source, DockerScheme)
	if !hadScheme {
		if scheme, _, ok := strings.Cut(source, "://"); ok {
			return nil, fmt.Errorf("%q has the unsupported scheme %q: a registry image is docker://REF or a bare reference", source, scheme)
		}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid container image reference: %w", source, err)
	}
	return named, nil
}
