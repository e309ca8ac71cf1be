//go:build probe

package probe

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/msp-dev/msp/e2e/framework"
)

// Q4 (runs last: it restarts kcp): static-token tenant users that are not kcp admins,
// and what the bootstrap must create so that acme-admin is admin of root:tenants:acme
// only. The launcher keeps an existing msp-tokens.csv (it reads the platform token from
// its first line), so extra lines appended to it are served after a restart.
func TestQ4StaticTokenTenantAdmins(t *testing.T) {
	env := framework.Current(t)
	file := filepath.Join(env.Server.DataDir(), "msp-tokens.csv")
	acmeTok, globexTok := randomToken(t), randomToken(t)
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(acmeTok + ",acme-admin,acme-admin\n" + globexTok + ",globex-admin,globex-admin,\"msp:tenants\"\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(file)
	t.Logf("msp-tokens.csv now has %d bytes (platform line + acme-admin + globex-admin); restarting kcp", len(raw))
	start := time.Now()
	env.RestartKCP(t, 0)
	t.Logf("kcp restarted in %s", time.Since(start).Round(time.Second))

	p := newProbe(t)
	env.NewWorkspace(t, "root:tenants", "globex", map[string]any{"name": "tenant", "path": "root:platform"})
	acme := "root:tenants:acme"
	globex := "root:tenants:globex"
	kcAcmeRoot := p.Kubeconfig("acme-root", acmeTok, "root")
	kcAcme := p.Kubeconfig("acme", acmeTok, acme)
	kcAcmeGlobex := p.Kubeconfig("acme-globex", acmeTok, globex)
	kcAcmeTenants := p.Kubeconfig("acme-tenants", acmeTok, "root:tenants")
	kcGlobex := p.Kubeconfig("globex", globexTok, globex)

	t.Log("=== before any RBAC")
	p.Kubectl("acme-admin", kcAcmeRoot, "auth", "whoami")
	p.Kubectl("acme-admin", kcAcmeRoot, "ws", ":root:tenants:acme")
	p.Kubectl("acme-admin", kcAcme, "auth", "can-i", "*", "*")
	p.Kubectl("acme-admin", kcAcme, "get", "postgresdatabases")

	t.Log("=== the old kcp way: workspaces/content access+admin on globex in the parent root:tenants (for globex-admin)")
	p.Apply("root:tenants", `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: globex-content}
rules:
- apiGroups: [tenancy.kcp.io]
  resources: [workspaces/content]
  resourceNames: [globex]
  verbs: [access, admin]
- apiGroups: [tenancy.kcp.io]
  resources: [workspaces]
  resourceNames: [globex]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: globex-content}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: globex-content}
subjects:
- {kind: User, name: globex-admin}
`)
	time.Sleep(2 * time.Second)
	p.Kubectl("globex-admin", kcGlobex, "auth", "can-i", "*", "*")
	p.Kubectl("globex-admin", kcGlobex, "get", "postgresdatabases")
	p.Kubectl("globex-admin", p.Kubeconfig("globex-root", globexTok, "root"), "ws", ":root:tenants:globex")

	t.Log("=== in acme: ClusterRoleBinding acme-admin -> cluster-admin (nothing in root:tenants)")
	p.Apply(acme, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tenant-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: User, name: acme-admin}
`)
	time.Sleep(2 * time.Second)
	p.Kubectl("acme-admin", kcAcmeRoot, "ws", ":root:tenants:acme")
	p.Kubectl("acme-admin", kcAcmeRoot, "auth", "can-i", "*", "*")
	p.Kubectl("acme-admin", kcAcme, "auth", "can-i", "*", "*")
	p.Kubectl("acme-admin", kcAcme, "get", "postgresdatabases")
	p.KubectlIn("acme-admin", kcAcme, `apiVersion: postgres.msp.dev/v1alpha1
kind: PostgresDatabase
metadata: {name: orders, namespace: default}
spec: {placement: {countries: [DE]}}`, "apply", "-f", "-")
	p.Kubectl("acme-admin", kcAcme, "auth", "can-i", "delete", "apibindings.apis.kcp.io")
	p.Kubectl("acme-admin", kcAcme, "auth", "can-i", "create", "validatingwebhookconfigurations")
	p.Kubectl("acme-admin", kcAcme, "ws", "..")
	p.Kubectl("acme-admin", kcAcmeGlobex, "auth", "can-i", "*", "*")
	p.Kubectl("acme-admin", kcAcmeGlobex, "get", "postgresdatabases")
	p.Kubectl("acme-admin", p.Kubeconfig("acme-root2", acmeTok, "root"), "auth", "can-i", "*", "*")
	p.Kubectl("acme-admin", p.Kubeconfig("acme-root3", acmeTok, "root"), "auth", "can-i", "delete", "workspaces")
	p.Kubectl("acme-admin", p.Kubeconfig("acme-root4", acmeTok, "root"), "auth", "can-i", "create", "workspaces")
	p.Kubectl("acme-admin", kcAcmeTenants, "auth", "can-i", "*", "*")
	p.Kubectl("acme-admin", kcAcmeTenants, "get", "workspaces")
	p.Kubectl("acme-admin", p.Kubeconfig("acme-root5", acmeTok, "root"), "ws", ":root:tenants:globex")
	p.Kubectl("acme-admin", p.Kubeconfig("acme-root6", acmeTok, "root"), "ws", ":root:providers:postgres")
	p.Kubectl("acme-admin", p.Kubeconfig("acme-prov", acmeTok, "root:providers:postgres"), "get", "apiexports")
	vw := p.EndpointURL("root:providers:postgres", "postgres.msp.dev")
	p.Do("acme-admin", acmeTok, "GET", vw+"/clusters/*"+pgdbs+"/postgresdatabases", "", "")

	t.Log("=== in globex: only access (nonResourceURL / verb access) + edit PostgresDatabases, for globex-admin")
	p.Apply(globex, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: tenant-access}
rules:
- nonResourceURLs: ["/"]
  verbs: [access]
- apiGroups: [postgres.msp.dev]
  resources: [postgresdatabases]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tenant-access}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tenant-access}
subjects:
- {kind: Group, name: "msp:tenants"}
`)
	time.Sleep(2 * time.Second)
	p.Kubectl("globex-admin", p.Kubeconfig("globex-root2", globexTok, "root"), "ws", ":root:tenants:globex")
	p.Kubectl("globex-admin", kcGlobex, "auth", "can-i", "*", "*")
	p.Kubectl("globex-admin", kcGlobex, "auth", "can-i", "create", "postgresdatabases")
	p.Kubectl("globex-admin", kcGlobex, "auth", "can-i", "get", "secrets")
	p.Kubectl("globex-admin", kcGlobex, "get", "postgresdatabases")
	p.Kubectl("globex-admin", p.Kubeconfig("globex-acme", globexTok, acme), "auth", "can-i", "get", "postgresdatabases")
}

func randomToken(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
