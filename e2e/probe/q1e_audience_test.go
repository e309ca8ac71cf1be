//go:build probe

package probe

import (
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

// Q1e: a token whose audience is an msp front door, not kcp: kcp must refuse it, and a
// front door can still validate it with a TokenReview that names its audience.
func TestQ1eFrontDoorAudience(t *testing.T) {
	env := framework.Current(t)
	p := newProbe(t)
	prov := env.NewProvider(t)
	prov.NewTenant(t)
	saWithVW(t, p, prov, "sl-fd", "get", "list", "watch")
	_, tok := p.TokenRequest(prov.Path, "default", "sl-fd", map[string]any{"expirationSeconds": 3600, "audiences": []string{"msp-front-door"}})
	vw := p.EndpointURL(prov.Path, prov.Export)
	ssr := `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
	p.Do("sl-fd (aud msp-front-door)", tok, "POST", "/clusters/"+prov.Path+"/apis/authentication.k8s.io/v1/selfsubjectreviews", ssr, "")
	p.Do("sl-fd (aud msp-front-door)", tok, "GET", vw+"/clusters/*"+pgdbs+"/postgresdatabases", "", "")
	for _, aud := range [][]string{nil, {"msp-front-door"}} {
		spec := map[string]any{"token": tok}
		if aud != nil {
			spec["audiences"] = aud
		}
		body := jsonBody(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
		r := p.Do("front door (admin here)", p.Admin, "POST", "/clusters/"+prov.Path+"/apis/authentication.k8s.io/v1/tokenreviews", body, "")
		t.Logf("        TokenReview audiences=%v -> status: %s", aud, jsonBody(r.JSON["status"]))
	}
	t.Log("=== a TokenReview by an identity that only has create tokenreviews in the provider workspace")
	p.Apply(prov.Path, `
apiVersion: v1
kind: ServiceAccount
metadata: {name: front-door, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: token-reviewer}
rules:
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: front-door}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: token-reviewer}
subjects:
- {kind: ServiceAccount, name: front-door, namespace: default}
`)
	_, fd := p.TokenRequest(prov.Path, "default", "front-door", map[string]any{"expirationSeconds": 3600})
	body := jsonBody(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": map[string]any{"token": tok, "audiences": []string{"msp-front-door"}}})
	r := p.Do("front-door SA", fd, "POST", "/clusters/"+prov.Path+"/apis/authentication.k8s.io/v1/tokenreviews", body, "")
	t.Logf("        status: %s", jsonBody(r.JSON["status"]))
}
