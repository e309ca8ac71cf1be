// Package exports reads what a provider's APIExport serves.
package exports

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/msp-dev/msp/sdk/capability"
)

// Kinds reads the kinds an APIExport serves: each resource's schema names its
// kind and its storage version.
func Kinds(ctx context.Context, cfg *rest.Config, export string) ([]capability.Kind, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	ex := &unstructured.Unstructured{}
	ex.SetGroupVersionKind(schema.GroupVersionKind{Group: "apis.kcp.io", Version: "v1alpha2", Kind: "APIExport"})
	if err := c.Get(ctx, client.ObjectKey{Name: export}, ex); err != nil {
		return nil, fmt.Errorf("failed to read APIExport %s: %w", export, err)
	}
	return Served(ctx, ex, func(ctx context.Context, name string) (*unstructured.Unstructured, error) {
		sch := &unstructured.Unstructured{}
		sch.SetGroupVersionKind(schema.GroupVersionKind{Group: "apis.kcp.io", Version: "v1alpha1", Kind: "APIResourceSchema"})
		return sch, c.Get(ctx, client.ObjectKey{Name: name}, sch)
	})
}

// SchemaGetter reads an APIResourceSchema of the export's workspace by name.
type SchemaGetter func(ctx context.Context, name string) (*unstructured.Unstructured, error)

// Served lists the kinds of the APIExport ex, reading each resource's schema with get.
func Served(ctx context.Context, ex *unstructured.Unstructured, get SchemaGetter) ([]capability.Kind, error) {
	resources, _, _ := unstructured.NestedSlice(ex.Object, "spec", "resources")
	var out []capability.Kind
	for _, r := range resources {
		m, _ := r.(map[string]any)
		schemaName, _ := m["schema"].(string)
		plural, _ := m["name"].(string)
		sch, err := get(ctx, schemaName)
		if err != nil {
			return nil, fmt.Errorf("failed to read APIResourceSchema %s: %w", schemaName, err)
		}
		group, _, _ := unstructured.NestedString(sch.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(sch.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(sch.Object, "spec", "versions")
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			if storage, _ := vm["storage"].(bool); storage {
				name, _ := vm["name"].(string)
				out = append(out, capability.Kind{GVK: schema.GroupVersionKind{Group: group, Version: name, Kind: kind}, Resource: plural})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("APIExport %s serves no kinds: add resources to it", ex.GetName())
	}
	return out, nil
}

// WaitKinds is Kinds asked again every two seconds until it answers or ctx ends: a
// component may start while kcp is away or still warming up after a restart, and should
// wait for it rather than exit. Each failed attempt is logged.
func WaitKinds(ctx context.Context, cfg *rest.Config, export string, log logr.Logger) ([]capability.Kind, error) {
	for {
		kinds, err := Kinds(ctx, cfg, export)
		if err == nil {
			return kinds, nil
		}
		log.Info("waiting for the provider's APIExport", "export", export, "err", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
