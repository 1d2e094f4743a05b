package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FallbackClient reads from the informer cache and, when the cache says
// NotFound, from the API server. The manager's cache holds only objects
// labelled as managed by Wukong (so memory grows with Wukongs, not with the
// cluster's other Secrets and PVCs); objects the user brings (an SSH key
// Secret, a NetworkAttachmentDefinition named by nadName) or that another
// controller creates without the label are still found. Writes go to the API
// server as usual.
type FallbackClient struct {
	client.Client
	APIReader client.Reader
}

// Get implements client.Reader.
func (c FallbackClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Client.Get(ctx, key, obj, opts...)
	if apierrors.IsNotFound(err) && c.APIReader != nil {
		return c.APIReader.Get(ctx, key, obj, opts...)
	}
	return err
}
