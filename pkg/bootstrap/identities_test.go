package bootstrap

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestProviderRBACCannotEscalate: no rule of a coordinator or front door lets it write
// RBAC or webhooks, or impersonate (through apiexports/content that means anyone).
func TestProviderRBACCannotEscalate(t *testing.T) {
	objs := ProviderRBAC("root:providers:p", "p.example.dev", []string{"hosting.msp.dev"})
	roles := 0
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		roles++
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rules {
			m := r.(map[string]any)
			groups, _, _ := unstructured.NestedStringSlice(m, "apiGroups")
			resources, _, _ := unstructured.NestedStringSlice(m, "resources")
			verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
			for _, g := range groups {
				if g == "*" || g == "rbac.authorization.k8s.io" || g == "admissionregistration.k8s.io" || g == "apis.kcp.io" && slices.Contains(verbs, "*") {
					t.Errorf("%s: rule %v grants %v on %s", o.GetName(), m, verbs, g)
				}
			}
			if slices.Contains(verbs, "impersonate") || slices.Contains(resources, "apiexports/content") && slices.Contains(verbs, "*") {
				t.Errorf("%s: rule %v lets its holder impersonate", o.GetName(), m)
			}
		}
	}
	if roles != 3 {
		t.Errorf("%d ClusterRoles, want the tenants', the coordinator's and the front door's", roles)
	}
}
