package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
)

// connectionURI reads the uri from a database's connection Secret.
func connectionURI(t *testing.T, c client.Client, db *postgresv1alpha1.PostgresDatabase) string {
	t.Helper()
	if db.Status.ConnectionSecretRef == nil {
		t.Fatalf("%s has no connection Secret", db.Name)
	}
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: db.Namespace, Name: db.Status.ConnectionSecretRef.Name}, s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"host", "port", "database", "username", "password", "uri"} {
		if len(s.Data[k]) == 0 {
			t.Errorf("connection Secret %s lacks %q", s.Name, k)
		}
	}
	return string(s.Data["uri"])
}

// withDatabase swaps the database in a connection URI.
func withDatabase(uri, database string) string {
	i := strings.LastIndex(uri, "/")
	j := strings.Index(uri[i:], "?")
	if j < 0 {
		return uri[:i+1] + database
	}
	return uri[:i+1] + database + uri[i+j:]
}

func adminCount(t *testing.T, r *framework.PostgresRuntime, query, arg string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.Server.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, query, arg).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A database limited to France lands on the French server, and its credentials work;
// two tenants' databases are isolated from each other; Delete drops database and role,
// Orphan keeps them.
func TestPostgresDatabasesEndToEnd(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "pg-de", Region: "eu-de", Country: "DE", Capabilities: 5})
	fr := p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "pg-fr", Region: "eu-fr", Country: "FR", Capabilities: 5})
	acme, globex := p.NewTenant(t).Client(t), p.NewTenant(t).Client(t)
	ctx := context.Background()

	shop := database("shop", platformv1alpha1.Placement{Countries: []string{"FR"}})
	shop.Spec.Extensions = []postgresv1alpha1.Extension{"pgcrypto"}
	create(t, acme, shop)
	create(t, globex, database("ledger", platformv1alpha1.Placement{Countries: []string{"FR"}}))
	shop = waitCondition(t, acme, "shop", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	ledger := waitCondition(t, globex, "ledger", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	if shop.Spec.RuntimeName != "pg-fr" || ledger.Spec.RuntimeName != "pg-fr" {
		t.Fatalf("databases limited to FR run on %s and %s, want pg-fr", shop.Spec.RuntimeName, ledger.Spec.RuntimeName)
	}

	// The tenant's credentials connect, create a table, write and read back.
	shopURI := connectionURI(t, acme, shop)
	conn, err := pgx.Connect(ctx, shopURI)
	if err != nil {
		t.Fatalf("connecting with the Secret's uri: %v", err)
	}
	var item, hash string
	err = func() error {
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, item text)`); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `INSERT INTO orders VALUES (1, 'espresso')`); err != nil {
			return err
		}
		if err := conn.QueryRow(ctx, `SELECT item FROM orders WHERE id = 1`).Scan(&item); err != nil {
			return err
		}
		// pgcrypto, which the spec asked for, is installed.
		return conn.QueryRow(ctx, `SELECT crypt('secret', gen_salt('bf'))`).Scan(&hash)
	}()
	if err != nil || item != "espresso" || hash == "" {
		t.Fatalf("working with the database: item %q, hash %q, err %v", item, hash, err)
	}

	// One tenant's credentials cannot reach the other's database.
	ledgerURI := connectionURI(t, globex, ledger)
	for _, tc := range []struct{ uri, db string }{{ledgerURI, shop.Status.DatabaseName}, {shopURI, ledger.Status.DatabaseName}} {
		other, err := pgx.Connect(ctx, withDatabase(tc.uri, tc.db))
		if err == nil {
			other.Close(ctx)
			t.Errorf("credentials of another tenant connected to database %s", tc.db)
		} else if !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("connecting to %s with another tenant's credentials failed, but not for permission: %v", tc.db, err)
		}
	}

	// Delete drops the database and the role.
	if err := acme.Delete(ctx, shop); err != nil {
		t.Fatal(err)
	}
	waitGone(t, acme, shop, time.Minute)
	if n := adminCount(t, fr, `SELECT count(*) FROM pg_database WHERE datname = $1`, shop.Status.DatabaseName); n != 0 || shop.Status.DatabaseName == "" {
		t.Errorf("database %q still exists after Delete", shop.Status.DatabaseName)
	}
	if n := adminCount(t, fr, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, shop.Status.Owner); n != 0 || shop.Status.Owner == "" {
		t.Errorf("role %q still exists after Delete", shop.Status.Owner)
	}

	// Orphan keeps them.
	if err := globex.Get(ctx, client.ObjectKeyFromObject(ledger), ledger); err != nil {
		t.Fatal(err)
	}
	ledger.Spec.DeletionPolicy = platformv1alpha1.DeletionPolicyOrphan
	if err := globex.Update(ctx, ledger); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, globex, "ledger", platformv1alpha1.ConditionSynced, metav1.ConditionTrue, time.Minute)
	if err := globex.Delete(ctx, ledger); err != nil {
		t.Fatal(err)
	}
	waitGone(t, globex, ledger, time.Minute)
	if n := adminCount(t, fr, `SELECT count(*) FROM pg_database WHERE datname = $1`, ledger.Status.DatabaseName); n != 1 {
		t.Errorf("an orphaned database was dropped")
	}
	if n := adminCount(t, fr, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, ledger.Status.Owner); n != 1 {
		t.Errorf("an orphaned database's role was dropped")
	}
}

// A full runtime leaves the next database pending with the capacity reason; a stopped
// PostgreSQL server turns its databases Synced=False with a readable reason, and they
// recover by themselves when it is back.
func TestPostgresRuntimeFullAndOutage(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	rt := p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "pg-small", Region: "eu-de", Country: "DE", Capabilities: 1,
		Args: []string{"--resync-interval=3s"}})
	c := p.NewTenant(t).Client(t)

	create(t, c, database("first", platformv1alpha1.Placement{}))
	waitCondition(t, c, "first", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	create(t, c, database("second", platformv1alpha1.Placement{}))
	pending := waitCondition(t, c, "second", platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, time.Minute)
	if cond := meta.FindStatusCondition(pending.Status.Conditions, platformv1alpha1.ConditionScheduled); cond.Message != "0/1 runtimes fit: 1 insufficient capabilities" {
		t.Errorf("second waits with %q", cond.Message)
	}

	rt.StopServer(t)
	down := waitCondition(t, c, "first", platformv1alpha1.ConditionSynced, metav1.ConditionFalse, time.Minute)
	cond := meta.FindStatusCondition(down.Status.Conditions, platformv1alpha1.ConditionSynced)
	if !strings.Contains(cond.Message, "unreachable") || strings.Contains(cond.Message, "127.0.0.1") {
		t.Errorf("Synced=False says %q; want a readable reason without the provider's addresses", cond.Message)
	}
	t.Logf("while the server is down: Synced=False %s: %s", cond.Reason, cond.Message)

	rt.StartServerAgain(t)
	waitCondition(t, c, "first", platformv1alpha1.ConditionSynced, metav1.ConditionTrue, 2*time.Minute)
	waitCondition(t, c, "first", platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)
}
