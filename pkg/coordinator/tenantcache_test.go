package coordinator

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

func TestPruneForCacheDropsWhatTheCoordinatorNeverReads(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "postgres.msp.dev/v1alpha1", "kind": "PostgresDatabase",
		"metadata": map[string]any{
			"name": "orders", "namespace": "default",
			"annotations": map[string]any{"kcp.io/cluster": "abc", lastApplied: `{"big":"json"}`},
			"labels":      map[string]any{"platform.msp.dev/runtime": "rt-a"},
			"managedFields": []any{map[string]any{"manager": "kubectl", "operation": "Apply",
				"fieldsV1": map[string]any{"f:spec": map[string]any{}}}},
		},
		"spec": map[string]any{"runtimeName": "rt-a"},
	}}
	out, err := pruneForCache(u)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*unstructured.Unstructured)
	if mf := got.GetManagedFields(); len(mf) != 0 {
		t.Errorf("managedFields kept: %v", mf)
	}
	if _, ok := got.GetAnnotations()[lastApplied]; ok {
		t.Error("the last-applied annotation was kept")
	}
	if got.GetAnnotations()["kcp.io/cluster"] != "abc" || got.GetLabels()["platform.msp.dev/runtime"] != "rt-a" || got.GetName() != "orders" {
		t.Errorf("pruned too much: %v", got.Object["metadata"])
	}
	if rt, _, _ := unstructured.NestedString(got.Object, "spec", "runtimeName"); rt != "rt-a" {
		t.Errorf("spec changed: %v", got.Object["spec"])
	}
	// A deletion's tombstone is not an object: handed on as it is.
	tomb := cache.DeletedFinalStateUnknown{Key: "default/orders", Obj: u}
	if out, err := pruneForCache(tomb); err != nil || out.(cache.DeletedFinalStateUnknown).Key != "default/orders" {
		t.Errorf("pruneForCache(tombstone) = %v, %v", out, err)
	}
}
