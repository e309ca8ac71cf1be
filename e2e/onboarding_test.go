package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/onboarding"
	"github.com/msp-dev/msp/sdk/launch"
)

var pgServerGVR = schema.GroupVersionResource{Group: "hosting.msp.dev", Version: "v1alpha1", Resource: "postgresservers"}

// consent applies deploy/tenant in a tenant workspace, as the operator does for the
// tenants it creates: msp-providers may manage APIBindings there.
func consent(t *testing.T, env *framework.Env, tenant *framework.Workspace) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "tenant", "rbac-msp-provider-bindings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env.MustKubectl(t, tenant.Kubeconfig(t), string(raw), "apply", "-f", "-")
}

func hasBinding(ctx context.Context, ws *framework.Workspace, providerPath string) (bool, error) {
	list, err := ws.Dynamic.Resource(schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha2", Resource: "apibindings"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, b := range list.Items {
		if p, _, _ := unstructured.NestedString(b.Object, "spec", "reference", "export", "path"); p == providerPath {
			return true, nil
		}
	}
	return false, nil
}

// A provider joins with kubectl alone: its ServiceProvider in root:platform, its
// APIResourceSchemas and APIExport in the workspace msp-providers makes, and its binaries.
// An existing tenant (one that lets msp bind) and a new one get its API, one that opted
// out does not; a tenant orders a capability; deleting with policy Delete is held while
// the capability exists and says where; policy Orphan leaves the capability and its
// server in place; registering again takes the workspace back, and Delete then removes
// the tenants' bindings and the workspace.
//
// This test owns hosting.msp.dev among the tenant-typed workspaces: no other test may
// register it with default binding (new tenants would get two bindings of one group).
func TestServiceProviderLifecycle(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	ctx := context.Background()
	name := "hosting-" + fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)

	existing := env.NewTenant(t)
	consent(t, env, existing)
	optedOut := env.NewTenant(t)
	consent(t, env, optedOut)
	tenantName := optedOut.Path[strings.LastIndex(optedOut.Path, ":")+1:]
	env.MustKubectl(t, env.In("root:tenants").Kubeconfig(t), "", "label", "workspace", tenantName, onboarding.LabelPrefix+name+"="+onboarding.OptOut)

	h := env.RegisterProvider(t, framework.Registration{Name: name, Group: "hosting.msp.dev",
		Spec: onboardingv1alpha1.ServiceProviderSpec{DeletionPolicy: onboardingv1alpha1.DeletionDelete}})

	// The existing tenant gets the API through an APIBinding msp-providers made.
	framework.Eventually(t, time.Minute, "hosting.msp.dev to be bound in the existing tenant", func(ctx context.Context) (bool, string, error) {
		ok, err := hasBinding(ctx, existing, h.Path)
		return ok, "", err
	})
	sp := env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionAPIReady, true, onboardingv1alpha1.ReasonBound, time.Minute)
	if sp.Status.Tenants.Bound < 1 || sp.Status.IdentityHash == "" || len(sp.Status.Resources) != 1 || sp.Status.Resources[0] != "postgresservers.hosting.msp.dev" {
		t.Errorf("status after APIReady: tenants %+v, identity %q, resources %v", sp.Status.Tenants, sp.Status.IdentityHash, sp.Status.Resources)
	}
	if ok, err := hasBinding(ctx, optedOut, h.Path); err != nil || ok {
		t.Errorf("the tenant that opted out has a binding of %s (err %v)", h.Path, err)
	}
	// A new tenant gets it from the tenant WorkspaceType's default bindings.
	fresh := env.NewTenant(t)
	consent(t, env, fresh) // as the operator does for every tenant it creates (deploy/tenant)
	framework.Eventually(t, time.Minute, "hosting.msp.dev to be bound in a new tenant", func(ctx context.Context) (bool, string, error) {
		ok, err := hasBinding(ctx, fresh, h.Path)
		return ok, "", err
	})

	// Run: no coordinator yet, then no runtime, then Ready.
	env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionRunReady, false, onboardingv1alpha1.ReasonNoCoordinator, time.Minute)
	// A replica that shares the workspaces (--shard-workspaces) counts as running, as a
	// leader does (the conformance kit's providers run with --leader-elect).
	h.StartCoordinatorWith(t, launch.Coordinator{Extra: []string{"--shard-workspaces", "--replica-id=onb-1"}})
	sp = env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionRunReady, false, onboardingv1alpha1.ReasonNoRuntime, time.Minute)
	if sp.Status.Run.Coordinator != "onb-1" {
		t.Errorf("status.run.coordinator is %q, want the replica onb-1", sp.Status.Run.Coordinator)
	}
	h.StartProviderServicelet(t, "postgresserver-servicelet", framework.ServiceletSpec{Runtime: "onb-de", Region: "eu-de", Country: "DE",
		Args: []string{"--servers-dir", t.TempDir()}})
	sp = env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionReady, true, onboardingv1alpha1.ReasonReady, 2*time.Minute)
	if sp.Status.Run.ReadyRuntimes != 1 {
		t.Errorf("status.run.readyRuntimes = %d, want 1", sp.Status.Run.ReadyRuntimes)
	}
	operator := env.In(onboarding.PlatformWorkspace).Kubeconfig(t)
	out := env.MustKubectl(t, operator, "", "get", "serviceproviders", name)
	for _, col := range []string{"EXPORT", "TENANTS", "RUNTIMES", "API", "RUN", "READY", "hosting.msp.dev", "True"} {
		if !strings.Contains(out, col) {
			t.Errorf("kubectl get serviceproviders lacks %q:\n%s", col, out)
		}
	}

	// A tenant orders a PostgreSQL server.
	tk := fresh.Kubeconfig(t)
	env.MustKubectl(t, tk, "apiVersion: hosting.msp.dev/v1alpha1\nkind: PostgresServer\nmetadata:\n  name: srv\n  namespace: default\nspec:\n  placement:\n    countries: [DE]\n", "apply", "-f", "-")
	env.MustKubectl(t, tk, "", "wait", "--for=condition=Ready", "postgresserver/srv", "-n", "default", "--timeout=2m")

	// Delete is held while the server exists, and says where it is.
	env.MustKubectl(t, operator, "", "delete", "serviceprovider", name, "--wait=false")
	sp = env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionReady, false, onboardingv1alpha1.ReasonDeletionHeld, time.Minute)
	msg := readyMessage(sp)
	if !strings.Contains(msg, "1 capability remains") || !strings.Contains(msg, "1 PostgresServer in "+fresh.Path) || !strings.Contains(msg, "Orphan") {
		t.Errorf("the held deletion's message does not say what remains and where: %q", msg)
	}
	if ok, err := hasBinding(ctx, existing, h.Path); err != nil || !ok {
		t.Errorf("a held deletion removed the existing tenant's binding (err %v)", err)
	}

	// Orphan: the ServiceProvider goes; the capability, its server, the binding and the
	// workspace stay.
	env.MustKubectl(t, operator, "", "patch", "serviceprovider", name, "--type=merge", "-p", `{"spec":{"deletionPolicy":"Orphan"}}`)
	framework.Eventually(t, time.Minute, "the orphaned ServiceProvider to be gone", func(ctx context.Context) (bool, string, error) {
		_, err := onboarding.Get(ctx, env.Config, name)
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
	time.Sleep(3 * time.Second) // a resync of msp-providers, had it kept anything to do
	srv, err := fresh.Dynamic.Resource(pgServerGVR).Namespace("default").Get(ctx, "srv", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the orphaned provider's capability is gone: %v", err)
	}
	if !conditionIs(srv, "Ready", "True") {
		t.Errorf("the orphaned capability is no longer Ready: %v", srv.Object["status"])
	}
	env.MustKubectl(t, tk, "", "get", "secret", "-n", "default", "-l", "platform.msp.dev/runtime=onb-de")
	if ok, err := hasBinding(ctx, fresh, h.Path); err != nil || !ok {
		t.Errorf("Orphan removed the tenant's binding (err %v)", err)
	}
	if _, err := env.In("root:providers").Dynamic.Resource(framework.WorkspaceGVR).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("Orphan removed the provider workspace: %v", err)
	}
	wt, err := env.In(onboarding.PlatformWorkspace).Dynamic.Resource(schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspacetypes"}).Get(ctx, "tenant", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprint(wt.Object["spec"]), h.Path) {
		t.Errorf("new tenants still get the orphaned provider by default: %v", wt.Object["spec"])
	}

	// Registering again takes the workspace back; with the server gone, Delete removes
	// the bindings and the workspace.
	env.MustKubectl(t, operator, fmt.Sprintf("apiVersion: onboarding.msp.dev/v1alpha1\nkind: ServiceProvider\nmetadata:\n  name: %s\nspec:\n  export: hosting.msp.dev\n  deletionPolicy: Delete\n  run:\n    frontDoor:\n      url: %s\n      caBundle: %s\n", name, sp.Spec.Run.FrontDoor.URL, b64(sp.Spec.Run.FrontDoor.CABundle)), "apply", "-f", "-")
	env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionReady, true, onboardingv1alpha1.ReasonReady, 2*time.Minute)
	env.MustKubectl(t, tk, "", "delete", "postgresserver", "srv", "-n", "default", "--timeout=2m")
	env.MustKubectl(t, operator, "", "delete", "serviceprovider", name, "--wait=false")
	framework.Eventually(t, 3*time.Minute, "the ServiceProvider and its workspace to be removed", func(ctx context.Context) (bool, string, error) {
		if sp, err := onboarding.Get(ctx, env.Config, name); err == nil {
			return false, readyMessage(sp), nil
		}
		_, err := env.In("root:providers").Dynamic.Resource(framework.WorkspaceGVR).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
	for _, ws := range []*framework.Workspace{existing, fresh} {
		if ok, err := hasBinding(ctx, ws, h.Path); err != nil || ok {
			t.Errorf("Delete left the binding of %s in %s (err %v)", h.Path, ws.Path, err)
		}
	}
}

func readyMessage(sp *onboardingv1alpha1.ServiceProvider) string {
	_, why := onboarding.ConditionOf(sp, onboardingv1alpha1.ConditionReady)
	return why
}

func conditionIs(u *unstructured.Unstructured, condType, status string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == condType {
			return m["status"] == status
		}
	}
	return false
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
