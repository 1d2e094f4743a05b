package manager

import (
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// keySecretCache is a second cache, of the Secrets labelled
// v1alpha1.SSHAuthorizedKeysLabel=true, metadata only and of that only
// name, namespace, UID and resourceVersion (keySecretMeta): enough to
// notice an edit of a Wukong's spec.sshKeySecret (issue #33) without
// keeping any Secret's data in memory (ReadSSHKeys reads the data from the
// API server when the Wukong reconciles; kubectl apply's
// last-applied-configuration annotation, which holds the data, is dropped
// too). Only Secrets that opted in to being copied
// into guests are listed; the manager's own cache keeps holding only
// Wukong's children. GetCache makes the manager start it with its caches,
// before the controllers.
type keySecretCache struct{ cache.Cache }

func (c keySecretCache) GetCache() cache.Cache { return c.Cache }

func newKeySecretCache(cfg *rest.Config, httpClient *http.Client, scheme *runtime.Scheme, mapper meta.RESTMapper, namespaces map[string]cache.Config) (keySecretCache, error) {
	c, err := cache.New(cfg, cache.Options{
		HTTPClient:           httpClient,
		Scheme:               scheme,
		Mapper:               mapper,
		DefaultNamespaces:    namespaces,
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{v1alpha1.SSHAuthorizedKeysLabel: "true"}),
		DefaultTransform:     keySecretMeta,
	})
	if err != nil {
		return keySecretCache{}, fmt.Errorf("cannot create the SSH key Secret cache: %w", err)
	}
	return keySecretCache{c}, nil
}

// keySecretMeta keeps of a watched Secret's metadata only what maps it to
// Wukongs and tells an edit: name, namespace, UID, resourceVersion.
func keySecretMeta(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
	}}, nil
}
