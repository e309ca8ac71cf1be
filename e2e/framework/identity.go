package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/ports"
)

// logDir is where a test's component logs go: MSP_E2E_ARTIFACTS/<name> when set.
func logDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("MSP_E2E_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, UniqueName(t))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// issueIdentities grants the provider's coordinator and front door their rights, installs
// the admission webhook, and starts the front door until the test ends, as the bootstrap
// and an operator would.
func (p *Provider) issueIdentities(t testing.TB) {
	t.Helper()
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	kcpCA, err := p.env.Server.ServingCA()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := bootstrap.IssueProvider(context.Background(), bootstrap.Options{Config: p.env.Config}, p.env.Server.CA(), bootstrap.ProviderOptions{
		Workspace: p.Path, Export: p.Export, Server: p.env.Server.URL(), KCPCA: kcpCA,
		FrontDoorAddr: fmt.Sprintf("127.0.0.1:%d", port), Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Identities = ids
	fd := startProcess(t, filepath.Join(p.env.Bin, "msp-frontdoor"), filepath.Join(logDir(t), fmt.Sprintf("frontdoor-%d.log", port)), ids.FrontDoorArgs()...)
	t.Cleanup(func() {
		fd.Stop()
		fd.logTail(t, "the front door")
	})
	p.frontDoor = fd
	p.waitFrontDoor(t)
}

// waitFrontDoor waits until the front door serves.
func (p *Provider) waitFrontDoor(t testing.TB) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.env.Server.CA().CertPEM())
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	Eventually(t, time.Minute, "the front door of "+p.Path+" to serve", func(ctx context.Context) (bool, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Identities.FrontDoorURL+"/healthz", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
}

// ServiceletKubeconfig issues the runtime's servicelet its own credential (a token of its
// ServiceAccount for the front door's audience) and returns a kubeconfig that dials the
// front door with it.
func (p *Provider) ServiceletKubeconfig(t testing.TB, runtime string) string {
	t.Helper()
	kubeconfig, err := identity.IssueServiceletAccess(context.Background(), p.Config, runtime, t.TempDir(), p.Identities.FrontDoorURL, p.env.Server.CA().CertPEM(), identity.DefaultAudience, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// Permit grants the tenant workspace the verb use on the named runtimes (all when none
// is named), so that it may name them in spec.runtimeName.
func (p *Provider) Permit(t testing.TB, tenant *Workspace, runtimes ...string) {
	t.Helper()
	objs := bootstrap.UseRuntimes(tenant.ClusterName(t), runtimes...)
	if _, err := bootstrap.Apply(context.Background(), bootstrap.Options{Config: p.env.Config}, p.Path, objs...); err != nil {
		t.Fatalf("failed to let %s use runtimes %v: %v", tenant.Path, runtimes, err)
	}
}

// ClusterName is the workspace's logical cluster name (what kcp's virtual workspaces and
// the scheduler's subjects use).
func (w *Workspace) ClusterName(t testing.TB) string {
	t.Helper()
	i := len(w.Path) - 1
	for i >= 0 && w.Path[i] != ':' {
		i--
	}
	parent := Current(t).In(w.Path[:i])
	got, err := parent.Dynamic.Resource(WorkspaceGVR).Get(context.Background(), w.Path[i+1:], metav1.GetOptions{})
	if err != nil {
		t.Fatalf("failed to read workspace %s: %v", w.Path, err)
	}
	c, _, _ := unstructured.NestedString(got.Object, "spec", "cluster")
	if c == "" {
		t.Fatalf("workspace %s names no cluster", w.Path)
	}
	return c
}

// NewTenantUsingRuntimes is NewTenant for a tenant the provider lets name any of its
// runtimes in spec.runtimeName.
func (p *Provider) NewTenantUsingRuntimes(t testing.TB) *Workspace {
	t.Helper()
	ws := p.NewTenant(t)
	p.Permit(t, ws)
	return ws
}

// TenantAdmin makes user (one of TenantUsers) the admin of the tenant workspace, and of
// nothing else, and returns a kubeconfig of that user addressing the workspace.
func (e *Env) TenantAdmin(t testing.TB, user string, tenant *Workspace) string {
	t.Helper()
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": "tenant-admin-" + user},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
	}}
	if _, err := bootstrap.Apply(context.Background(), bootstrap.Options{Config: e.Config}, tenant.Path, binding); err != nil {
		t.Fatalf("failed to make %s the admin of %s: %v", user, tenant.Path, err)
	}
	file := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := e.Server.UserKubeconfig(user, tenant.Path, file); err != nil {
		t.Fatal(err)
	}
	return file
}
