package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/bootstrap"
)

var (
	pgdbGVR          = schema.GroupVersionResource{Group: "postgres.msp.dev", Version: "v1alpha1", Resource: "postgresdatabases"}
	endpointSliceGVR = schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apiexportendpointslices"}
	apiBindingGVR    = schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha2", Resource: "apibindings"}
)

// A tenant workspace made with the kubectl plugins from the tenant WorkspaceType has the
// provider's API bound, and `kubectl ws` navigates into it.
func TestTenantWorkspaceGetsProviderAPIs(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	name := framework.UniqueName(t)
	kubeconfig := env.In("root:tenants").Kubeconfig(t)
	t.Cleanup(func() {
		_ = env.In("root:tenants").Dynamic.Resource(framework.WorkspaceGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
	})

	env.MustKubectl(t, kubeconfig, "", "create", "workspace", name, "--type", "root:platform:tenant")
	framework.WaitForWorkspaceReady(t, env.In("root:tenants"), name)

	out := env.MustKubectl(t, kubeconfig, "", "ws", ":root:tenants:"+name)
	if !strings.Contains(out, "root:tenants:"+name) || !strings.Contains(out, "root:platform:tenant") {
		t.Fatalf("kubectl ws did not report the tenant workspace and its type: %q", out)
	}
	// kubectl ws switched the kubeconfig's context: plain kubectl now talks to the tenant.
	out = env.MustKubectl(t, kubeconfig, "", "ws", ".")
	if !strings.Contains(out, "root:tenants:"+name) {
		t.Fatalf("kubectl ws . = %q, want the tenant workspace", out)
	}
	framework.Eventually(t, time.Minute, "postgresdatabases to be served in the tenant", func(context.Context) (bool, string, error) {
		res := env.Kubectl(t, kubeconfig, "", "api-resources", "--api-group=postgres.msp.dev", "-o", "name")
		return strings.Contains(res.Stdout, "postgresdatabases.postgres.msp.dev"), res.Stdout + res.Stderr, nil
	})
	res := env.Kubectl(t, kubeconfig, "", "get", "postgresdatabases")
	if res.Err != nil || !strings.Contains(res.Stderr, "No resources found") {
		t.Fatalf("kubectl get postgresdatabases: err=%v stdout=%q stderr=%q", res.Err, res.Stdout, res.Stderr)
	}

	// The default binding accepted the export's permission claim on Secrets, which the
	// servicelets need to write connection details back.
	bindings, err := env.In("root:tenants:"+name).Dynamic.Resource(apiBindingGVR).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var claims []string
	for _, b := range bindings.Items {
		exportName, _, _ := unstructured.NestedString(b.Object, "spec", "reference", "export", "name")
		if exportName != "postgres.msp.dev" {
			continue
		}
		list, _, _ := unstructured.NestedSlice(b.Object, "spec", "permissionClaims")
		for _, c := range list {
			m := c.(map[string]any)
			claims = append(claims, fmt.Sprintf("%v=%v", m["resource"], m["state"]))
		}
	}
	if !contains(claims, "secrets=Accepted") {
		t.Fatalf("the postgres.msp.dev binding does not accept the secrets claim; claims: %v", claims)
	}
}

// The provider's APIExportEndpointSlice reports a URL, and that URL serves the
// capabilities of every bound workspace.
func TestProviderEndpointSliceServesExport(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	tenant := env.NewTenant(t)
	ctx := context.Background()

	db := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "postgres.msp.dev/v1alpha1",
		"kind":       "PostgresDatabase",
		"metadata":   map[string]any{"name": "orders", "namespace": "default"},
		"spec":       map[string]any{"placement": map[string]any{"countries": []any{"FR"}}},
	}}
	framework.Eventually(t, time.Minute, "a PostgresDatabase to be created in the tenant", func(ctx context.Context) (bool, string, error) {
		_, err := tenant.Dynamic.Resource(pgdbGVR).Namespace("default").Create(ctx, db, metav1.CreateOptions{})
		return err == nil, "", err
	})

	provider := env.In("root:providers:postgres")
	var url string
	framework.Eventually(t, time.Minute, "the postgres.msp.dev endpoint slice to report a URL", func(ctx context.Context) (bool, string, error) {
		slice, err := provider.Dynamic.Resource(endpointSliceGVR).Get(ctx, "postgres.msp.dev", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		endpoints, _, _ := unstructured.NestedSlice(slice.Object, "status", "endpoints")
		if len(endpoints) == 0 {
			return false, "no endpoints", nil
		}
		url, _ = endpoints[0].(map[string]any)["url"].(string)
		return url != "", fmt.Sprint(endpoints), nil
	})

	// Through the virtual workspace, the wildcard cluster lists the tenant's database.
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = url
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the virtual workspace to list the tenant's database", func(ctx context.Context) (bool, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/clusters/*/apis/postgres.msp.dev/v1alpha1/postgresdatabases", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return false, resp.Status + ": " + string(body), nil
		}
		var list unstructured.UnstructuredList
		if err := json.Unmarshal(body, &list.Object); err != nil {
			return false, "", err
		}
		if err := list.UnmarshalJSON(body); err != nil {
			return false, "", err
		}
		var seen []string
		for _, item := range list.Items {
			cluster := item.GetAnnotations()["kcp.io/cluster"]
			seen = append(seen, cluster+"/"+item.GetName())
			if item.GetName() == "orders" && cluster != "" && tenantCluster(ctx, t, tenant) == cluster {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("listed %v", seen), nil
	})
	_ = ctx
}

// tenantCluster returns the logical cluster name behind a workspace path.
func tenantCluster(ctx context.Context, t *testing.T, ws *framework.Workspace) string {
	t.Helper()
	lc, err := ws.Dynamic.Resource(schema.GroupVersionResource{Group: "core.kcp.io", Version: "v1alpha1", Resource: "logicalclusters"}).Get(ctx, "cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("failed to read the logical cluster of %s: %v", ws.Path, err)
	}
	return lc.GetAnnotations()["kcp.io/cluster"]
}

// Running the bootstrap again on a bootstrapped kcp changes nothing and fails nothing.
func TestBootstrapIsIdempotent(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	first := env.Bootstrap
	if len(first.Changed()) == 0 {
		t.Fatalf("the first bootstrap on a fresh kcp created nothing: %v", first.Applied)
	}
	second, err := bootstrap.Run(context.Background(), bootstrap.Options{Config: env.Config})
	if err != nil {
		t.Fatalf("second bootstrap failed: %v", err)
	}
	if changed := second.Changed(); len(changed) != 0 {
		t.Errorf("second bootstrap changed %d objects, want none: %v", len(changed), changed)
	}
	if len(second.Applied) != len(first.Applied) {
		t.Errorf("second bootstrap applied %d objects, the first %d", len(second.Applied), len(first.Applied))
	}
	t.Logf("first run: %d objects (%d created); second run: %d objects, %d changed",
		len(first.Applied), len(first.Changed()), len(second.Applied), len(second.Changed()))

	// The command for a kcp run elsewhere (deploy/) does the same.
	out, err := exec.Command(filepath.Join(env.Bin, "msp-bootstrap"), "--kubeconfig", env.Kubeconfig()).CombinedOutput()
	if err != nil {
		t.Fatalf("msp-bootstrap failed: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("%d objects, 0 created or updated", len(first.Applied)); !strings.Contains(string(out), want) {
		t.Errorf("msp-bootstrap output does not say %q:\n%s", want, out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
