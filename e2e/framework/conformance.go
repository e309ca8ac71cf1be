package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
)

// PassesShippedConformance runs the msp-conformance binary against the registered
// provider name with what the provider ships in dir (serviceprovider.yaml, samples/,
// check.sh), as its team would: the shipped ServiceProvider with this run's name, front
// door and the policies of spec. env adds variables for the check. It fails the test
// unless every step passes, the table shows ASSESS 3 and the deletion and adoption
// steps, and the JUnit XML reports no failure.
func (e *Env) PassesShippedConformance(t testing.TB, name, dir string, spec onboardingv1alpha1.ServiceProviderSpec, env ...string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "serviceprovider.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	shipped := &onboardingv1alpha1.ServiceProvider{}
	if err := yaml.UnmarshalStrict(raw, shipped); err != nil {
		t.Fatal(err)
	}
	shipped.Name = name
	shipped.Spec.Run.FrontDoor = e.ServiceProvider(t, name).Spec.Run.FrontDoor
	shipped.Spec.Tenants, shipped.Spec.DeletionPolicy = spec.Tenants, spec.DeletionPolicy
	out, err := yaml.Marshal(shipped)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	spFile, junit := filepath.Join(tmp, "serviceprovider.yaml"), filepath.Join(tmp, "junit.xml")
	if err := os.WriteFile(spFile, out, 0o644); err != nil {
		t.Fatal(err)
	}
	check, _ := filepath.Abs(filepath.Join(dir, "check.sh"))
	samples, _ := filepath.Abs(filepath.Join(dir, "samples"))
	cmd := exec.Command(filepath.Join(e.Bin, "msp-conformance"), "--kubeconfig", e.Kubeconfig(), "--kubectl", e.KubectlPath(),
		"--service-provider", spFile, "--samples", samples, "--check", "sh "+check, "--junit", junit, "--timeout", "2m")
	cmd.Env = append(os.Environ(), env...)
	table, err := cmd.CombinedOutput()
	t.Logf("msp-conformance:\n%s", table)
	if err != nil {
		t.Fatalf("msp-conformance failed against provider %s: %v", name, err)
	}
	for _, want := range []string{"PASS: provider " + name, "ASSESS 3", "deletionPolicy Orphan leaves its thing in place", "ObserveOnly adopts the orphaned thing"} {
		if !strings.Contains(string(table), want) {
			t.Errorf("the table does not show %q", want)
		}
	}
	if raw, _ := os.ReadFile(junit); !strings.Contains(string(raw), `failures="0"`) {
		t.Errorf("JUnit XML does not report a pass:\n%s", raw)
	}
}
