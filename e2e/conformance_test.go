package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/conformance"
	"github.com/msp-dev/msp/pkg/onboarding"
	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/sdk/launch"
)

// registered reads back a ServiceProvider as a provider team keeps it: its spec.
func registered(t *testing.T, env *framework.Env, name string) *onboardingv1alpha1.ServiceProvider {
	t.Helper()
	got := env.ServiceProvider(t, name)
	sp := &onboardingv1alpha1.ServiceProvider{Spec: got.Spec}
	sp.Name = name
	return sp
}

func pgServerSample(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hosting.msp.dev/v1alpha1", "kind": "PostgresServer",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     map[string]any{"placement": map[string]any{"countries": []any{"DE"}}},
	}}
}

// The conformance kit passes against the hosting provider (ASSESS 3 connects to the
// server it ordered) and, through the msp-conformance binary with the provider's own
// samples and psql check, against the postgres provider; it fails with a reason against
// a provider whose driver never reports Ready and one whose kind lacks the contract.
// Not parallel: it registers hosting.msp.dev, which the lifecycle test binds by default
// into new tenants, and makes the environment's postgres provider OptIn for a while.
func TestConformance(t *testing.T) {
	env := framework.Current(t)
	spec := onboardingv1alpha1.ServiceProviderSpec{
		Tenants:        onboardingv1alpha1.TenantsSpec{Binding: onboardingv1alpha1.BindingOptIn},
		DeletionPolicy: onboardingv1alpha1.DeletionDelete,
	}
	junit := filepath.Join(t.TempDir(), "junit.xml")

	t.Run("hosting passes", func(t *testing.T) {
		name := "conf-hosting-" + fmt.Sprintf("%x", time.Now().UnixNano()&0xffff)
		h := env.RegisterProvider(t, framework.Registration{Name: name, Group: "hosting.msp.dev", Spec: spec})
		h.StartCoordinatorWith(t, launch.Coordinator{LeaderElect: true})
		h.StartProviderServicelet(t, "postgresserver-servicelet", framework.ServiceletSpec{Runtime: "conf-de", Region: "eu-de", Country: "DE",
			Args: []string{"--servers-dir", t.TempDir()}})
		rep := conformance.Run(conformance.Options{
			Config: env.Config, Kubectl: env.KubectlPath(), ServiceProvider: registered(t, env, name),
			Samples: []*unstructured.Unstructured{pgServerSample("conformance")},
			Check: func(ctx context.Context, secret map[string][]byte) error {
				conn, err := pgx.Connect(ctx, string(secret["uri"]))
				if err != nil {
					return fmt.Errorf("cannot connect with the Secret's uri: %w", err)
				}
				defer conn.Close(ctx)
				var one int
				return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			},
			Timeout: 2 * time.Minute,
		})
		t.Log("\n" + rep.Table())
		if !rep.Passed() {
			t.Fatalf("conformance failed against the hosting provider")
		}
		names := map[string]bool{}
		for _, s := range rep.Steps {
			names[s.Phase] = true
			if s.Skipped != "" {
				t.Errorf("step %q skipped: %s", s.Name, s.Skipped)
			}
		}
		for _, phase := range []string{"SETUP", "ASSESS 1", "ASSESS 2", "ASSESS 3", "ASSESS 4", "TEARDOWN"} {
			if !names[phase] {
				t.Errorf("the report has no %s step", phase)
			}
		}
		if err := os.WriteFile(junit, rep.JUnit(), 0o644); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(junit)
		if !strings.Contains(string(raw), `failures="0"`) || !strings.Contains(string(raw), "<testcase") {
			t.Errorf("JUnit XML does not report a pass:\n%s", raw)
		}
	})

	t.Run("a driver that never reports Ready fails", func(t *testing.T) {
		name := "conf-broken-" + fmt.Sprintf("%x", time.Now().UnixNano()&0xffff)
		b := env.RegisterProvider(t, framework.Registration{Name: name, Group: "hosting.msp.dev", Spec: spec})
		b.StartCoordinatorWith(t, launch.Coordinator{LeaderElect: true})
		b.StartServicelet(t, framework.ServiceletSpec{Runtime: "never-de", Region: "eu-de", Country: "DE", Args: []string{"--provision-delay=1h"}})
		rep := conformance.Run(conformance.Options{
			Config: env.Config, Kubectl: env.KubectlPath(), ServiceProvider: registered(t, env, name),
			Samples: []*unstructured.Unstructured{pgServerSample("never")},
			Timeout: 30 * time.Second,
		})
		t.Log("\n" + rep.Table())
		if rep.Passed() {
			t.Fatalf("conformance passed against a provider whose driver never reports Ready")
		}
		var failed *conformance.Step
		for i := range rep.Steps {
			if rep.Steps[i].Err != nil {
				failed = &rep.Steps[i]
				break
			}
		}
		if failed == nil || !strings.Contains(failed.Name, "Scheduled, Ready and Synced") || !strings.Contains(failed.Err.Error(), "Ready=False") {
			t.Errorf("the first failure is not the capability that never became Ready: %+v", failed)
		}
		if !strings.Contains(rep.Table(), "FAIL: provider "+name) || !strings.Contains(string(rep.JUnit()), "<failure") {
			t.Errorf("the table or the JUnit XML does not say FAIL:\n%s", rep.Table())
		}
	})

	t.Run("a kind without spec.runtimeName fails", func(t *testing.T) {
		name := "conf-nokind-" + fmt.Sprintf("%x", time.Now().UnixNano()&0xffff)
		objs, err := bootstrap.ExportObjects(nil, "hosting.msp.dev")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() != "APIResourceSchema" {
				continue
			}
			versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
			for _, v := range versions {
				// Without runtimeName, and without the contract's rules that name it.
				unstructured.RemoveNestedField(v.(map[string]any), "schema", "properties", "spec", "properties", "runtimeName")
				unstructured.RemoveNestedField(v.(map[string]any), "schema", "properties", "spec", "x-kubernetes-validations")
			}
			if err := unstructured.SetNestedSlice(o.Object, versions, "spec", "versions"); err != nil {
				t.Fatal(err)
			}
		}
		sp := &onboardingv1alpha1.ServiceProvider{Spec: spec}
		sp.Name, sp.Spec.Export = name, "hosting.msp.dev"
		operator := env.In(onboarding.PlatformWorkspace).Kubeconfig(t)
		t.Cleanup(func() {
			env.Kubectl(t, operator, "", "delete", "serviceprovider", name, "--ignore-not-found", "--wait=false")
		})
		rep := conformance.Run(conformance.Options{
			Config: env.Config, Kubectl: env.KubectlPath(), ServiceProvider: sp, Export: objs,
			Samples: []*unstructured.Unstructured{pgServerSample("nokind")}, Timeout: 30 * time.Second, KeepProvider: true,
		})
		t.Log("\n" + rep.Table())
		failed := firstFailure(rep)
		if rep.Passed() || failed == nil || failed.Name != "every kind of the export embeds the capability contract" ||
			!strings.Contains(failed.Err.Error(), "PostgresServer lacks v1alpha1: spec.runtimeName") {
			t.Fatalf("the first failure is not the missing spec.runtimeName: %+v", failed)
		}
		// The platform says so too, where the provider team looks.
		framework.Eventually(t, time.Minute, "APIReady=False (ExportInvalid) naming spec.runtimeName", func(ctx context.Context) (bool, string, error) {
			got := env.ServiceProvider(t, name)
			c := findCondition(got.Status.Conditions, onboardingv1alpha1.ConditionAPIReady)
			if c == nil {
				return false, "no APIReady yet", nil
			}
			return c.Reason == onboardingv1alpha1.ReasonExportInvalid && strings.Contains(c.Message, "spec.runtimeName"), c.Reason + ": " + c.Message, nil
		})
	})

	t.Run("postgres passes with msp-conformance and its own samples and psql check", func(t *testing.T) {
		// The environment's postgres provider binds postgres.msp.dev into every new tenant;
		// the kit refuses to run beside it (a workspace binds one export per API group).
		name := "conf-postgres-" + fmt.Sprintf("%x", time.Now().UnixNano()&0xffff)
		p := env.RegisterProvider(t, framework.Registration{Name: name, Group: "postgres.msp.dev", Spec: spec})
		blocked := conformance.Run(conformance.Options{Config: env.Config, Kubectl: env.KubectlPath(), ServiceProvider: registered(t, env, name),
			Samples: []*unstructured.Unstructured{}, Timeout: 10 * time.Second, KeepProvider: true})
		if f := firstFailure(blocked); f == nil || f.Phase != "SETUP" || !strings.Contains(f.Err.Error(), "the ServiceProvider postgres binds postgres.msp.dev into every new tenant by default") {
			t.Fatalf("beside a Default provider of the same group, the kit does not stop at SETUP saying so: %+v\n%s", f, blocked.Table())
		}
		setTenantBinding(t, env, "postgres", onboardingv1alpha1.BindingOptIn)
		t.Cleanup(func() { setTenantBinding(t, env, "postgres", onboardingv1alpha1.BindingDefault) })

		p.StartCoordinatorWith(t, launch.Coordinator{LeaderElect: true})
		p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "conf-pg-de", Region: "eu-de", Country: "DE", Capabilities: 10})
		// Run is Ready before any tenant binds the export (OptIn, nobody opted in): a
		// servicelet with nothing to serve still reports its runtime usable.
		sp := env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionRunReady, true, "", 2*time.Minute)
		if sp.Status.Tenants.Bound != 0 {
			t.Errorf("%d tenants bind %s before the conformance run, want none", sp.Status.Tenants.Bound, name)
		}

		// The provider's shipped ServiceProvider, samples and psql check.
		pgBin, err := pgserver.FindBinDir()
		if err != nil {
			t.Fatal(err)
		}
		env.PassesShippedConformance(t, name, "../providers/postgres/conformance", spec, "PSQL="+filepath.Join(pgBin, "psql"))
	})
}

