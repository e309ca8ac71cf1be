package postgresserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/sdk/driver"
	"github.com/msp-dev/msp/sdk/driver/drivertest"
)

// TestDriverSuite runs drivertest, each capability a PostgreSQL server of its own. Drift
// stops the server behind the driver's back (as a crash would): it adopts the running
// instance through pgserver and shuts it down, leaving the driver's own handle as it
// was; Observe must see it stopped and Update start it again. The driver refuses
// nothing, so the harness has no Invalid.
func TestDriverSuite(t *testing.T) {
	if _, err := pgserver.FindBinDir(); errors.Is(err, pgserver.ErrNotInstalled) {
		t.Fatalf("this test needs a PostgreSQL server installed: run hack/install-postgres.sh (%v)", err)
	}
	dir := t.TempDir()
	d, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	drivertest.Run(t, drivertest.Harness{
		Driver: d,
		New: func(t *testing.T, name string) *driver.Capability {
			t.Helper()
			obj := &unstructured.Unstructured{}
			obj.SetAPIVersion("hosting.msp.dev/v1alpha1")
			obj.SetKind("PostgresServer")
			obj.SetNamespace("default")
			obj.SetName(name)
			obj.SetGeneration(1)
			spec := platformv1alpha1.CapabilitySpec{RuntimeName: "host"}
			if err := unstructured.SetNestedField(obj.Object, spec.RuntimeName, "spec", "runtimeName"); err != nil {
				t.Fatal(err)
			}
			return &driver.Capability{Object: obj, Spec: spec, Cluster: "provider"}
		},
		Drift: func(t *testing.T, c *driver.Capability) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv, err := pgserver.Start(ctx, pgserver.Options{Dir: d.serverDir(c)})
			if err != nil {
				t.Fatalf("adopting the server: %v", err)
			}
			if err := srv.Stop(); err != nil {
				t.Fatalf("stopping the server: %v", err)
			}
		},
		Internals: []string{dir},
	})
}
