package testdriver

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/sdk/driver"
	"github.com/msp-dev/msp/sdk/driver/drivertest"
)

// TestDriverSuite runs drivertest on a state folder, with a provision delay so that the
// suite waits for Ready. Drift rewinds the generation in the thing's file, which Observe
// compares with the document's; Invalid asks Create to fail through AnnotationFail.
func TestDriverSuite(t *testing.T) {
	dir := t.TempDir()
	d, err := New(Options{Dir: dir, Runtime: "rt", ProvisionDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	doc := func(name string, annotations map[string]string) *driver.Capability {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("postgres.msp.dev/v1alpha1")
		u.SetKind("PostgresDatabase")
		u.SetNamespace("default")
		u.SetName(name)
		u.SetGeneration(1)
		u.SetAnnotations(annotations)
		spec := platformv1alpha1.CapabilitySpec{RuntimeName: "rt"}
		if err := unstructured.SetNestedField(u.Object, spec.RuntimeName, "spec", "runtimeName"); err != nil {
			t.Fatal(err)
		}
		return &driver.Capability{Object: u, Spec: spec, Cluster: "c1"}
	}
	drivertest.Run(t, drivertest.Harness{
		Driver: d,
		New:    func(_ *testing.T, name string) *driver.Capability { return doc(name, nil) },
		Drift: func(t *testing.T, c *driver.Capability) {
			t.Helper()
			raw, err := os.ReadFile(d.path(c))
			if err != nil {
				t.Fatal(err)
			}
			var th thing
			if err := json.Unmarshal(raw, &th); err != nil {
				t.Fatal(err)
			}
			th.Generation = c.Object.GetGeneration() - 1
			if raw, err = json.Marshal(th); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(d.path(c), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Invalid: func(*testing.T) *driver.Capability {
			return doc("dt-invalid", map[string]string{AnnotationFail: "the runtime has no space left for this capability"})
		},
		Internals: []string{dir},
	})
}
