package onboarding

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The grant a tenant carries is the same in Go (the conformance kit applies it) and in
// deploy/tenant (the operator applies it), and the bootstrap's acme has it too.
func TestBindingsGrantMatchesTheManifests(t *testing.T) {
	var want []map[string]any
	for _, o := range BindingsGrant() {
		want = append(want, o.Object)
	}
	for _, file := range []string{"../../deploy/tenant/rbac-msp-provider-bindings.yaml", "../../workspaces/root/tenants/acme/rbac-msp-provider-bindings.yaml"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			obj := map[string]any{}
			if err := dec.Decode(&obj); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, obj)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s differs from BindingsGrant (-go +file):\n%s", file, diff)
		}
	}
}
