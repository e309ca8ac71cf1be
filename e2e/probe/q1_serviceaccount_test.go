//go:build probe

package probe

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/e2e/framework"
)

// Q1: a ServiceAccount in a provider workspace, its TokenRequest tokens, where they
// authenticate, what RBAC opens the APIExport virtual workspace, who kcp says the SA is,
// and whether deleting the SA or the bound object revokes the token.
func TestQ1ServiceAccountTokens(t *testing.T) {
	env := framework.Current(t)
	p := newProbe(t)
	prov := env.NewProvider(t)
	other := env.NewProvider(t) // a second provider, same API group, its own export
	t1, t2 := prov.NewTenant(t), prov.NewTenant(t)
	other.NewTenant(t) // an endpoint slice lists URLs only once a workspace binds the export
	c1, c2 := p.ClusterOf(t1.Path), p.ClusterOf(t2.Path)
	pc := p.ClusterOf(prov.Path)
	t.Logf("provider %s (cluster %s), other provider %s, tenants %s (%s), %s (%s)", prov.Path, pc, other.Path, t1.Path, c1, t2.Path, c2)
	p.MustOK(p.Quiet(p.Admin, "POST", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases", pgdb("a1", "rt-a"), ""), "create a1")
	p.MustOK(p.Quiet(p.Admin, "POST", "/clusters/"+t2.Path+pgdbs+"/namespaces/default/postgresdatabases", pgdb("b1", "rt-b"), ""), "create b1")

	p.Apply(prov.Path, `
apiVersion: v1
kind: ServiceAccount
metadata: {name: sl-a, namespace: default}
---
apiVersion: v1
kind: Secret
metadata: {name: sl-a-anchor, namespace: default}
type: Opaque
`)
	anchor := p.MustOK(p.Quiet(p.Admin, "GET", "/clusters/"+prov.Path+"/api/v1/namespaces/default/secrets/sl-a-anchor", "", ""), "anchor")
	anchorUID, _, _ := unstructured.NestedString(anchor.JSON, "metadata", "uid")

	t.Log("=== TokenRequest variants")
	_, tokSecret := p.TokenRequest(prov.Path, "default", "sl-a", map[string]any{
		"expirationSeconds": 3600,
		"boundObjectRef":    map[string]any{"apiVersion": "v1", "kind": "Secret", "name": "sl-a-anchor", "uid": anchorUID},
	})
	_, tokPlain := p.TokenRequest(prov.Path, "default", "sl-a", map[string]any{"expirationSeconds": 3600})
	p.TokenRequest(prov.Path, "default", "sl-a", map[string]any{"expirationSeconds": 60})
	p.TokenRequest(prov.Path, "default", "sl-a", map[string]any{"expirationSeconds": 3600 * 24 * 365 * 3})
	p.TokenRequest(prov.Path, "default", "sl-a", map[string]any{
		"expirationSeconds": 3600,
		"boundObjectRef":    map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "name": "sl-a"},
	})
	p.TokenRequest(prov.Path, "default", "sl-a", map[string]any{"expirationSeconds": 3600, "audiences": []string{"msp-front-door"}})
	if tokSecret == "" || tokPlain == "" {
		t.Fatal("no token: TokenRequest is not served")
	}

	t.Log("=== who is the SA (SelfSubjectReview, kubectl auth whoami, can-i --list)")
	ssr := `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
	for _, path := range []string{prov.Path, pc, t1.Path, "root"} {
		r := p.Do("sa", tokSecret, "POST", "/clusters/"+path+"/apis/authentication.k8s.io/v1/selfsubjectreviews", ssr, "")
		if r.OK() {
			t.Logf("        status.userInfo: %s", jsonBody(r.JSON["status"]))
		}
	}
	kcSA := p.Kubeconfig("sa", tokSecret, prov.Path)
	p.Kubectl("sa", kcSA, "auth", "whoami", "-o", "yaml")
	p.Kubectl("sa", kcSA, "auth", "can-i", "--list")
	kcSAt1 := p.Kubeconfig("sa-t1", tokSecret, t1.Path)
	p.Kubectl("sa in tenant", kcSAt1, "auth", "whoami")
	p.Kubectl("sa in tenant", kcSAt1, "auth", "can-i", "--list")

	vw := p.EndpointURL(prov.Path, prov.Export)
	otherVW := p.EndpointURL(other.Path, other.Export)
	t.Logf("VW URL of %s: %s; of %s: %s", prov.Path, vw, other.Path, otherVW)
	list := vw + "/clusters/*" + pgdbs + "/postgresdatabases"
	one := vw + "/clusters/" + c1 + pgdbs + "/namespaces/default/postgresdatabases/a1"

	t.Log("=== before any RBAC")
	p.Do("sa", tokSecret, "GET", "/clusters/"+prov.Path+"/api/v1/namespaces/default/configmaps", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+prov.Path+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+prov.Export, "", "")
	p.Do("sa", tokSecret, "GET", list, "", "")

	t.Log("=== grant get/list/watch on apiexports/content (resourceNames: the export) + get the endpoint slice")
	p.Apply(prov.Path, fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: probe-vw-read}
rules:
- apiGroups: [apis.kcp.io]
  resources: [apiexports/content]
  resourceNames: [%[1]s]
  verbs: [get, list, watch]
- apiGroups: [apis.kcp.io]
  resources: [apiexportendpointslices]
  resourceNames: [%[1]s]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: probe-vw-read}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: probe-vw-read}
subjects:
- {kind: ServiceAccount, name: sl-a, namespace: default}
`, prov.Export))
	_, took := p.WaitCode(tokSecret, "GET", list, "", http.StatusOK, 30*time.Second)
	t.Logf("the VW list answered 200 %s after the RBAC was applied", took.Round(10*time.Millisecond))

	t.Log("--- (a) the provider workspace itself")
	p.Do("sa", tokSecret, "GET", "/clusters/"+prov.Path+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+prov.Export, "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+pc+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+prov.Export, "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+prov.Path+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+prov.Path+"/api/v1/namespaces/default/configmaps", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+prov.Path+"/apis/platform.msp.dev/v1alpha1/serviceruntimes", "", "")
	p.Kubectl("sa", kcSA, "auth", "can-i", "--list")

	t.Log("--- (b) the APIExport virtual workspace")
	p.Do("sa", tokSecret, "GET", list, "", "")
	p.Do("sa", tokSecret, "GET", list+"?watch=true&timeoutSeconds=2", "", "")
	p.Do("sa", tokSecret, "GET", one, "", "")
	p.Do("sa", tokSecret, "GET", vw+"/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases/a1", "", "")
	status := jsonBody(map[string]any{"status": map[string]any{"observedGeneration": 1}})
	p.Do("sa", tokSecret, "PATCH", one+"/status", status, merge)
	p.Do("sa, no RBAC in other provider", tokSecret, "GET", otherVW+"/clusters/*"+pgdbs+"/postgresdatabases", "", "")

	t.Log("=== add patch/update on apiexports/content")
	p.Apply(prov.Path, fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: probe-vw-write}
