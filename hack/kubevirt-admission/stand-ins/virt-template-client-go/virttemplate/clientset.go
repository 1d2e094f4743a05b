// Package virttemplate is a stand-in for the generated clientset of the
// template.kubevirt.io API: NewForConfig(...).TemplateV1beta1().RESTClient()
// is a REST client for template.kubevirt.io/v1beta1.
package virttemplate

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"kubevirt.io/virt-template-api/core/v1beta1"
)

// Clientset gives the template.kubevirt.io/v1beta1 client.
type Clientset struct{ v1beta1 *TemplateV1beta1Client }

// TemplateV1beta1Client holds the REST client of the group version.
type TemplateV1beta1Client struct{ rest rest.Interface }

// RESTClient returns the REST client for template.kubevirt.io/v1beta1.
func (c *TemplateV1beta1Client) RESTClient() rest.Interface { return c.rest }

// TemplateV1beta1 returns the template.kubevirt.io/v1beta1 client.
func (c *Clientset) TemplateV1beta1() *TemplateV1beta1Client { return c.v1beta1 }

// NewForConfig builds a Clientset from c (copied, not changed).
func NewForConfig(c *rest.Config) (*Clientset, error) {
	scheme := runtime.NewScheme()
	if err := v1beta1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(c)
	cfg.GroupVersion = &v1beta1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("template.kubevirt.io/v1beta1 client: %w", err)
	}
	return &Clientset{v1beta1: &TemplateV1beta1Client{rest: rc}}, nil
}
