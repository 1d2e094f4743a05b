package storage

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// Reasons of an image disk whose server needs a CA or a login.
const (
	// ReasonImageAccessNotFound: the ConfigMap (Disk.CertConfigMap) or
	// Secret (Disk.SecretRef) is not in the owner's namespace, or the
	// Secret lacks one of CDI's keys (*ImageAccessNotFoundError; field
	// certConfigMap or secretRef). The DataVolume is not written until it
	// is there: CDI's importer pod would not start (CDI
	// pkg/controller/import-controller.go getCertConfigMap: "pod will not
	// start until it does"; a missing Secret key fails the pod's env).
	ReasonImageAccessNotFound = "ImageAccessNotFound"
	// ReasonImageUntrusted: CDI's importer refused the image server's TLS
	// certificate (x509: certificate signed by unknown authority, ...);
	// field certConfigMap: a ConfigMap with the CA that signed it fixes it.
	ReasonImageUntrusted = "ImageUntrusted"
	// ReasonImageUnauthorized: the image server refused the importer's
	// request for want of a login (HTTP 401, registry "unauthorized",
	// "authentication required"); field secretRef.
	ReasonImageUnauthorized = "ImageUnauthorized"
)

// CDI's keys of a secretRef Secret (containerized-data-importer pkg/common
// KeyAccess, KeySecret), which the importer pod takes as environment
// variables (pkg/controller/import-controller.go makeImporterPodSpec,
// SecretKeyRef).
const (
	SecretKeyAccess = "accessKeyId"
	SecretKeySecret = "secretKey"
)

// ImageAccessNotFoundError: a ConfigMap or Secret a disk names for its
// import is missing from the owner's namespace, or the Secret lacks Key.
type ImageAccessNotFoundError struct {
	Disk string
	// Kind is ConfigMap or Secret; Name its name.
	Kind, Name string
	// Key is the missing key of a Secret that exists ("" when the object
	// is missing).
	Key string
}

func (e *ImageAccessNotFoundError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("disk %q: Secret %s has no key %q (CDI's importer reads %s and %s)", e.Disk, e.Name, e.Key, SecretKeyAccess, SecretKeySecret)
	}
	return fmt.Sprintf("disk %q: %s %s not found in this namespace: CDI's importer cannot start without it", e.Disk, e.Kind, e.Name)
}

// Field is the Disk field that names the object: certConfigMap or
// secretRef.
func (e *ImageAccessNotFoundError) Field() string {
	if e.Kind == "ConfigMap" {
		return "certConfigMap"
	}
	return "secretRef"
}

// validateAccess checks Disk.CertConfigMap and SecretRef: DNS-1123
// subdomains, and only for an http or registry source (CDI has the fields
// only there).
func (d Disk) validateAccess(kind Kind) error {
	for _, ref := range []struct{ field, name string }{{"certConfigMap", d.CertConfigMap}, {"secretRef", d.SecretRef}} {
		if ref.name == "" {
			continue
		}
		if kind != KindHTTP && kind != KindRegistry {
			return fmt.Errorf("%w: disk %q: %s applies only to an http(s) or registry image", ErrInvalidDisk, d.Name, ref.field)
		}
		if errs := validation.IsDNS1123Subdomain(ref.name); len(errs) > 0 {
			return fmt.Errorf("%w: disk %q: %s %q is not a valid object name", ErrInvalidDisk, d.Name, ref.field, ref.name)
		}
	}
	return nil
}

