package sandbox

import (
	"fmt"
	"net/url"
	"strings"

	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// Image servers behind a private CA or a login, by host name: an http(s)
// URL or registry image whose host begins with PrivateCAHostPrefix serves
// TLS with a certificate no public CA signed, one whose host begins with
// LoginHostPrefix wants a login. The sandbox checks no certificate nor
// password (it has no servers): a DataVolume source naming a certConfigMap,
// or a secretRef, passes; one naming none fails as CDI's importer fails,
// with its message in the Running condition (reason Error), retried as a
// crashing importer pod is.
const (
	PrivateCAHostPrefix = "private-ca."
	LoginHostPrefix     = "login."
)

// accessError is the importer's error for a source behind a private CA or a
// login that the DataVolume gives no certConfigMap or secretRef for; ""
// otherwise. The texts are CDI v1.65's around Go's and containers/image's:
// cmd/cdi-importer/importer.go ("Unable to connect to http data source: %v"
// when the http source cannot be opened; "Unable to process data: %v" for
// a registry image), pkg/importer/http-datasource.go ("HTTP request
// errored"; "expected status code %d, got %d. Status: %s"),
// pkg/importer/registry-datasource.go ("Failed to read registry image"),
// pkg/importer/transport.go and errors.go (ImagePullFailedError "failed to
// pull image: ..."; "Error retrieving image"), crypto/tls ("tls: failed to
// verify certificate: x509: certificate signed by unknown authority") and
// containers/image docker ("pinging container registry %s: %w", "reading
// manifest %s in %s: unauthorized: authentication required").
func accessError(src *cdiv1.DataVolumeSource) string {
	switch {
	case src.HTTP != nil:
		u, err := url.Parse(src.HTTP.URL)
		if err != nil {
			return ""
		}
		switch host := u.Hostname(); {
		case strings.HasPrefix(host, PrivateCAHostPrefix) && u.Scheme == "https" && src.HTTP.CertConfigMap == "":
			return fmt.Sprintf("Unable to connect to http data source: HTTP request errored: Get %q: "+
				"tls: failed to verify certificate: x509: certificate signed by unknown authority", src.HTTP.URL)
		case strings.HasPrefix(host, LoginHostPrefix) && src.HTTP.SecretRef == "":
			return "Unable to connect to http data source: expected status code 200, got 401. Status: 401 Unauthorized"
		}
	case src.Registry != nil:
		image := strings.TrimPrefix(deref(src.Registry.URL), "docker://")
		host, _, _ := strings.Cut(image, "/")
		tag := "latest"
		if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
			tag = image[i+1:]
		}
		switch {
		case strings.HasPrefix(host, PrivateCAHostPrefix) && deref(src.Registry.CertConfigMap) == "":
			return fmt.Sprintf("Unable to process data: Failed to read registry image: failed to pull image: pinging container registry %s: "+
				"Get \"https://%s/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority", host, host)
		case strings.HasPrefix(host, LoginHostPrefix) && deref(src.Registry.SecretRef) == "":
			return fmt.Sprintf("Unable to process data: Failed to read registry image: Error retrieving image: "+
				"reading manifest %s in %s: unauthorized: authentication required", tag, repository(image))
		}
	}
	return ""
}
