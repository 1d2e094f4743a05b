// Package catalog holds the rules of the golden image catalog
// (ClusterImage) that the ClusterImage controller and the Wukong
// controller share: which namespaces may use an image, what a refusal
// says, how golden objects are named, which copy a disk clones.
package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

// NamespaceAllowed: the image's namespaceSelector selects ns; an omitted
// selector selects none, {} every namespace (NodeBridge's rule:
// operator/internal/nodenet NamespaceAllowed). A selector that does not
// parse selects none.
func NamespaceAllowed(img *v1alpha1.ClusterImage, ns *corev1.Namespace) bool {
	return nodenet.SelectsNamespace(img.Spec.NamespaceSelector, ns)
}

// RefusedMessage is the one message of a disk naming an image that is not
// declared, being deleted, or not declared for namespace ns: it reads the
// same in every case, so a tenant learns nothing about images declared for
// others.
func RefusedMessage(image, ns string) string {
	return fmt.Sprintf("no ClusterImage %s is declared for namespace %s: ask an administrator to declare it for this namespace, or use an image URL", image, ns)
}

// DataSourceName names the golden objects of an image in one StorageClass
// (DataSource, and DataVolume or DataImportCron, in the catalog
// namespace): "<image>-<class>" when that is a DNS-1035 label of at most
// 63 characters (CDI's DataImportCron admission wants managedDataSource
// so: pkg/apiserver/webhooks/dataimportcron-validate.go
// validateNameLength), else "<image>-<first 10 hex digits of the class's
// SHA-256>". The image's name is at most 40 characters and starts with a
// letter (the CRD's rule), so the second form always fits.
func DataSourceName(image, class string) string {
	if n := image + "-" + class; len(n) <= validation.DNS1035LabelMaxLength && len(validation.IsDNS1035Label(n)) == 0 {
		return n
	}
	sum := sha256.Sum256([]byte(class))
	return image + "-" + hex.EncodeToString(sum[:])[:10]
}

// CopyFor is the golden copy a disk of StorageClass class clones: the
// image's copy in that class, else its first (CDI then copies across
// classes), nil when the status lists none.
func CopyFor(img *v1alpha1.ClusterImage, class string) *v1alpha1.ClusterImageCopy {
	for i := range img.Status.Copies {
		if img.Status.Copies[i].StorageClassName == class {
			return &img.Status.Copies[i]
		}
	}
	if len(img.Status.Copies) > 0 {
		return &img.Status.Copies[0]
	}
	return nil
}
