package onboarding

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/pkg/bootstrap"
)

func schemasOf(t *testing.T, group string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := bootstrap.ExportObjects(nil, group)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "APIResourceSchema" {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no APIResourceSchemas", group)
	}
	return out
}

// msp's own kinds embed the contract; a kind without spec.runtimeName (or without
// status.conditions) is named with what it lacks.
func TestContractGaps(t *testing.T) {
	for _, group := range []string{"postgres.msp.dev", "hosting.msp.dev"} {
		for _, s := range schemasOf(t, group) {
			if gaps := ContractGaps(s); len(gaps) != 0 {
				t.Errorf("%s lacks %v", s.GetName(), gaps)
			}
		}
	}
	broken := schemasOf(t, "postgres.msp.dev")[0].DeepCopy()
	versions, _, _ := unstructured.NestedSlice(broken.Object, "spec", "versions")
	v := versions[0].(map[string]any)
	unstructured.RemoveNestedField(v, "schema", "properties", "spec", "properties", "runtimeName")
	unstructured.RemoveNestedField(v, "schema", "properties", "status")
	if err := unstructured.SetNestedSlice(broken.Object, versions, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	want := []string{"v1alpha1: spec.runtimeName", "v1alpha1: status.conditions", "v1alpha1: status.connectionSecretRef"}
	if diff := cmp.Diff(want, ContractGaps(broken)); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
}
