//go:build probe

package probe

import (
	"fmt"
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

// Q2: what a servicelet-like identity with apiexports/content on the export can do
// through the virtual workspace: list without or with another runtime's selector, change
// the assignment, read tenants' Secrets; and how far RBAC in the provider workspace
// confines it to its own ServiceRuntime.
func TestQ2VirtualWorkspaceScope(t *testing.T) {
	env := framework.Current(t)
	p := newProbe(t)
	prov := env.NewProvider(t)
	t1, t2 := prov.NewTenant(t), prov.NewTenant(t)
	c1, c2 := p.ClusterOf(t1.Path), p.ClusterOf(t2.Path)
	t.Logf("provider %s, tenants %s (%s), %s (%s)", prov.Path, t1.Path, c1, t2.Path, c2)
	for _, x := range []struct{ path, name, rt string }{
		{t1.Path, "a1", "rt-a"}, {t1.Path, "b1", "rt-b"}, {t1.Path, "u1", ""}, {t2.Path, "a2", "rt-a"}, {t2.Path, "b2", "rt-b"},
	} {
		p.MustOK(p.Quiet(p.Admin, "POST", "/clusters/"+x.path+pgdbs+"/namespaces/default/postgresdatabases", pgdb(x.name, x.rt), ""), "create "+x.name)
	}
	p.MustOK(p.Quiet(p.Admin, "POST", "/clusters/"+t1.Path+"/api/v1/namespaces/default/secrets",
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"tenant-own-app-password"},"stringData":{"password":"hunter2"}}`, ""), "tenant secret")
	p.MustOK(p.Quiet(p.Admin, "POST", "/clusters/"+t2.Path+"/api/v1/namespaces/default/secrets",
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"postgresdatabase-b2","labels":{"platform.msp.dev/runtime":"rt-b"}},"stringData":{"password":"rt-b-secret"}}`, ""), "rt-b connection secret")

	// What a servicelet needs on the VW: read, write status/finalizers, write Secrets/Events.
	tok := saWithVW(t, p, prov, "sl-a", "get", "list", "watch", "update", "patch", "create", "delete")
	vw := p.EndpointURL(prov.Path, prov.Export)
	in := func(c string) string { return vw + "/clusters/" + c }

	t.Log("=== list/watch capabilities through the VW")
	all := vw + "/clusters/*" + pgdbs + "/postgresdatabases"
	p.Do("sl-a", tok, "GET", all, "", "")
	p.Do("sl-a", tok, "GET", all+"?labelSelector=platform.msp.dev%2Fruntime%3Drt-a", "", "")
	p.Do("sl-a", tok, "GET", all+"?labelSelector=platform.msp.dev%2Fruntime%3Drt-b", "", "")
	p.Do("sl-a", tok, "GET", all+"?labelSelector=%21platform.msp.dev%2Fruntime", "", "")
	p.Do("sl-a", tok, "GET", all+"?fieldSelector=spec.runtimeName%3Drt-a", "", "")
	p.Do("sl-a", tok, "GET", in(c2)+pgdbs+"/postgresdatabases", "", "")

	t.Log("=== read and change another runtime's capability (b1, on rt-b) through the VW")
	b1 := in(c1) + pgdbs + "/namespaces/default/postgresdatabases/b1"
	p.Do("sl-a", tok, "GET", b1, "", "")
	p.Do("sl-a", tok, "PATCH", b1, `{"metadata":{"labels":{"platform.msp.dev/runtime":"rt-a"}}}`, merge)
	p.Do("sl-a", tok, "PATCH", b1, `{"spec":{"runtimeName":"rt-a"}}`, merge)
	p.Do("sl-a", tok, "PATCH", b1, `{"spec":{"size":"2Gi","extensions":["citext"]}}`, merge)
	p.Do("sl-a", tok, "PATCH", b1, `{"metadata":{"finalizers":["platform.msp.dev/servicelet"]}}`, merge)
	p.Do("sl-a", tok, "PATCH", b1+"/status", `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Available","message":"forged by sl-a","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`, merge)
	p.Do("sl-a", tok, "DELETE", b1, "", "")
	t.Log("=== assign an unassigned capability (u1) to itself")
	u1 := in(c1) + pgdbs + "/namespaces/default/postgresdatabases/u1"
	p.Do("sl-a", tok, "PATCH", u1, `{"metadata":{"labels":{"platform.msp.dev/runtime":"rt-a"}},"spec":{"runtimeName":"rt-a"}}`, merge)
	t.Log("=== create a capability in a tenant workspace through the VW")
	p.Do("sl-a", tok, "POST", in(c2)+pgdbs+"/namespaces/default/postgresdatabases", pgdb("made-by-sl-a", "rt-a"), "")

	t.Log("=== Secrets (permission claim, matchAll) through the VW")
	p.Do("sl-a", tok, "GET", vw+"/clusters/*/api/v1/secrets", "", "")
	p.Do("sl-a", tok, "GET", vw+"/clusters/*/api/v1/secrets?labelSelector=platform.msp.dev%2Fruntime%3Drt-a", "", "")
	r := p.Do("sl-a", tok, "GET", in(c1)+"/api/v1/namespaces/default/secrets/tenant-own-app-password", "", "")
	if r.OK() {
		t.Logf("        its data: %v", r.JSON["data"])
	}
	r = p.Do("sl-a", tok, "GET", in(c2)+"/api/v1/namespaces/default/secrets/postgresdatabase-b2", "", "")
	if r.OK() {
		t.Logf("        its data: %v", r.JSON["data"])
	}
	p.Do("sl-a", tok, "PATCH", in(c2)+"/api/v1/namespaces/default/secrets/postgresdatabase-b2", `{"stringData":{"password":"overwritten-by-sl-a"}}`, merge)
	p.Do("sl-a", tok, "POST", in(c1)+"/api/v1/namespaces/default/secrets", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"planted-by-sl-a"}}`, "")
	p.Do("sl-a", tok, "DELETE", in(c1)+"/api/v1/namespaces/default/secrets/tenant-own-app-password", "", "")
	p.Do("sl-a", tok, "GET", vw+"/clusters/*/api/v1/configmaps", "", "")
	p.Do("sl-a", tok, "GET", vw+"/clusters/*/api/v1/events", "", "")

	t.Log("=== its ServiceRuntime: RBAC by resourceName in the provider workspace")
	p.Apply(prov.Path, `