func firstFailure(rep conformance.Report) *conformance.Step {
	for i := range rep.Steps {
		if rep.Steps[i].Err != nil {
			return &rep.Steps[i]
		}
	}
	return nil
}

func findCondition(conds []metav1.Condition, condType string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == condType {
			return &conds[i]
		}
	}
	return nil
}

var gvrWorkspaceType = schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspacetypes"}

// setTenantBinding patches a ServiceProvider's spec.tenants.binding and waits until the
// tenant WorkspaceType's default bindings follow.
func setTenantBinding(t *testing.T, env *framework.Env, name string, binding onboardingv1alpha1.TenantBinding) {
	t.Helper()
	operator := env.In(onboarding.PlatformWorkspace).Kubeconfig(t)
	env.MustKubectl(t, operator, "", "patch", "serviceprovider", name, "--type", "merge", "-p", fmt.Sprintf(`{"spec":{"tenants":{"binding":%q}}}`, binding))
	want := binding == onboardingv1alpha1.BindingDefault
	framework.Eventually(t, time.Minute, fmt.Sprintf("the tenant WorkspaceType to follow %s's binding %s", name, binding), func(ctx context.Context) (bool, string, error) {
		wt, err := env.In(onboarding.PlatformWorkspace).Dynamic.Resource(gvrWorkspaceType).Get(ctx, onboarding.TenantType, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		defaults, _, _ := unstructured.NestedSlice(wt.Object, "spec", "defaultAPIBindings")
		var paths []string
		for _, d := range defaults {
			path, _ := d.(map[string]any)["path"].(string)
			paths = append(paths, path)
		}
		return slices.Contains(paths, onboarding.ProviderWorkspace(name)) == want, fmt.Sprint(paths), nil
	})
}
