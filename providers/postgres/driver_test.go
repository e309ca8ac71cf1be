package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/pkg/pgserver/pgservertest"
	"github.com/msp-dev/msp/pkg/ports"
	"github.com/msp-dev/msp/sdk/driver"
)

func TestNames(t *testing.T) {
	// The suffix is the first 8 hex characters of sha256(cluster/namespace/name).
	suffix := func(cluster, name string) string {
		sum := sha256.Sum256([]byte(cluster + "/default/" + name))
		return "_" + hex.EncodeToString(sum[:])[:8]
	}
	long := strings.Repeat("a", 50) + "-b"
	tests := []struct {
		name                  string
		objName, dbName, user string
		wantDB, wantOwner     string
	}{
		{name: "defaults", objName: "my-db", wantDB: "my_db" + suffix("c", "my-db"), wantOwner: "my_db" + suffix("c", "my-db") + "_owner"},
		{name: "no dashes", objName: "shop", wantDB: "shop" + suffix("c", "shop"), wantOwner: "shop" + suffix("c", "shop") + "_owner"},
		{name: "dots", objName: "a.b-c", wantDB: "a_b_c" + suffix("c", "a.b-c"), wantOwner: "a_b_c" + suffix("c", "a.b-c") + "_owner"},
		{name: "pg prefix", objName: "pg-stuff", wantDB: "db_pg_stuff" + suffix("c", "pg-stuff"), wantOwner: "db_pg_stuff" + suffix("c", "pg-stuff") + "_owner"},
		{name: "leading digit", objName: "1st", wantDB: "db_1st" + suffix("c", "1st"), wantOwner: "db_1st" + suffix("c", "1st") + "_owner"},
		{name: "cut to 40", objName: long, wantDB: strings.Repeat("a", 40) + suffix("c", long), wantOwner: strings.Repeat("a", 40) + suffix("c", long) + "_owner"},
		{name: "digit then cut", objName: "9" + long, wantDB: "db_9" + strings.Repeat("a", 36) + suffix("c", "9"+long), wantOwner: "db_9" + strings.Repeat("a", 36) + suffix("c", "9"+long) + "_owner"},
		{name: "database name set", objName: "my-db", dbName: "orders", wantDB: "orders", wantOwner: "orders_owner"},
		{name: "both set", objName: "my-db", dbName: "orders", user: "app", wantDB: "orders", wantOwner: "app"},
		{name: "owner set only", objName: "my-db", user: "app", wantDB: "my_db" + suffix("c", "my-db"), wantOwner: "app"},
	}
	pattern := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := &postgresv1alpha1.PostgresDatabase{
				ObjectMeta: metav1.ObjectMeta{Name: tt.objName, Namespace: "default"},
				Spec:       postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: tt.dbName, Owner: tt.user},
			}
			gotDB, gotOwner := Names("c", db)
			if gotDB != tt.wantDB || gotOwner != tt.wantOwner {
				t.Errorf("Names = %q, %q; want %q, %q", gotDB, gotOwner, tt.wantDB, tt.wantOwner)
			}
			if !pattern.MatchString(gotDB) || len(gotDB) > 49 || len(gotOwner) > maxIdentifier {
				t.Errorf("Names = %q, %q: not a name the API allows", gotDB, gotOwner)
			}
		})
	}
	// Another workspace's object of the same name gets another database.
	a, _ := Names("acme", &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "default"}})
	b, _ := Names("globex", &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "default"}})
	if a == b {
		t.Errorf("acme's and globex's orders are both %q", a)
	}
}

func TestTargetRejectsReservedAndLongNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec postgresv1alpha1.PostgresDatabaseSpec
		want string
	}{
		{name: "x", spec: postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "postgres"}, want: "create a new PostgresDatabase"},
		{name: "x", spec: postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "template1"}, want: "create a new PostgresDatabase"},
		{name: "x", spec: postgresv1alpha1.PostgresDatabaseSpec{Owner: "postgres"}, want: "spec.owner cannot change"},
		{name: "x", spec: postgresv1alpha1.PostgresDatabaseSpec{Owner: "public"}, want: "spec.owner cannot change"},
		// The default owner gets too long (admission requires an owner beyond 57).
		{name: "x", spec: postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: strings.Repeat("a", 60)}, want: "with a spec.owner"},
	} {
		_, err := targetOf(capability(t, "c", tc.name, tc.spec))
		var te *driver.TenantError
		if !errors.As(err, &te) || !strings.Contains(te.Message, tc.want) || strings.Contains(te.Message, "choose another") {
			t.Errorf("%s %+v: err = %v, want a TenantError saying %q", tc.name, tc.spec, err, tc.want)
		}
	}
	// Derived names are fine for names PostgreSQL reserves as they are.
	for _, name := range []string{"postgres", "template1", "pg-stuff", strings.Repeat("a", 253)} {
		if _, err := targetOf(capability(t, "c", name, postgresv1alpha1.PostgresDatabaseSpec{})); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// capability is a PostgresDatabase in namespace "default" of workspace cluster.
func capability(t *testing.T, cluster, name string, spec postgresv1alpha1.PostgresDatabaseSpec) *driver.Capability {
	t.Helper()
	db := &postgresv1alpha1.PostgresDatabase{
		TypeMeta:   metav1.TypeMeta{APIVersion: postgresv1alpha1.SchemeGroupVersion.String(), Kind: "PostgresDatabase"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       spec,
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(db)
	if err != nil {
		t.Fatal(err)
	}
	return &driver.Capability{Object: &unstructured.Unstructured{Object: obj}, Spec: spec.CapabilitySpec, Cluster: cluster}
}

func newDriver(t *testing.T, srv *pgserver.Server) *Driver {
	t.Helper()
	d, err := NewDriver(context.Background(), DriverOptions{AdminURL: srv.AdminURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func observe(t *testing.T, d *Driver, c *driver.Capability) driver.Observation {
	t.Helper()
	obs, err := d.Observe(context.Background(), c)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return obs
}

func create(t *testing.T, d *Driver, c *driver.Capability) driver.ConnectionDetails {
	t.Helper()
	details, err := d.Create(context.Background(), c)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, k := range []string{"host", "port", "database", "username", "password", "uri"} {
		if len(details[k]) == 0 {
			t.Errorf("Create returned no %q: %v", k, details)
		}
	}
	return details
}

func wantHealthy(t *testing.T, obs driver.Observation) {
	t.Helper()
	if !obs.Exists || !obs.UpToDate || !obs.Ready {
		t.Fatalf("observed %+v, want it to exist, be up to date and ready", obs)
	}
}

// exists says whether the server has a database and a role of these names.
func exists(t *testing.T, admin *pgx.Conn, database, role string) (bool, bool) {
	t.Helper()
	var db, r bool
	err := admin.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1), EXISTS (SELECT FROM pg_roles WHERE rolname = $2)`, database, role).Scan(&db, &r)
	if err != nil {
		t.Fatal(err)
	}
	return db, r
}

// withDatabase is a tenant's URI pointed at another database.
func withDatabase(t *testing.T, uri, database string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + database
	return u.String()
}

func TestDriver(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	admin := pgservertest.Connect(t, srv.AdminURL())
	ctx := context.Background()

	shop := capability(t, "tenant-a", "shop-a", postgresv1alpha1.PostgresDatabaseSpec{
		DatabaseName: "shop_a",
		Extensions:   []postgresv1alpha1.Extension{"pgcrypto"},
	})
	other := capability(t, "tenant-b", "shop-b", postgresv1alpha1.PostgresDatabaseSpec{})
	var shopDetails, otherDetails driver.ConnectionDetails

	t.Run("probe", func(t *testing.T) {
		if err := d.Probe(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("create and observe", func(t *testing.T) {
		if obs := observe(t, d, shop); obs.Exists {
			t.Fatalf("observed %+v before Create", obs)
		}
		shopDetails = create(t, d, shop)
		if got := string(shopDetails["database"]); got != "shop_a" {
			t.Errorf("database = %q, want shop_a", got)
		}
		if got := string(shopDetails["username"]); got != "shop_a_owner" {
			t.Errorf("username = %q, want shop_a_owner", got)
		}
		if got := string(shopDetails["host"]) + ":" + string(shopDetails["port"]); got != srv.Host()+":"+strconv.Itoa(srv.Port()) {
			t.Errorf("host:port = %s, want %s:%d", got, srv.Host(), srv.Port())
		}
		if len(shopDetails["password"]) != 32 {
			t.Errorf("password has %d characters, want 32", len(shopDetails["password"]))
		}

		obs := observe(t, d, shop)
		wantHealthy(t, obs)
		for _, k := range []string{"host", "port", "database", "username"} {
			if string(obs.ConnectionDetails[k]) != string(shopDetails[k]) {
				t.Errorf("Observe %s = %q, Create said %q", k, obs.ConnectionDetails[k], shopDetails[k])
			}
		}
		if _, ok := obs.ConnectionDetails["password"]; ok {
			t.Error("Observe tells a password")
		}
		storage := obs.Usage[corev1.ResourceStorage]
		if storage.Sign() <= 0 {
			t.Errorf("storage usage = %s, want more than 0", storage.String())
		}
		t.Logf("usage: storage %s", storage.String())
	})

	t.Run("the tenant uses its database", func(t *testing.T) {
		conn := pgservertest.Connect(t, string(shopDetails["uri"]))
		var greeting string
		for _, stmt := range []string{
			"CREATE TABLE greetings (id serial PRIMARY KEY, text text NOT NULL)",
			"INSERT INTO greetings (text) VALUES ('hello')",
		} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := conn.QueryRow(ctx, "SELECT text FROM greetings WHERE id = 1").Scan(&greeting); err != nil || greeting != "hello" {
			t.Fatalf("read %q, %v; want hello", greeting, err)
		}
		// The extension works for the tenant.
		var digest string
		if err := conn.QueryRow(ctx, "SELECT encode(digest('x', 'sha256'), 'hex')").Scan(&digest); err != nil {
			t.Fatalf("pgcrypto: %v", err)
		}
	})

	t.Run("another tenant cannot connect", func(t *testing.T) {
		otherDetails = create(t, d, other)
		wantHealthy(t, observe(t, d, other))
		for _, tc := range []struct{ uri, database string }{
			{string(otherDetails["uri"]), "shop_a"},
			{string(shopDetails["uri"]), string(otherDetails["database"])},
		} {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			conn, err := pgx.Connect(cctx, withDatabase(t, tc.uri, tc.database))
			cancel()
			if err == nil {
				_ = conn.Close(ctx)
				t.Fatalf("connected to %s with another tenant's credentials", tc.database)
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("connecting to %s: %v, want permission denied (42501)", tc.database, err)
			}
		}
	})

	t.Run("create is idempotent", func(t *testing.T) {
		again := create(t, d, shop)
		wantHealthy(t, observe(t, d, shop))
		// The old password is replaced (only Create ever knew it); the data stays.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(cctx, string(shopDetails["uri"])); err == nil {
			_ = conn.Close(ctx)
			t.Error("the old password still works")
		}
		shopDetails = again
		var n int
		if err := pgservertest.Connect(t, string(again["uri"])).QueryRow(ctx, "SELECT count(*) FROM greetings").Scan(&n); err != nil || n != 1 {
			t.Errorf("after the second Create: %d greetings, %v; want 1", n, err)
		}
	})

	t.Run("drift is seen and fixed", func(t *testing.T) {
		shopAdmin := pgservertest.Connect(t, withDatabase(t, srv.AdminURL(), "shop_a"))
		if _, err := shopAdmin.Exec(ctx, "DROP EXTENSION pgcrypto"); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, "ALTER DATABASE shop_a OWNER TO postgres"); err != nil {
			t.Fatal(err)
		}
		obs := observe(t, d, shop)
		if !obs.Exists || obs.UpToDate {
			t.Fatalf("observed %+v after the drift, want it to exist and not be up to date", obs)
		}
		for _, want := range []string{"extension pgcrypto is missing", "database owner is postgres, want shop_a_owner"} {
			if !strings.Contains(obs.Message, want) {
				t.Errorf("message %q does not say %q", obs.Message, want)
			}
		}
		if err := d.Update(ctx, shop); err != nil {
			t.Fatalf("Update: %v", err)
		}
		wantHealthy(t, observe(t, d, shop))
	})

	t.Run("a taken name is refused and left alone", func(t *testing.T) {
		// Another workspace asks for the same database and owner names.
		thief := capability(t, "tenant-c", "shop-a", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "shop_a"})
		obs := observe(t, d, thief)
		if obs.Exists || !strings.Contains(obs.Message, "belongs to something else") {
			t.Errorf("observed %+v for a name taken by another workspace", obs)
		}
		_, err := d.Create(ctx, thief)
		var te *driver.TenantError
		if !errors.As(err, &te) || !strings.Contains(te.Message, "spec.databaseName cannot change") {
			t.Errorf("Create: %v, want a TenantError that the name is taken", err)
		}
		if err := d.Update(ctx, thief); !errors.As(err, &te) {
			t.Errorf("Update: %v, want a TenantError", err)
		}
		if err := d.Delete(ctx, thief); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if db, role := exists(t, admin, "shop_a", "shop_a_owner"); !db || !role {
			t.Fatal("another workspace's Delete dropped shop_a")
		}
		wantHealthy(t, observe(t, d, shop))
		pgservertest.Connect(t, string(shopDetails["uri"])) // the password is unchanged

		// Observe-only does not adopt another capability's database (see
		// TestObserveOnlyAdoption).
		look := capability(t, "tenant-c", "shop-a", postgresv1alpha1.PostgresDatabaseSpec{
			CapabilitySpec: platformv1alpha1.CapabilitySpec{ManagementPolicy: platformv1alpha1.ManagementPolicyObserveOnly},
			DatabaseName:   "shop_a",
		})
		if obs := observe(t, d, look); obs.Exists || !strings.Contains(obs.Message, "belongs to another capability") {
			t.Errorf("observe-only: observed %+v, want it refused", obs)
		}
	})

	t.Run("a half-finished create is finished", func(t *testing.T) {
		half := capability(t, "tenant-a", "half", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "half"})
		create(t, d, half)
		if _, err := admin.Exec(ctx, "DROP DATABASE half"); err != nil {
			t.Fatal(err)
		}
		if obs := observe(t, d, half); obs.Exists {
			t.Fatalf("observed %+v with the role only, want it not to exist", obs)
		}
		details := create(t, d, half)
		wantHealthy(t, observe(t, d, half))
		pgservertest.Connect(t, string(details["uri"]))
	})

	t.Run("delete", func(t *testing.T) {
		// A session of the tenant does not keep its database alive.
		tenant := pgservertest.Connect(t, string(shopDetails["uri"]))
		if err := d.Delete(ctx, shop); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if db, role := exists(t, admin, "shop_a", "shop_a_owner"); db || role {
			t.Errorf("after Delete: database exists %v, role exists %v", db, role)
		}
		if err := tenant.Ping(ctx); err == nil {
			t.Error("the tenant's session survived Delete")
		}
		if err := d.Delete(ctx, shop); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		if obs := observe(t, d, shop); obs.Exists {
			t.Errorf("observed %+v after Delete", obs)
		}
		wantHealthy(t, observe(t, d, other)) // the other tenant is untouched
	})

	t.Run("server down", func(t *testing.T) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		err := d.Probe(ctx)
		if err == nil || !strings.Contains(err.Error(), "PostgreSQL at 127.0.0.1:"+strconv.Itoa(srv.Port())+" is not accepting connections") {
			t.Errorf("Probe: %v", err)
		}
		var te *driver.TenantError
		if _, err := d.Create(ctx, shop); !errors.As(err, &te) || te.Message != msgUnreachable {
			t.Errorf("Create: %v, want the TenantError %q", err, msgUnreachable)
		}
		if _, err := d.Observe(ctx, other); !errors.As(err, &te) {
			t.Errorf("Observe: %v, want a TenantError", err)
		}
		if err := d.Delete(ctx, other); !errors.As(err, &te) {
			t.Errorf("Delete: %v, want a TenantError", err)
		}
	})
}

// NewDriver does not need the server: the servicelet starts and reports the runtime
// not ready until it is reachable.
func TestNewDriverWithoutServer(t *testing.T) {
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDriver(context.Background(), DriverOptions{AdminURL: "postgres://postgres:pw@127.0.0.1:" + strconv.Itoa(port) + "/postgres", Host: "db.example.com", Port: 6432})
	if err != nil {
		t.Fatalf("NewDriver: %v", err)
	}
	defer d.Close()
	if err := d.Probe(context.Background()); err == nil {
		t.Error("Probe succeeded without a server")
	}
	details := d.details(&target{database: "x", owner: "y"})
	if string(details["host"]) != "db.example.com" || string(details["port"]) != "6432" {
		t.Errorf("details = %s:%s, want the configured db.example.com:6432", details["host"], details["port"])
	}
}

// TestDeleteOfARefusedNameSucceeds: a document whose names the driver refuses (a
// reserved database name, admitted without the schema's rules) was never created, so
// Delete has nothing to do and must succeed, or the servicelet's finalizer would keep
// the document for ever; the reserved database itself is untouched.
func TestDeleteOfARefusedNameSucceeds(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	c := capability(t, "c1", "reserved", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "postgres"})
	if _, err := d.Create(context.Background(), c); err == nil {
		t.Fatal("Create of a database named postgres succeeded, want a TenantError")
	}
	if err := d.Delete(context.Background(), c); err != nil {
		t.Fatalf("Delete: %v, want nil", err)
	}
	if err := d.Probe(context.Background()); err != nil {
		t.Fatalf("the server's own database is gone after Delete: %v", err)
	}
}