apiVersion: platform.msp.dev/v1alpha1
kind: ServiceRuntime
metadata: {name: rt-a}
spec:
  location: {region: eu-de, country: DE}
  capabilities: [{group: postgres.msp.dev, kind: PostgresDatabase}]
---
apiVersion: platform.msp.dev/v1alpha1
kind: ServiceRuntime
metadata: {name: rt-b}
spec:
  location: {region: eu-fr, country: FR}
  capabilities: [{group: postgres.msp.dev, kind: PostgresDatabase}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: servicelet-rt-a}
rules:
- apiGroups: [platform.msp.dev]
  resources: [serviceruntimes]
  resourceNames: [rt-a]
  verbs: [get, list, watch]
- apiGroups: [platform.msp.dev]
  resources: [serviceruntimes/status]
  resourceNames: [rt-a]
  verbs: [get, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: servicelet-rt-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: servicelet-rt-a}
subjects:
- {kind: ServiceAccount, name: sl-a, namespace: default}
`)
	rts := "/clusters/" + prov.Path + "/apis/platform.msp.dev/v1alpha1/serviceruntimes"
	heartbeat := `{"status":{"lastHeartbeatTime":"2026-01-01T00:00:00Z"}}`
	p.WaitCode(tok, "GET", rts+"/rt-a", "", 200, 0)
	p.Do("sl-a", tok, "GET", rts+"/rt-a", "", "")
	p.Do("sl-a", tok, "GET", rts+"?fieldSelector=metadata.name%3Drt-a", "", "")
	p.Do("sl-a", tok, "GET", rts+"?fieldSelector=metadata.name%3Drt-a&watch=true&timeoutSeconds=1", "", "")
	p.Do("sl-a", tok, "GET", rts, "", "")
	p.Do("sl-a", tok, "GET", rts+"/rt-b", "", "")
	p.Do("sl-a", tok, "PATCH", rts+"/rt-a/status", heartbeat, merge)
	p.Do("sl-a", tok, "PATCH", rts+"/rt-b/status", heartbeat, merge)
	p.Do("sl-a", tok, "PATCH", rts+"/rt-a", `{"spec":{"unschedulable":true}}`, merge)
	p.Do("sl-a", tok, "POST", rts, `{"apiVersion":"platform.msp.dev/v1alpha1","kind":"ServiceRuntime","metadata":{"name":"rt-new"},"spec":{"location":{"region":"eu-de"}}}`, "")
	p.Apply(prov.Path, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: servicelet-register}
rules:
- apiGroups: [platform.msp.dev]
  resources: [serviceruntimes]
  resourceNames: [rt-c]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: servicelet-register}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: servicelet-register}
subjects:
- {kind: ServiceAccount, name: sl-a, namespace: default}
`)
	p.WaitCode(tok, "GET", rts+"/rt-a", "", 200, 0)
	t.Log("--- create with resourceNames: [rt-c] (RBAC cannot check names on create)")
	p.Do("sl-a", tok, "POST", rts, `{"apiVersion":"platform.msp.dev/v1alpha1","kind":"ServiceRuntime","metadata":{"name":"rt-c"},"spec":{"location":{"region":"eu-de"}}}`, "")
	p.Do("sl-a", tok, "POST", rts, `{"apiVersion":"platform.msp.dev/v1alpha1","kind":"ServiceRuntime","metadata":{"name":"rt-d"},"spec":{"location":{"region":"eu-de"}}}`, "")
	p.Kubectl("sl-a", p.Kubeconfig("sl-a", tok, prov.Path), "auth", "can-i", "--list")
	_ = fmt.Sprint
}
