package bootstrap

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// CreateWorkspace creates the workspace name in the workspace at parent (or keeps it if
// it exists), of the given type (nil: the parent's default, e.g. {"name": "tenant",
// "path": "root:platform"}), waits until it is Ready and returns its logical cluster.
func CreateWorkspace(ctx context.Context, opts Options, parent, name string, wsType map[string]any) (string, error) {
	ws := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tenancy.kcp.io/v1alpha1",
		"kind":       "Workspace",
		"metadata":   map[string]any{"name": name},
	}}
	if wsType != nil {
		ws.Object["spec"] = map[string]any{"type": wsType}
	}
	if _, err := Apply(ctx, opts, parent, ws); err != nil {
		return "", err
	}
	if err := opts.complete(); err != nil {
		return "", err
	}
	got, err := newClientSet(opts.Config).forWorkspace(parent).get(ctx, ws, opts.Timeout, opts.PollInterval)
	if err != nil {
		return "", fmt.Errorf("failed to read workspace %s:%s: %w", parent, name, err)
	}
	cluster, _, _ := unstructured.NestedString(got.Object, "spec", "cluster")
	return cluster, nil
}