// setAccess puts the disk's CertConfigMap and SecretRef on the DataVolume's
// http or registry source.
func (d Disk) setAccess(src *cdiv1.DataVolumeSource) {
	switch {
	case src == nil: // a sourceRef (catalog image): nothing to fetch
	case src.HTTP != nil:
		src.HTTP.CertConfigMap, src.HTTP.SecretRef = d.CertConfigMap, d.SecretRef
	case src.Registry != nil:
		src.Registry.CertConfigMap, src.Registry.SecretRef = optional(d.CertConfigMap), optional(d.SecretRef)
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// accessOf is what a DataVolume's source says of certConfigMap and
// secretRef.
func accessOf(dv *cdiv1.DataVolume) (certConfigMap, secretRef string) {
	switch src := dv.Spec.Source; {
	case src == nil:
	case src.HTTP != nil:
		return src.HTTP.CertConfigMap, src.HTTP.SecretRef
	case src.Registry != nil:
		return deref(src.Registry.CertConfigMap), deref(src.Registry.SecretRef)
	}
	return "", ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// accessChanged reports whether a DataVolume whose import has not
// succeeded names another CA ConfigMap or login Secret than the disk: CDI
// refuses changes to its spec, so it is written again.
func accessChanged(d Disk, dv *cdiv1.DataVolume) bool {
	if dv.Status.Phase == cdiv1.Succeeded || dv.DeletionTimestamp != nil {
		return false
	}
	cm, secret := accessOf(dv)
	return cm != d.CertConfigMap || secret != d.SecretRef
}

// checkAccess reads the objects a disk names for its import, in namespace,
// with r: nil when both are there (the Secret with CDI's two keys), an
// *ImageAccessNotFoundError when one is not. Only whether they are there
// is looked at: nothing of them is kept.
func checkAccess(ctx context.Context, r client.Reader, namespace string, d Disk) error {
	if d.CertConfigMap != "" {
		if err := mustExist(ctx, r, namespace, d.Name, "ConfigMap", d.CertConfigMap, &corev1.ConfigMap{}); err != nil {
			return err
		}
	}
	if d.SecretRef != "" {
		s := &corev1.Secret{}
		if err := mustExist(ctx, r, namespace, d.Name, "Secret", d.SecretRef, s); err != nil {
			return err
		}
		for _, key := range []string{SecretKeyAccess, SecretKeySecret} {
			if _, ok := s.Data[key]; !ok {
				return &ImageAccessNotFoundError{Disk: d.Name, Kind: "Secret", Name: d.SecretRef, Key: key}
			}
		}
	}
	return nil
}

// mustExist reads the object kind namespace/name disk's import names into
// obj: an *ImageAccessNotFoundError when it is not there, another read
// error prefixed with "cannot get <kind> <name>".
func mustExist(ctx context.Context, r client.Reader, namespace, disk, kind, name string, obj client.Object) error {
	got, err := apply.GetOptional(ctx, r, client.ObjectKey{Namespace: namespace, Name: name}, obj)
	if err != nil {
		return fmt.Errorf("cannot get %s %s: %w", kind, name, err)
	}
	if got == nil {
		return &ImageAccessNotFoundError{Disk: disk, Kind: kind, Name: name}
	}
	return nil
}

// accessFailure classifies a failed import's message: CDI's importer
// writes the error it met into the DataVolume's Running condition
// (cmd/cdi-importer/importer.go: "Unable to connect to http data source:
// ..." for an http source, "Unable to process data: ..." for a registry
// image), with Go's TLS error (crypto/tls, crypto/x509: "tls: failed to
// verify certificate: x509: certificate signed by unknown authority") or
// the server's refusal (pkg/importer/http-datasource.go "expected status
// code 200, got 401. Status: 401 Unauthorized"; containers/image for a
// registry: "unauthorized: authentication required"). It returns the
// reason and the Disk field that would fix it, or "" when the message is
// neither.
func accessFailure(msg string) (reason, field string) {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "x509:") || strings.Contains(m, "certificate signed by unknown authority") ||
		strings.Contains(m, "tls: failed to verify certificate"):
		return ReasonImageUntrusted, "certConfigMap"
	case strings.Contains(m, "got 401") || strings.Contains(m, "401 unauthorized") || strings.Contains(m, "unauthorized") ||
		strings.Contains(m, "authentication required"):
		return ReasonImageUnauthorized, "secretRef"
	}
	return "", ""
}

// WithReferenceReader gives Reconcile the reader for the ConfigMaps and
// Secrets disks name for their imports (Disk.CertConfigMap, SecretRef):
// for example a reader that goes to the API server directly, so no cache
// of every ConfigMap is started. Without it Reconcile reads them with its
// client.
func WithReferenceReader(r client.Reader) Option { return func(o *options) { o.refs = r } }
