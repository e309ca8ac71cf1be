//go:build probe

package probe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/msp-dev/msp/e2e/framework"
)

// Q7: could an msp front door forward a servicelet's request to the VW as that
// servicelet (impersonation), so that kcp's RBAC and the provider's webhooks still see
// the servicelet's own identity? Impersonated user info is built per request, not taken
// from the token cache.
func TestQ7ImpersonationThroughVW(t *testing.T) {
	env := framework.Current(t)
	p := newProbe(t)
	prov := env.NewProvider(t)
	t1 := prov.NewTenant(t)
	c1 := p.ClusterOf(t1.Path)
	p.MustOK(p.Quiet(p.Admin, "POST", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases", pgdb("a1", "rt-a"), ""), "create a1")
	vw := p.EndpointURL(prov.Path, prov.Export)
	p.Apply(prov.Path, fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: servicelet}
rules:
- nonResourceURLs: ["/"]
  verbs: [access]
- apiGroups: [apis.kcp.io]
  resources: [apiexports/content]
  resourceNames: [%[1]s]
  verbs: [get, list, watch, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: servicelets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: servicelet}
subjects:
- {kind: Group, name: "msp:servicelets"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: front-door, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: front-door}
rules:
- apiGroups: [""]
  resources: [users, groups]
  verbs: [impersonate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: front-door}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: front-door}
subjects:
- {kind: ServiceAccount, name: front-door, namespace: default}
`, prov.Export))
	_, fd := p.TokenRequest(prov.Path, "default", "front-door", map[string]any{"expirationSeconds": 3600})
	time.Sleep(2 * time.Second)

	imp := func(who, token, method, url, body, user string, groups ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		if strings.HasPrefix(url, "/") {
			url = p.Base + url
		}
		req, _ := http.NewRequestWithContext(ctx, method, url, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Impersonate-User", user)
		for _, g := range groups {
			req.Header.Add("Impersonate-Group", g)
		}
		if body != "" {
			req.Header.Set("Content-Type", merge)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Logf("[%s as %s %v] %s %s => %v", who, user, groups, method, strings.TrimPrefix(url, p.Base), err)
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		r := Resp{Code: resp.StatusCode, Body: string(raw)}
		_ = jsonUnmarshal(raw, &r.JSON)
		t.Logf("[%s impersonating %s %v] %s %s\n        => %s", who, user, groups, method, strings.TrimPrefix(url, p.Base), r)
	}
	list := vw + "/clusters/*" + pgdbs + "/postgresdatabases"
	one := vw + "/clusters/" + c1 + pgdbs + "/namespaces/default/postgresdatabases/a1"
	t.Log("=== the platform admin (system:kcp:admin) impersonating")
	imp("admin", p.Admin, "GET", list, "", "msp:servicelet:rt-a", "msp:servicelets")
	imp("admin", p.Admin, "GET", list, "", "msp:servicelet:rt-a")
	imp("admin", p.Admin, "PATCH", one+"/status", `{"status":{"observedGeneration":3}}`, "msp:servicelet:rt-a", "msp:servicelets")
	imp("admin", p.Admin, "GET", "/clusters/"+t1.Path+"/api/v1/namespaces/default/configmaps", "", "msp:servicelet:rt-a", "msp:servicelets")
	t.Log("=== a front-door SA with impersonate on users/groups in the provider workspace only")
	imp("front-door", fd, "GET", list, "", "msp:servicelet:rt-a", "msp:servicelets")
	imp("front-door", fd, "PATCH", one+"/status", `{"status":{"observedGeneration":4}}`, "msp:servicelet:rt-a", "msp:servicelets")
	imp("front-door", fd, "GET", "/clusters/"+prov.Path+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices", "", "msp:servicelet:rt-a", "msp:servicelets")
	imp("front-door", fd, "GET", "/clusters/"+t1.Path+"/api/v1/namespaces/default/configmaps", "", "msp:servicelet:rt-a", "msp:servicelets")
	imp("front-door", fd, "GET", list, "", "msp-platform", "system:kcp:admin")
	t.Log("=== the front-door SA also gets verb impersonate on apiexports/content of the export")
	p.Apply(prov.Path, fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: front-door-content}
rules:
- apiGroups: [apis.kcp.io]
  resources: [apiexports/content]
  resourceNames: [%s]
  verbs: [impersonate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: front-door-content}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: front-door-content}
subjects:
- {kind: ServiceAccount, name: front-door, namespace: default}
`, prov.Export))
	time.Sleep(2 * time.Second)
	imp("front-door", fd, "GET", list, "", "msp:servicelet:rt-a", "msp:servicelets")
	imp("front-door", fd, "GET", one, "", "msp:servicelet:rt-a", "msp:servicelets")
	imp("front-door", fd, "PATCH", one+"/status", `{"status":{"observedGeneration":4}}`, "msp:servicelet:rt-a", "msp:servicelets")
	imp("front-door", fd, "GET", list, "", "msp-platform", "system:kcp:admin")
}
