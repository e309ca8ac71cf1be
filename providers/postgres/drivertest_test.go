package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/pkg/pgserver/pgservertest"
	"github.com/msp-dev/msp/providers/postgres"
	"github.com/msp-dev/msp/sdk/driver"
	"github.com/msp-dev/msp/sdk/driver/drivertest"
)

// TestDriverSuite runs drivertest on a PostgreSQL server of its own. Every capability
// asks for the extension pgcrypto; Drift drops it behind the driver's back, which
// Observe reports as drift and Update repairs. Invalid names a database that exists on
// the server and belongs to no capability, which the driver refuses to take over.
func TestDriverSuite(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d, err := postgres.NewDriver(context.Background(), postgres.DriverOptions{AdminURL: srv.AdminURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	admin := pgservertest.Connect(t, srv.AdminURL())
	u, err := url.Parse(srv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	adminPassword, _ := u.User.Password()

	const cluster = "drivertest"
	doc := func(t *testing.T, name string, spec postgresv1alpha1.PostgresDatabaseSpec) *driver.Capability {
		t.Helper()
		spec.RuntimeName = "rt"
		db := &postgresv1alpha1.PostgresDatabase{
			TypeMeta:   metav1.TypeMeta{APIVersion: postgresv1alpha1.SchemeGroupVersion.String(), Kind: "PostgresDatabase"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Generation: 1},
			Spec:       spec,
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(db)
		if err != nil {
			t.Fatal(err)
		}
		return &driver.Capability{Object: &unstructured.Unstructured{Object: obj}, Spec: spec.CapabilitySpec, Cluster: cluster}
	}
	withPgcrypto := postgresv1alpha1.PostgresDatabaseSpec{Extensions: []postgresv1alpha1.Extension{"pgcrypto"}}

	drivertest.Run(t, drivertest.Harness{
		Driver: d,
		New:    func(t *testing.T, name string) *driver.Capability { return doc(t, name, withPgcrypto) },
		Drift: func(t *testing.T, c *driver.Capability) {
			t.Helper()
			var db postgresv1alpha1.PostgresDatabase
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.Object.Object, &db); err != nil {
				t.Fatal(err)
			}
			database, _ := postgres.Names(c.Cluster, &db)
			dbURL := *u
			dbURL.Path = "/" + database
			conn := pgservertest.Connect(t, dbURL.String())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, "DROP EXTENSION pgcrypto"); err != nil {
				t.Fatalf("dropping pgcrypto from %s: %v", database, err)
			}
		},
		// Invalid names a database that is taken, which admission cannot catch: Create
		// refuses it (Observe reports it missing, with advice) and Delete leaves the
		// other's database alone. (Reserved names are refused at admission; Delete of
		// one is a no-op, see TestDeleteOfARefusedNameSucceeds.)
		Invalid: func(t *testing.T) *driver.Capability {
			t.Helper()
			ctx := context.Background()
			if _, err := admin.Exec(ctx, "CREATE DATABASE dt_taken"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				var n int
				if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = 'dt_taken'").Scan(&n); err != nil || n != 1 {
					t.Errorf("the database dt_taken, which is no capability's: %d left after the suite, %v; want it kept", n, err)
				}
			})
			return doc(t, "dt-invalid", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "dt_taken"})
		},
		Internals: []string{adminPassword, srv.DataDir()},
	})
}
