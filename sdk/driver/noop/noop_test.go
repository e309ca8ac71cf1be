package noop_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/sdk/driver"
	"github.com/msp-dev/msp/sdk/driver/drivertest"
	"github.com/msp-dev/msp/sdk/driver/noop"
)

func capability(kind, name string) *driver.Capability {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.msp.dev/v1alpha1")
	u.SetKind(kind)
	u.SetNamespace("default")
	u.SetName(name)
	u.SetGeneration(1)
	spec := platformv1alpha1.CapabilitySpec{RuntimeName: "rt"}
	_ = unstructured.SetNestedField(u.Object, spec.RuntimeName, "spec", "runtimeName")
	return &driver.Capability{Object: u, Spec: spec, Cluster: "c1"}
}

// TestDriverSuite runs drivertest. A no-op thing cannot drift and the driver refuses
// nothing, so the harness has neither Drift nor Invalid.
func TestDriverSuite(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Driver: &noop.Driver{},
		New:    func(_ *testing.T, name string) *driver.Capability { return capability("Thing", name) },
	})
}

// TestKindsApart: one Driver serving two kinds keeps their things apart.
func TestKindsApart(t *testing.T) {
	ctx := context.Background()
	var d noop.Driver
	a, b := capability("Thing", "x"), capability("Other", "x")
	if _, err := d.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if obs, _ := d.Observe(ctx, b); obs.Exists {
		t.Errorf("Observe of another kind's thing of the same name: Exists=true, want false")
	}
	if err := d.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	if obs, _ := d.Observe(ctx, a); !obs.Exists {
		t.Errorf("Observe after Delete of another kind's thing: Exists=false, want true")
	}
}
