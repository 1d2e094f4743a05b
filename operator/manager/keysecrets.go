package manager

import (
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// keySecretCache is a second cache, of the Secrets labelled
// v1alpha1.SSHAuthorizedKeysLabel=true, metadata only: enough to notice an
// edit of a Wukong's spec.sshKeySecret (issue #33) without keeping any
// Secret's data in memory (ReadSSHKeys reads the data from the API server
// when the Wukong reconciles). Only Secrets that opted in to being copied
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
		DefaultTransform:     StripManagedFields,
	})
	if err != nil {
		return keySecretCache{}, fmt.Errorf("cannot create the SSH key Secret cache: %w", err)
	}
	return keySecretCache{c}, nil
}
