package framework

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// ShardLabel is the label the sharded e2e gives each kcp Shard: its name, so that a
// workspace can be placed on it by spec.location.selector.
const ShardLabel = "e2e.msp.dev/shard"

var shardGVR = schema.GroupVersionResource{Group: "core.kcp.io", Version: "v1alpha1", Resource: "shards"}

// unschedulable is kcp's annotation that keeps new workspaces off a shard.
const unschedulable = "experimental.core.kcp.io/unschedulable"

// SetShardSchedulable lets kcp place new workspaces on the shard, or stops it.
func (e *Env) SetShardSchedulable(t testing.TB, shard string, schedulable bool) {
	t.Helper()
	if err := e.patchSchedulable(context.Background(), shard, schedulable); err != nil {
		t.Fatal(err)
	}
}

func (e *Env) markUnschedulable(ctx context.Context, shard string) error {
	return e.patchSchedulable(ctx, shard, false)
}

func (e *Env) patchSchedulable(ctx context.Context, shard string, schedulable bool) error {
	var value any = "true"
	if schedulable {
		value = nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{unschedulable: value}}})
	if _, err := e.In("root").Dynamic.Resource(shardGVR).Patch(ctx, shard, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("failed to mark shard %s schedulable=%v: %w", shard, schedulable, err)
	}
	return nil
}

// NewTenantOnShard is NewTenant on the given kcp shard (see ShardLabel).
func (p *Provider) NewTenantOnShard(t testing.TB, shard string) *Workspace {
	t.Helper()
	e := p.env
	name := UniqueName(t)
	workspaces := e.In("root:tenants").Dynamic.Resource(WorkspaceGVR)
	ws := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"location": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{ShardLabel: shard}}}},
	}}
	t.Cleanup(func() {
		if err := workspaces.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("failed to delete workspace root:tenants:%s: %v", name, err)
		}
	})
	if _, err := workspaces.Create(context.Background(), ws, metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create workspace %s on shard %s: %v", name, shard, err)
	}
	WaitForWorkspaceReady(t, e.In("root:tenants"), name)
	tenant := e.In("root:tenants:" + name)
	p.bind(t, tenant, p)
	waitServed(t, tenant, p.Export+"/v1alpha1")
	return tenant
}

// ShardOf returns the kcp shard a workspace under root:tenants is on: the shard whose
// URL its spec.URL starts with.
func (e *Env) ShardOf(t testing.TB, ws *Workspace) string {
	t.Helper()
	parent, name, _ := strings.Cut(ws.Path, "root:tenants:")
	if parent != "" || name == "" {
		t.Fatalf("ShardOf: %s is not under root:tenants", ws.Path)
	}
	var url string
	Eventually(t, time.Minute, "the URL of workspace "+ws.Path, func(ctx context.Context) (bool, string, error) {
		got, err := e.In("root:tenants").Dynamic.Resource(WorkspaceGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		url, _, _ = unstructured.NestedString(got.Object, "spec", "URL")
		return url != "", "no spec.URL yet", nil
	})
	shards, err := e.In("root").Dynamic.Resource(shardGVR).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Behind the front proxy every shard's externalURL is the proxy's: the shard is the one
	// whose hash kcp recorded on the workspace.
	got, err := e.In("root:tenants").Dynamic.Resource(WorkspaceGVR).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash := got.GetAnnotations()["internal.tenancy.kcp.io/shard"]
	for _, s := range shards.Items {
		if shardHash(s.GetName()) == hash {
			return s.GetName()
		}
	}
	t.Fatalf("workspace %s (URL %s, shard hash %q) is on no known shard", ws.Path, url, hash)
	return ""
}

// ShardPlacement is a readable account of where workspaces are.
func ShardPlacement(shards map[string][]string) string {
	var b strings.Builder
	for shard, ws := range shards {
		fmt.Fprintf(&b, "%s: %d workspaces; ", shard, len(ws))
	}
	return b.String()
}

// shardHash is how kcp names a shard on the workspaces it placed there (annotation
// internal.tenancy.kcp.io/shard): the first 8 base-36 digits of the SHA-224 of its name.
func shardHash(name string) string {
	sum := sha256.Sum224([]byte(name))
	s := new(big.Int).SetBytes(sum[:]).Text(36)
	for _, b := range sum {
		if b != 0 {
			break
		}
		s = "0" + s
	}
	if len(s) > 8 {
		s = s[:8]
	}
	return s
}
