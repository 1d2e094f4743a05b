// Package examples loads the manifests in the repository's examples/ folder
// and applies them, for the sandbox command and the e2e suite.
package examples

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager is the field manager the examples are applied with, as a
// user's kubectl apply --server-side would.
const FieldManager = "wukong-examples"

// Load reads every *.yaml file in dir (sorted by name) into objects.
func Load(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// TenantLabel is the namespace label the example NodeBridge
// (examples/03-bridge-vlan-static-nodebridge.yaml) selects: a namespace the
// examples are applied to needs it for example 03 to attach to br1.
const TenantLabel, TenantValue = "network.novasphere.dev/tenant", "lab"

// Apply server-side-applies objs: namespaced ones into namespace,
// cluster-scoped ones (an administrator's NodeBridge) as they are.
func Apply(ctx context.Context, c client.Client, namespace string, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		o = o.DeepCopy()
		namespaced, err := c.IsObjectNamespaced(o)
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if namespaced {
			o.SetNamespace(namespace)
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// Wukongs returns the names of the Wukongs among objs.
func Wukongs(objs []*unstructured.Unstructured) []string {
	var names []string
	for _, o := range objs {
		if o.GetKind() == "Wukong" {
			names = append(names, o.GetName())
		}
	}
	return names
}

// LabelNamespace gives namespace the TenantLabel the example NodeBridge
// selects (creating the namespace if needed), as an administrator would with
// `kubectl label namespace <ns> network.novasphere.dev/tenant=lab`.
func LabelNamespace(ctx context.Context, c client.Client, namespace string) error {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(namespace)
	ns.SetLabels(map[string]string{TenantLabel: TenantValue})
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(ns), client.FieldOwner(FieldManager+"-admin")); err != nil {
		return fmt.Errorf("labelling namespace %s: %w", namespace, err)
	}
	return nil
}
