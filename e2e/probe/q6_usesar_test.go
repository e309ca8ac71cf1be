//go:build probe

package probe

import (
	"fmt"
	"testing"
	"time"

	"github.com/msp-dev/msp/e2e/framework"
)

// Q6: can the provider grant a tenant the right to prefill spec.runtimeName with RBAC (a
// custom verb "use" on serviceruntimes) and the scheduler check it with a
// SubjectAccessReview in the provider workspace? The subject can be a real tenant user or
// a synthetic name for the tenant's workspace (the scheduler knows the cluster, not the
// user who set the field).
func TestQ6UseVerbSubjectAccessReview(t *testing.T) {
	env := framework.Current(t)
	p := newProbe(t)
	prov := env.NewProvider(t)
	sar := func(user string, groups ...string) {
		t.Helper()
		body := jsonBody(map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": map[string]any{
			"user": user, "groups": groups,
			"resourceAttributes": map[string]any{"group": "platform.msp.dev", "resource": "serviceruntimes", "verb": "use", "name": "rt-a"},
		}})
		r := p.Do("coordinator (admin)", p.Admin, "POST", "/clusters/"+prov.Path+"/apis/authorization.k8s.io/v1/subjectaccessreviews", body, "")
		t.Logf("        status: %s", jsonBody(r.JSON["status"]))
	}
	t.Log("=== no RBAC")
	sar("msp:tenant:abc123")
	p.Apply(prov.Path, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: use-rt-a}
rules:
- apiGroups: [platform.msp.dev]
  resources: [serviceruntimes]
  resourceNames: [rt-a]
  verbs: [use]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: use-rt-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: use-rt-a}
subjects:
- {kind: User, name: "msp:tenant:abc123"}
- {kind: User, name: "acme-admin"}
`)
	time.Sleep(2 * time.Second)
	t.Log("=== use on rt-a only (no access verb on the provider workspace)")
	sar("msp:tenant:abc123")
	sar("acme-admin")
	sar("msp:tenant:other")
	p.Apply(prov.Path, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: workspace-access}
rules:
- nonResourceURLs: ["/"]
  verbs: [access]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: workspace-access}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: workspace-access}
subjects:
- {kind: User, name: "msp:tenant:abc123"}
`)
	time.Sleep(2 * time.Second)
	t.Log("=== use on rt-a + access for msp:tenant:abc123")
	sar("msp:tenant:abc123")
	_ = fmt.Sprint
}
