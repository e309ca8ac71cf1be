package testdriver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/sdk/driver"
)

func capability(name string, generation int64, annotations map[string]string) *driver.Capability {
	u := &unstructured.Unstructured{}
	u.SetKind("PostgresDatabase")
	u.SetNamespace("default")
	u.SetName(name)
	u.SetGeneration(generation)
	u.SetAnnotations(annotations)
	return &driver.Capability{Object: u, Cluster: "c1"}
}

func TestDriverLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	d, err := New(Options{Dir: dir, Runtime: "rt", ProvisionDelay: 5 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c := capability("db", 1, nil)

	obs, err := d.Observe(ctx, c)
	if err != nil || obs.Exists {
		t.Fatalf("before Create: exists=%v err=%v", obs.Exists, err)
	}
	details, err := d.Create(ctx, c)
	if err != nil || len(details["token"]) == 0 {
		t.Fatalf("Create: details %v, err %v", details, err)
	}
	obs, _ = d.Observe(ctx, c)
	if !obs.Exists || obs.Ready || !obs.UpToDate {
		t.Fatalf("while provisioning: %+v", obs)
	}
	now = now.Add(5 * time.Second)
	obs, _ = d.Observe(ctx, c)
	if !obs.Ready || string(obs.ConnectionDetails["endpoint"]) != "test://rt/default/db" {
		t.Fatalf("after the delay: %+v", obs)
	}

	// A new generation is drift until Update.
	c2 := capability("db", 2, nil)
	if obs, _ = d.Observe(ctx, c2); obs.UpToDate {
		t.Fatalf("generation 2 reported up to date before Update")
	}
	if err := d.Update(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if obs, _ = d.Observe(ctx, c2); !obs.UpToDate {
		t.Fatalf("generation 2 not up to date after Update")
	}

	if err := d.Delete(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, c2); err != nil {
		t.Fatalf("a second Delete failed: %v", err)
	}
	if obs, _ = d.Observe(ctx, c2); obs.Exists {
		t.Fatalf("exists after Delete")
	}
	if n := Calls(dir, "creates.log", "default", "db"); n != 1 {
		t.Errorf("creates.log counts %d, want 1", n)
	}
	if n := Calls(dir, "deletes.log", "default", "db"); n != 2 {
		t.Errorf("deletes.log counts %d, want 2", n)
	}
}

func TestDriverFailsOnRequest(t *testing.T) {
	d, err := New(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Create(context.Background(), capability("db", 1, map[string]string{AnnotationFail: "no space left"}))
	var te *driver.TenantError
	if !errors.As(err, &te) || te.Message != "no space left" {
		t.Fatalf("Create error = %v, want the TenantError %q", err, "no space left")
	}
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	d, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Probe(context.Background()); err != nil {
		t.Fatalf("Probe on a healthy runtime: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "down"), []byte("disk failed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Probe(context.Background()); err == nil || err.Error() != "disk failed" {
		t.Fatalf("Probe with a down file = %v, want %q", err, "disk failed")
	}
}
