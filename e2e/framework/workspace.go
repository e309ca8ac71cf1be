package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// WorkspaceGVR is kcp's Workspace resource.
var WorkspaceGVR = schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspaces"}

// Workspace is a kcp workspace a test works in.
type Workspace struct {
	// Path is the logical cluster path, e.g. root:tenants:e2e-foo-1a2b.
	Path string
	// Config is the admin config addressing the workspace.
	Config *rest.Config
	// Dynamic is a dynamic client on the workspace.
	Dynamic dynamic.Interface
}

// In returns the workspace at path, without creating it.
func (e *Env) In(path string) *Workspace {
	cfg := kcpconfig.ForWorkspace(e.Config, path)
	// Tests create in bursts; client-go's default of 5 requests/s would measure the client.
	cfg.QPS, cfg.Burst = 1000, 2000
	return &Workspace{Path: path, Config: cfg, Dynamic: dynamic.NewForConfigOrDie(cfg)}
}

// TenantAPIs are the API group versions every tenant workspace gets bound.
var TenantAPIs = []string{"postgres.msp.dev/v1alpha1"}

// NewTenant creates a tenant workspace (type root:platform:tenant) under root:tenants
// with a name derived from the test's, waits until it is Ready and serves the provider
// APIs, and deletes it when the test ends.
func (e *Env) NewTenant(t testing.TB) *Workspace {
	t.Helper()
	ws := e.NewWorkspace(t, "root:tenants", UniqueName(t), map[string]any{"name": "tenant", "path": "root:platform"})
	for _, gv := range TenantAPIs {
		waitServed(t, ws, gv)
	}
	return ws
}

// NewWorkspace creates a workspace named name in parent, of the given type (nil for the
// parent's default), waits until it is Ready and deletes it when the test ends.
func (e *Env) NewWorkspace(t testing.TB, parent, name string, wsType map[string]any) *Workspace {
	t.Helper()
	workspaces := e.In(parent).Dynamic.Resource(WorkspaceGVR)
	t.Cleanup(func() {
		err := workspaces.Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("failed to delete workspace %s:%s: %v", parent, name, err)
		}
	})
	if _, err := bootstrap.CreateWorkspace(context.Background(), bootstrap.Options{Config: e.Config}, parent, name, wsType); err != nil {
		t.Fatalf("failed to create workspace %s in %s: %v", name, parent, err)
	}
	return e.In(parent + ":" + name)
}

// WaitForWorkspaceReady waits until the workspace name in parent reports phase Ready.
func WaitForWorkspaceReady(t testing.TB, parent *Workspace, name string) {
	t.Helper()
	Eventually(t, 2*time.Minute, fmt.Sprintf("workspace %s:%s to be Ready", parent.Path, name), func(ctx context.Context) (bool, string, error) {
		got, err := parent.Dynamic.Resource(WorkspaceGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		phase, _, _ := unstructured.NestedString(got.Object, "status", "phase")
		return phase == "Ready", "phase " + phase, nil
	})
}

// Kubeconfig writes a kubeconfig whose current context is this workspace, for kubectl
// and its plugins, into the test's temp folder.
func (w *Workspace) Kubeconfig(t testing.TB) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(Current(t).Kubeconfig())
	if err != nil {
		t.Fatalf("failed to load the platform kubeconfig: %v", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		t.Fatalf("the platform kubeconfig has no current context")
	}
	cluster := cfg.Clusters[ctx.Cluster].DeepCopy()
	cluster.Server = kcpconfig.BaseURL(cluster.Server) + "/clusters/" + w.Path
	cfg.Clusters["workspace"] = cluster
	wsCtx := ctx.DeepCopy()
	wsCtx.Cluster = "workspace"
	cfg.Contexts["workspace"] = wsCtx
	cfg.CurrentContext = "workspace"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("failed to write kubeconfig: %v", err)
	}
	return path
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// UniqueName turns the test's name into a workspace or object name with a random suffix.
func UniqueName(t testing.TB) string {
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[len(base)-40:], "-")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return base + "-" + hex.EncodeToString(b)
}

// TempFile writes content into a file in the test's temp folder and returns its path.
func TempFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func discoveryFor(ws *Workspace) *discovery.DiscoveryClient {
	return discovery.NewDiscoveryClientForConfigOrDie(ws.Config)
}