rules:
- apiGroups: [apis.kcp.io]
  resources: [apiexports/content]
  resourceNames: [%s]
  verbs: [update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: probe-vw-write}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: probe-vw-write}
subjects:
- {kind: ServiceAccount, name: sl-a, namespace: default}
`, prov.Export))
	p.WaitCode(tokSecret, "PATCH", one+"/status", status, http.StatusOK, 30*time.Second)
	p.Do("sa", tokSecret, "PATCH", one+"/status", status, merge)
	p.Do("sa", tokSecret, "DELETE", vw+"/clusters/"+c2+pgdbs+"/namespaces/default/postgresdatabases/b1", "", "")

	t.Log("--- (c) a tenant workspace directly (by path and by cluster name)")
	p.Do("sa", tokSecret, "GET", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+c1+pgdbs+"/namespaces/default/postgresdatabases/a1", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+t1.Path+"/api/v1/namespaces/default/secrets", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/*"+pgdbs+"/postgresdatabases", "", "")

	t.Log("--- (d) root and the other parents")
	p.Do("sa", tokSecret, "GET", "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces", "", "")
	p.Do("sa", tokSecret, "DELETE", "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/tenants", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/root:providers/apis/tenancy.kcp.io/v1alpha1/workspaces", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/root:tenants/apis/tenancy.kcp.io/v1alpha1/workspaces", "", "")
	p.Kubectl("sa", p.Kubeconfig("sa-root", tokSecret, "root"), "auth", "can-i", "delete", "workspaces")

	t.Log("=== a binding for this SA in the OTHER provider's workspace (a foreign SA there)")
	p.Apply(other.Path, fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: probe-foreign}
rules:
- apiGroups: [apis.kcp.io]
  resources: [apiexports/content]
  resourceNames: [%s]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: probe-foreign-sa}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: probe-foreign}
subjects:
- {kind: ServiceAccount, name: sl-a, namespace: default}
`, other.Export))
	time.Sleep(2 * time.Second)
	p.Do("sa", tokSecret, "GET", otherVW+"/clusters/*"+pgdbs+"/postgresdatabases", "", "")
	p.Do("sa", tokSecret, "GET", "/clusters/"+other.Path+"/api/v1/namespaces/default/configmaps", "", "")
	p.Apply(other.Path, fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: probe-foreign-user}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: probe-foreign}
