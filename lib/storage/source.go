package storage

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Kind is the kind of a disk's source.
type Kind int

const (
	// KindBlank: an empty disk, written as a PersistentVolumeClaim.
	KindBlank Kind = iota
	// KindHTTP: imported by CDI from an http(s) URL.
	KindHTTP
	// KindRegistry: imported by CDI from a container image.
	KindRegistry
)

func (k Kind) String() string {
	switch k {
	case KindHTTP:
		return "http"
	case KindRegistry:
		return "registry"
	default:
		return "blank"
	}
}

const dockerScheme = "docker://"

// imageRef is a container image reference (after distribution/reference):
// [domain[:port]/]path[:tag][@digest], with lowercase path components.
var imageRef = func() *regexp.Regexp {
	const (
		domainComp = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain     = domainComp + `(?:\.` + domainComp + `)*(?::[0-9]+)?`
		comp       = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
		name       = `(?:` + domain + `/)?` + comp + `(?:/` + comp + `)*`
		tag        = `[\w][\w.-]{0,127}`
		digest     = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^` + name + `(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// SourceKind tells what a Disk.Source is: "" is KindBlank, an http:// or
// https:// URL with a host is KindHTTP, and docker://IMAGE or a bare image
// reference is KindRegistry. Anything else is an error wrapping ErrInvalidDisk.
func SourceKind(source string) (Kind, error) {
	switch {
	case source == "":
		return KindBlank, nil
	case strings.HasPrefix(source, "http://"), strings.HasPrefix(source, "https://"):
		u, err := url.Parse(source)
		if err != nil || u.Host == "" || strings.ContainsAny(source, " \t\n") {
			return KindBlank, fmt.Errorf("%w: source %q is not a valid http(s) URL", ErrInvalidDisk, source)
		}
		return KindHTTP, nil
	case strings.HasPrefix(source, dockerScheme):
		if !imageRef.MatchString(strings.TrimPrefix(source, dockerScheme)) {
			return KindBlank, fmt.Errorf("%w: source %q is not a valid container image reference", ErrInvalidDisk, source)
		}
		return KindRegistry, nil
	case strings.Contains(source, "://"):
		scheme, _, _ := strings.Cut(source, "://")
		return KindBlank, fmt.Errorf("%w: source %q has unsupported scheme %q (want http, https or docker)", ErrInvalidDisk, source, scheme)
	case imageRef.MatchString(source):
		return KindRegistry, nil
	default:
		return KindBlank, fmt.Errorf("%w: source %q is neither an http(s) URL nor a container image reference", ErrInvalidDisk, source)
	}
}

// RegistryURL returns the CDI registry URL of an image source: docker://IMAGE.
func RegistryURL(source string) string {
	if strings.HasPrefix(source, dockerScheme) {
		return source
	}
	return dockerScheme + source
}
