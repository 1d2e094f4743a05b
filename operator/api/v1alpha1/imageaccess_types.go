package v1alpha1

// ImageAccess is what CDI's importer needs to fetch an image from a server
// behind a private certificate authority or a login: CDI's own DataVolume
// source fields of the same names (containerized-data-importer-api
// core/v1beta1 DataVolumeSourceHTTP and DataVolumeSourceRegistry
// certConfigMap and secretRef), set on the disk's DataVolume for an
// http(s) or registry image. Both name objects of the Wukong's namespace
// only (CDI's importer pod mounts them there); the operator reads them to
// check they are there, and never copies what they hold anywhere. A named
// object that is missing (or a Secret without both keys) makes the Wukong
// Stalled (ImageAccessNotFound) naming the field, and the disk's
// DataVolume is not written until it is there (CDI's importer pod would
// not start: pkg/controller/import-controller.go getCertConfigMap, "pod
// will not start until it does"); the operator looks again after
// StalledRetry or on any change to the Wukong. Once a disk's import has
// succeeded the objects are not needed any more (and no longer checked).
// Changing either while the import has not succeeded writes the
// disk's DataVolume again (CDI refuses changes to a DataVolume's spec, and
// nothing was imported yet).
//
// An import CDI reports failing with a certificate error (x509: certificate
// signed by unknown authority) or a refused login (HTTP 401, registry
// "unauthorized") makes the Wukong Stalled (ImportFailed) naming
// certConfigMap or secretRef respectively.
type ImageAccess struct {
	// CertConfigMap names a ConfigMap whose values are PEM certificates of
	// the certificate authorities that sign the image server's TLS
	// certificate (CDI's certConfigMap: the importer trusts every value of
	// the ConfigMap, whatever its key, besides the system's).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	CertConfigMap string `json:"certConfigMap,omitempty"`

	// SecretRef names a Secret with the keys accessKeyId and secretKey
	// (CDI's secretRef: pkg/common KeyAccess and KeySecret): for an
	// http(s) image the user name and password of HTTP basic
	// authentication, for a registry image the registry user name and
	// password (or token). Not a kubernetes.io/dockerconfigjson Secret: that
	// one is osImagePullSecret's, for a container disk.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SecretRef string `json:"secretRef,omitempty"`
}