subjects:
- {kind: User, name: "system:kcp:serviceaccount:%s:default:sl-a"}
- {kind: User, name: "system:serviceaccount:default:sl-a"}
`, pc))
	time.Sleep(2 * time.Second)
	p.Do("sa", tokSecret, "GET", otherVW+"/clusters/*"+pgdbs+"/postgresdatabases", "", "")

	t.Log("=== a legacy token Secret (type kubernetes.io/service-account-token)")
	p.Apply(prov.Path, `
apiVersion: v1
kind: Secret
metadata:
  name: sl-a-legacy
  namespace: default
  annotations: {kubernetes.io/service-account.name: sl-a}
type: kubernetes.io/service-account-token
`)
	var legacy string
	for i := 0; i < 50 && legacy == ""; i++ {
		r := p.Quiet(p.Admin, "GET", "/clusters/"+prov.Path+"/api/v1/namespaces/default/secrets/sl-a-legacy", "", "")
		legacy, _, _ = unstructured.NestedString(r.JSON, "data", "token")
		time.Sleep(100 * time.Millisecond)
	}
	if legacy == "" {
		t.Log("        the legacy Secret got no token within 5s")
	} else {
		tok := decodeB64(legacy)
		t.Logf("        the legacy Secret got a token; JWT claims: %s", jwtClaims(tok))
		p.Do("sa (legacy token)", tok, "GET", list, "", "")
	}

	t.Log("=== revocation")
	p.Do("sa (secret-bound token)", tokSecret, "POST", "/clusters/"+prov.Path+"/apis/authentication.k8s.io/v1/selfsubjectreviews", ssr, "")
	p.Do("admin", p.Admin, "DELETE", "/clusters/"+prov.Path+"/api/v1/namespaces/default/secrets/sl-a-anchor", "", "")
	r, took := p.WaitCode(tokSecret, "GET", list, "", http.StatusUnauthorized, 30*time.Second)
	t.Logf("after deleting the bound Secret, the secret-bound token got %d on the VW after %s", r.Code, took.Round(10*time.Millisecond))
	p.Do("sa (secret-bound token)", tokSecret, "GET", list, "", "")
	p.Do("sa (secret-bound token)", tokSecret, "POST", "/clusters/"+prov.Path+"/apis/authentication.k8s.io/v1/selfsubjectreviews", ssr, "")
	p.Do("sa (unbound token)", tokPlain, "GET", list, "", "")
	p.Do("admin", p.Admin, "DELETE", "/clusters/"+prov.Path+"/api/v1/namespaces/default/serviceaccounts/sl-a", "", "")
	r, took = p.WaitCode(tokPlain, "GET", list, "", http.StatusUnauthorized, 30*time.Second)
	t.Logf("after deleting the SA, the unbound token got %d on the VW after %s", r.Code, took.Round(10*time.Millisecond))
	p.Do("sa (unbound token)", tokPlain, "GET", list, "", "")
	p.Do("sa (unbound token)", tokPlain, "GET", "/clusters/"+prov.Path+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+prov.Export, "", "")
	if legacy != "" {
		p.Do("sa (legacy token)", decodeB64(legacy), "GET", list, "", "")
	}
	p.Apply(prov.Path, `
apiVersion: v1
kind: ServiceAccount
metadata: {name: sl-a, namespace: default}
`)
	time.Sleep(time.Second)
	p.Do("sa (unbound token, SA recreated with the same name)", tokPlain, "GET", list, "", "")
}
