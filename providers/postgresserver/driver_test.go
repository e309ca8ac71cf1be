package postgresserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/sdk/driver"
)

// TestObserveKeepsConnectionDetails: Observe returns all of a running server's connection
// details, the superuser's uri included, so that the servicelet keeps them in the
// Secret and writes them again when the tenant lost or edited them; it never reports
// the credentials invalid.
func TestObserveKeepsConnectionDetails(t *testing.T) {
	if _, err := pgserver.FindBinDir(); errors.Is(err, pgserver.ErrNotInstalled) {
		t.Fatalf("this test needs a PostgreSQL server installed: run hack/install-postgres.sh (%v)", err)
	}
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("hosting.msp.dev/v1alpha1")
	obj.SetKind("PostgresServer")
	obj.SetNamespace("default")
	obj.SetName("pg-1")
	c := &driver.Capability{Object: obj, Cluster: "provider"}

	created, err := d.Create(ctx, c)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, secret := range []driver.ConnectionDetails{
		nil, // the Secret was deleted
		{"uri": []byte("postgres://postgres:edited@127.0.0.1:1/postgres"), "host": []byte("elsewhere")},
		created,
	} {
		c.ConnectionDetails = secret
		obs, err := d.Observe(ctx, c)
		if err != nil {
			t.Fatalf("Observe: %v", err)
		}
		if !obs.Exists || !obs.Ready || obs.CredentialsInvalid != "" {
			t.Errorf("observed %+v, want a ready server with valid credentials", obs)
		}
		for k, v := range created {
			if string(obs.ConnectionDetails[k]) != string(v) {
				t.Errorf("Observe %s = %q, want %q (as Create said)", k, obs.ConnectionDetails[k], v)
			}
		}
	}
	conn, err := pgx.Connect(ctx, string(created["uri"]))
	if err != nil {
		t.Fatalf("connecting with the uri: %v", err)
	}
	_ = conn.Close(ctx)
	if err := d.Delete(ctx, c); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if obs, err := d.Observe(ctx, c); err != nil || obs.Exists {
		t.Errorf("after Delete: %+v, %v", obs, err)
	}
}
