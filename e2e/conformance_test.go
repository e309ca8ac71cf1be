package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/conformance"
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
// server it ordered), and fails with a reason against a provider whose driver never
// reports Ready. Not parallel: it registers hosting.msp.dev, which the lifecycle test
// binds by default into new tenants.
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
}
