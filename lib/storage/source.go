package storage

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/distribution/reference"
)

// Kind is the kind of a disk's source.
type Kind int

const (
	// KindBlank: an empty disk, written as a DataVolume with a blank source
	// (or a plain PersistentVolumeClaim: Observation.PlainClaim).
	KindBlank Kind = iota
	// KindHTTP: imported by CDI from an http(s) URL.
	KindHTTP
	// KindRegistry: imported by CDI from a container image.
	KindRegistry
	// KindClone: cloned by CDI from a claim (Disk.Clone.ClaimName).
	KindClone
	// KindCloneSnapshot: cloned by CDI from a VolumeSnapshot
	// (Disk.Clone.SnapshotName).
	KindCloneSnapshot
	// KindCloneDataSource: cloned by CDI from what a DataSource points at
	// (Disk.Clone.DataSource; DataVolume spec.sourceRef).
	KindCloneDataSource
)

func (k Kind) String() string {
	switch k {
	case KindHTTP:
		return "http"
	case KindRegistry:
		return "registry"
	case KindClone:
		return "clone"
	case KindCloneSnapshot:
		return "snapshot"
	case KindCloneDataSource:
		return "datasource"
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
		// The digests a registry resolves (opencontainers/go-digest's
		// registered algorithms, lower-case hex of their size): the
		// distribution reference parser refuses any other
		// ("unsupported digest algorithm"), found by FuzzSourceKind.
		digest = `(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})`
	)
	return regexp.MustCompile(`^` + name + `(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// isImage reports whether s is a container image reference: it matches
// imageRef and the distribution reference parser, whose grammar the
// importer's (containers/image) follows, accepts it. The parser also
// refuses what the grammar alone lets through: a 64-hex-digit name (an
// image ID) and repository paths over 255 characters (the first found by
// FuzzSourceKind).
func isImage(s string) bool {
	if !imageRef.MatchString(s) {
		return false
	}
	_, err := reference.ParseNormalizedNamed(s)
	return err == nil
}

// SourceKind tells what a Disk.Source is: "" is KindBlank, an http:// or
// https:// URL with a host is KindHTTP, and docker://IMAGE or a bare image
// reference is KindRegistry. Anything else is an error wrapping ErrInvalidDisk.
func SourceKind(source string) (Kind, error) {
	switch {
	case source == "":
		return KindBlank, nil
	case strings.HasPrefix(source, "http://"), strings.HasPrefix(source, "https://"):
		// A host, not just a port ("http://:80/x"), and no white space or
		// control character, Unicode ones included (found by
		// FuzzSourceKind).
		u, err := url.Parse(source)
		if err != nil || u.Hostname() == "" || strings.IndexFunc(source, spaceOrControl) >= 0 {
			return KindBlank, fmt.Errorf("%w: source %q is not a valid http(s) URL", ErrInvalidDisk, source)
		}
		return KindHTTP, nil
	case strings.HasPrefix(source, dockerScheme):
		if !isImage(strings.TrimPrefix(source, dockerScheme)) {
			return KindBlank, fmt.Errorf("%w: source %q is not a valid container image reference", ErrInvalidDisk, source)
		}
		return KindRegistry, nil
	case strings.Contains(source, "://"):
		scheme, _, _ := strings.Cut(source, "://")
		return KindBlank, fmt.Errorf("%w: source %q has unsupported scheme %q (want http, https or docker)", ErrInvalidDisk, source, scheme)
	case isImage(source):
		return KindRegistry, nil
	default:
		return KindBlank, fmt.Errorf("%w: source %q is neither an http(s) URL nor a container image reference", ErrInvalidDisk, source)
	}
}

func spaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// RegistryURL returns the CDI registry URL of an image source: docker://IMAGE.
func RegistryURL(source string) string {
	if strings.HasPrefix(source, dockerScheme) {
		return source
	}
	return dockerScheme + source
}
