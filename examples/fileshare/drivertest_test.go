package fileshare

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/sdk/driver"
	"github.com/msp-dev/msp/sdk/driver/drivertest"
)

// TestDriverSuite runs msp's driver suite on the fileshare driver: Drift removes a file
// of the share behind the driver's back; Invalid names a file with a folder in it.
func TestDriverSuite(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDriver(dir, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	doc := func(name string, files map[string]any) *driver.Capability {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "fileshare.example.dev/v1alpha1", "kind": "FileShare",
			"metadata": map[string]any{"name": name, "namespace": "default", "generation": int64(1)},
			"spec":     map[string]any{"runtimeName": "rt", "files": files},
		}}
		return &driver.Capability{Object: u, Spec: platformv1alpha1.CapabilitySpec{RuntimeName: "rt"}, Cluster: "c1"}
	}
	drivertest.Run(t, drivertest.Harness{
		Driver: d,
		New: func(_ *testing.T, name string) *driver.Capability {
			return doc(name, map[string]any{"README": "hello"})
		},
		Drift: func(t *testing.T, c *driver.Capability) {
			t.Helper()
			if err := os.Remove(filepath.Join(d.folder(c), "README")); err != nil {
				t.Fatal(err)
			}
		},
		Invalid: func(*testing.T) *driver.Capability {
			return doc("bad", map[string]any{"../escape": "x"})
		},
		Internals: []string{dir},
	})
}
