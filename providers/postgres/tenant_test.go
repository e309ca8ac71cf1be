package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/runtime"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/pkg/pgserver/pgservertest"
	"github.com/msp-dev/msp/sdk/driver"
)

// Tests of issue 12, tenant safety: names unique per server, no data lost on upgrade,
// real names in the status, ObserveOnly adopting nothing of another tenant, advice that
// can be followed, credentials checked, repaired and rotated, extensions dropped only
// when the driver created them.

var observeOnly = platformv1alpha1.CapabilitySpec{ManagementPolicy: platformv1alpha1.ManagementPolicyObserveOnly}

// names are the names Names gives a capability made by capability().
func names(t *testing.T, c *driver.Capability) (string, string) {
	t.Helper()
	var db postgresv1alpha1.PostgresDatabase
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.Object.Object, &db); err != nil {
		t.Fatal(err)
	}
	return Names(c.Cluster, &db)
}

// wantStatus checks the names Observe reports in the status.
func wantStatus(t *testing.T, obs driver.Observation, database, owner string) {
	t.Helper()
	if obs.Status["databaseName"] != database || obs.Status["owner"] != owner {
		t.Errorf("status = %v, want databaseName %q and owner %q", obs.Status, database, owner)
	}
}

func wantTenantError(t *testing.T, err error, want string) {
	t.Helper()
	var te *driver.TenantError
	if !errors.As(err, &te) || !strings.Contains(te.Message, want) {
		t.Errorf("err = %v, want a TenantError saying %q", err, want)
	}
}

func mustExec(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestDefaultNamesUniquePerServer: acme's and globex's "orders" get databases of their
// own on one server, and Observe reports their names in the status.
func TestDefaultNamesUniquePerServer(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	admin := pgservertest.Connect(t, srv.AdminURL())
	ctx := context.Background()

	acme := capability(t, "acme", "orders", postgresv1alpha1.PostgresDatabaseSpec{})
	globex := capability(t, "globex", "orders", postgresv1alpha1.PostgresDatabaseSpec{})
	acmeDB, acmeOwner := names(t, acme)
	globexDB, globexOwner := names(t, globex)
	if acmeDB == globexDB || acmeOwner == globexOwner {
		t.Fatalf("acme and globex share %s/%s", acmeDB, acmeOwner)
	}
	acmeDetails := create(t, d, acme)
	globexDetails := create(t, d, globex)
	for _, tc := range []struct {
		c               *driver.Capability
		details         driver.ConnectionDetails
		database, owner string
	}{{acme, acmeDetails, acmeDB, acmeOwner}, {globex, globexDetails, globexDB, globexOwner}} {
		if string(tc.details["database"]) != tc.database || string(tc.details["username"]) != tc.owner {
			t.Errorf("Create returned %s/%s, want %s/%s", tc.details["database"], tc.details["username"], tc.database, tc.owner)
		}
		obs := observe(t, d, tc.c)
		wantHealthy(t, obs)
		wantStatus(t, obs, tc.database, tc.owner)
		pgservertest.Connect(t, string(tc.details["uri"]))
	}
	if err := d.Delete(ctx, acme); err != nil {
		t.Fatal(err)
	}
	if db, role := exists(t, admin, acmeDB, acmeOwner); db || role {
		t.Errorf("acme's database or role survived Delete")
	}
	wantHealthy(t, observe(t, d, globex))

	// Before the database exists the status names nothing; a database that cannot be
	// used is not reported as created either.
	if obs := observe(t, d, acme); obs.Exists || len(obs.Status) != 0 {
		t.Errorf("after Delete: observed %+v, want no database and an empty status", obs)
	}
}

// TestLegacyNamesKept: a database created by an earlier version under the old default
// name (dashes turned into underscores) keeps its names, its data and its password; a
// database of the old default name that is not this capability's is not taken for it.
func TestLegacyNamesKept(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	admin := pgservertest.Connect(t, srv.AdminURL())
	ctx := context.Background()

	// What the earlier version made for acme's "web-shop": web_shop and web_shop_owner,
	// both marked, with the tenant's data.
	c := capability(t, "acme", "web-shop", postgresv1alpha1.PostgresDatabaseSpec{Extensions: []postgresv1alpha1.Extension{"pgcrypto"}})
	mark := capabilityMark("acme", "default", "web-shop")
	mustExec(t, admin,
		"CREATE ROLE web_shop_owner LOGIN PASSWORD 'old-secret'",
		"COMMENT ON ROLE web_shop_owner IS "+lit(mark),
		"CREATE DATABASE web_shop OWNER web_shop_owner",
		"COMMENT ON DATABASE web_shop IS "+lit(mark),
		"REVOKE ALL ON DATABASE web_shop FROM PUBLIC",
	)
	old := pgservertest.Connect(t, withDatabase(t, srv.AdminURL(), "web_shop"))
	mustExec(t, old, "CREATE EXTENSION pgcrypto", "SET ROLE web_shop_owner", "CREATE TABLE orders (item text)", "INSERT INTO orders VALUES ('espresso')", "RESET ROLE")

	t.Run("found by its mark", func(t *testing.T) {
		c.ConnectionDetails = driver.ConnectionDetails{"password": []byte("old-secret")}
		obs := observe(t, d, c)
		wantHealthy(t, obs)
		wantStatus(t, obs, "web_shop", "web_shop_owner")
		if got := string(obs.ConnectionDetails["database"]); got != "web_shop" {
			t.Errorf("database = %q, want web_shop", got)
		}
		if obs.CredentialsInvalid != "" || string(obs.ConnectionDetails["password"]) != "old-secret" {
			t.Errorf("the old password is not kept: %+v", obs)
		}
		var item string
		if err := pgservertest.Connect(t, string(obs.ConnectionDetails["uri"])).QueryRow(ctx, "SELECT item FROM orders").Scan(&item); err != nil || item != "espresso" {
			t.Errorf("the tenant's data: %q, %v", item, err)
		}
		if err := d.Update(ctx, c); err != nil {
			t.Fatal(err)
		}
		derivedDB, derivedOwner := names(t, c)
		if db, role := exists(t, admin, derivedDB, derivedOwner); db || role {
			t.Errorf("a database or role of the new default names was created besides the old ones")
		}
		if err := d.Delete(ctx, c); err != nil {
			t.Fatal(err)
		}
		if db, role := exists(t, admin, "web_shop", "web_shop_owner"); db || role {
			t.Errorf("Delete left the old database or role")
		}
	})

	t.Run("a creation the earlier version stopped half way", func(t *testing.T) {
		// Only the role was created.
		half := capability(t, "acme", "half-way", postgresv1alpha1.PostgresDatabaseSpec{})
		mustExec(t, admin,
			"CREATE ROLE half_way_owner LOGIN PASSWORD 'x'",
			"COMMENT ON ROLE half_way_owner IS "+lit(capabilityMark("acme", "default", "half-way")))
		if obs := observe(t, d, half); obs.Exists || !strings.Contains(obs.Message, "half_way is not created yet") {
			t.Errorf("observed %+v, want half_way not created yet", obs)
		}
		details := create(t, d, half)
		if string(details["database"]) != "half_way" || string(details["username"]) != "half_way_owner" {
			t.Errorf("Create made %s/%s, want the old names half_way/half_way_owner", details["database"], details["username"])
		}
		obs := observe(t, d, half)
		wantHealthy(t, obs)
		wantStatus(t, obs, "half_way", "half_way_owner")

		// The database was created, not yet marked.
		mustExec(t, admin, "COMMENT ON DATABASE half_way IS NULL")
		obs = observe(t, d, half)
		wantHealthy(t, obs)
		wantStatus(t, obs, "half_way", "half_way_owner")
	})

	t.Run("an old default name that is someone else's", func(t *testing.T) {
		// globex has "billing" by spec.databaseName; acme's "billing" without one used to
		// collide with it and now gets a name of its own.
		globex := capability(t, "globex", "ledger", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "billing"})
		create(t, d, globex)
		acme := capability(t, "acme", "billing", postgresv1alpha1.PostgresDatabaseSpec{})
		details := create(t, d, acme)
		wantDB, wantOwner := names(t, acme)
		if string(details["database"]) != wantDB || string(details["username"]) != wantOwner {
			t.Errorf("Create made %s/%s, want %s/%s", details["database"], details["username"], wantDB, wantOwner)
		}
		wantStatus(t, observe(t, d, acme), wantDB, wantOwner)
		wantHealthy(t, observe(t, d, globex))
	})
}

// TestForgedDatabaseMarkIsNotOurs: a tenant owns its database and may comment on it,
// so it could write another capability's mark on it. The driver does not take such a
// database for the other capability's.
func TestForgedDatabaseMarkIsNotOurs(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	ctx := context.Background()

	evil := capability(t, "mallory", "evil", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "evil"})
	details := create(t, d, evil)
	victimMark := capabilityMark("acme", "default", "orders")
	mustExec(t, pgservertest.Connect(t, string(details["uri"])), "COMMENT ON DATABASE evil IS "+lit(victimMark))

	victim := capability(t, "acme", "orders", postgresv1alpha1.PostgresDatabaseSpec{})
	if obs := observe(t, d, victim); obs.Exists {
		t.Fatalf("the victim adopts the forged database: %+v", obs)
	}
	mine := create(t, d, victim)
	if wantDB, _ := names(t, victim); string(mine["database"]) != wantDB {
		t.Errorf("the victim got %s, want %s", mine["database"], wantDB)
	}
	// By name, too, the forged database is someone else's.
	byName := capability(t, "acme", "orders", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "evil"})
	_, err := d.Create(ctx, byName)
	wantTenantError(t, err, `database "evil" exists on this server and belongs to something else`)
	look := capability(t, "acme", "orders", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "evil", CapabilitySpec: observeOnly})
	if obs := observe(t, d, look); obs.Exists {
		t.Errorf("ObserveOnly adopts the forged database: %+v", obs)
	}
}

// TestObserveOnlyAdoption: ObserveOnly adopts a database that carries no mark of the
// platform, or this capability's; never another capability's, which it says.
func TestObserveOnlyAdoption(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	admin := pgservertest.Connect(t, srv.AdminURL())
	ctx := context.Background()

	// Made by hand, with a comment of its own: no capability's.
	mustExec(t, admin,
		"CREATE ROLE legacy_app_owner LOGIN PASSWORD 'hand-made'",
		"CREATE DATABASE legacy_app OWNER legacy_app_owner",
		"COMMENT ON DATABASE legacy_app IS 'the old shop'")
	// Another tenant's.
	create(t, d, capability(t, "globex", "taken", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "taken"}))

	t.Run("a database no capability owns", func(t *testing.T) {
		c := capability(t, "acme", "legacy", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "legacy_app", CapabilitySpec: observeOnly})
		c.ConnectionDetails = driver.ConnectionDetails{"password": []byte("hand-made")}
		obs := observe(t, d, c)
		wantHealthy(t, obs)
		wantStatus(t, obs, "legacy_app", "legacy_app_owner")
		if _, ok := obs.ConnectionDetails["password"]; ok {
			t.Error("ObserveOnly tells a password")
		}
		if _, ok := obs.ConnectionDetails["uri"]; ok {
			t.Error("ObserveOnly tells a uri")
		}
		c.ConnectionDetails = nil
		if obs := observe(t, d, c); obs.CredentialsInvalid != "" {
			t.Errorf("ObserveOnly reports credentials invalid: %q", obs.CredentialsInvalid)
		}
	})

	t.Run("another capability's database", func(t *testing.T) {
		c := capability(t, "acme", "taken", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "taken", CapabilitySpec: observeOnly})
		obs := observe(t, d, c)
		want := `database "taken" belongs to another capability on this server; ObserveOnly adopts only databases that no capability of the platform owns`
		if obs.Exists || obs.Message != want {
			t.Errorf("observed %+v, want it refused with %q", obs, want)
		}
		if len(obs.Status) != 0 {
			t.Errorf("status = %v for a refused database", obs.Status)
		}
	})

	t.Run("another capability's role", func(t *testing.T) {
		c := capability(t, "acme", "legacy", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "legacy_app", Owner: "taken_owner", CapabilitySpec: observeOnly})
		obs := observe(t, d, c)
		if obs.Exists || !strings.Contains(obs.Message, `role "taken_owner" belongs to another capability on this server`) {
			t.Errorf("observed %+v, want the role refused", obs)
		}
	})

	t.Run("nothing found with defaulted names", func(t *testing.T) {
		// An object named like the hand-made database does not adopt it.
		c := capability(t, "acme", "legacy-app", postgresv1alpha1.PostgresDatabaseSpec{CapabilitySpec: observeOnly})
		obs := observe(t, d, c)
		if obs.Exists || !strings.Contains(obs.Message, "ObserveOnly adopts an existing database named by spec.databaseName") {
			t.Errorf("observed %+v, want the advice to name the database", obs)
		}
	})

	t.Run("its own database", func(t *testing.T) {
		full := capability(t, "acme", "mine", postgresv1alpha1.PostgresDatabaseSpec{})
		details := create(t, d, full)
		c := capability(t, "acme", "mine", postgresv1alpha1.PostgresDatabaseSpec{CapabilitySpec: observeOnly})
		c.ConnectionDetails = details
		obs := observe(t, d, c)
		wantHealthy(t, obs)
		if _, ok := obs.ConnectionDetails["password"]; ok {
			t.Error("ObserveOnly tells a password")
		}
		if obs.CredentialsInvalid != "" {
			t.Errorf("ObserveOnly reports credentials invalid: %q", obs.CredentialsInvalid)
		}
		_, err := d.RotateCredentials(ctx, c)
		wantTenantError(t, err, "ObserveOnly")
	})
}

// TestTakenNamesAdvice: a taken name is refused with advice the tenant can follow
// (names cannot change, so: a new PostgresDatabase), and the other one is left alone.
func TestTakenNamesAdvice(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	admin := pgservertest.Connect(t, srv.AdminURL())
	ctx := context.Background()
	mustExec(t, admin, "CREATE DATABASE orders", "CREATE ROLE app", "CREATE ROLE shop_owner")

	for _, tc := range []struct {
		name string
		spec postgresv1alpha1.PostgresDatabaseSpec
		want string
	}{
		{"database", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "orders"},
			`database "orders" exists on this server and belongs to something else; spec.databaseName cannot change, so create a new PostgresDatabase with another spec.databaseName (or none, to get a name of its own) and delete this one`},
		{"owner", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "fresh", Owner: "app"},
			`role "app" exists on this server and belongs to something else; spec.owner cannot change, so create a new PostgresDatabase with another spec.owner (or none, to get a name of its own) and delete this one`},
		{"default owner", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "shop"},
			`role "shop_owner", the default owner of database "shop", exists on this server and belongs to something else; create a new PostgresDatabase with a spec.owner of its own and delete this one`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := capability(t, "acme", "x", tc.spec)
			obs := observe(t, d, c)
			if obs.Exists || obs.Message != tc.want {
				t.Errorf("Observe: %+v, want the message %q", obs, tc.want)
			}
			_, err := d.Create(ctx, c)
			var te *driver.TenantError
			if !errors.As(err, &te) || te.Message != tc.want {
				t.Errorf("Create: %v, want the TenantError %q", err, tc.want)
			}
			if err := d.Delete(ctx, c); err != nil {
				t.Fatal(err)
			}
		})
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_database WHERE datname = 'orders') + (SELECT count(*) FROM pg_roles WHERE rolname IN ('app', 'shop_owner'))`).Scan(&n); err != nil || n != 3 {
		t.Errorf("what others own: %d of 3 left, %v", n, err)
	}
}

// TestObserveCredentials: Observe keeps the Secret's password (and builds the uri
// afresh) while it is the role's, and reports it invalid when it is missing or is no
// longer the role's. Verifications are remembered.
func TestObserveCredentials(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	ctx := context.Background()

	c := capability(t, "acme", "creds", postgresv1alpha1.PostgresDatabaseSpec{})
	details := create(t, d, c)
	_, owner := names(t, c)

	t.Run("valid", func(t *testing.T) {
		c.ConnectionDetails = details
		obs := observe(t, d, c)
		wantHealthy(t, obs)
		if obs.CredentialsInvalid != "" {
			t.Errorf("CredentialsInvalid = %q", obs.CredentialsInvalid)
		}
		for _, k := range []string{"password", "uri"} {
			if string(obs.ConnectionDetails[k]) != string(details[k]) {
				t.Errorf("%s = %q, want %q", k, obs.ConnectionDetails[k], details[k])
			}
		}
		var verifier string
		if err := d.pool.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, owner).Scan(&verifier); err != nil {
			t.Fatal(err)
		}
		if !d.verified.cached(owner, verifier, string(details["password"])) {
			t.Error("the verification is not remembered")
		}
	})

	t.Run("an edited uri is repaired", func(t *testing.T) {
		c.ConnectionDetails = driver.ConnectionDetails{"password": details["password"], "uri": []byte("postgres://nobody@elsewhere/x")}
		obs := observe(t, d, c)
		if string(obs.ConnectionDetails["uri"]) != string(details["uri"]) {
			t.Errorf("uri = %q, want %q", obs.ConnectionDetails["uri"], details["uri"])
		}
	})

	for _, tc := range []struct {
		name    string
		secret  driver.ConnectionDetails
		message string
	}{
		{"no Secret", nil, "the connection Secret has no password"},
		{"no password", driver.ConnectionDetails{"uri": details["uri"]}, "the connection Secret has no password"},
		{"another password", driver.ConnectionDetails{"password": []byte("guessed")}, "the connection Secret's password is no longer the role's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.ConnectionDetails = tc.secret
			obs := observe(t, d, c)
			if !obs.Exists || obs.CredentialsInvalid != tc.message {
				t.Errorf("observed %+v, want CredentialsInvalid %q", obs, tc.message)
			}
			for _, k := range []string{"password", "uri"} {
				if _, ok := obs.ConnectionDetails[k]; ok {
					t.Errorf("Observe returns a %s it cannot vouch for", k)
				}
			}
		})
	}

	t.Run("the tenant changed its password and its Secret", func(t *testing.T) {
		mustExec(t, pgservertest.Connect(t, string(details["uri"])), "ALTER ROLE "+ident(owner)+" PASSWORD 'chosen-by-the-tenant'")
		c.ConnectionDetails = details
		if obs := observe(t, d, c); obs.CredentialsInvalid != "the connection Secret's password is no longer the role's" {
			t.Errorf("with the old password: CredentialsInvalid = %q", obs.CredentialsInvalid)
		}
		c.ConnectionDetails = driver.ConnectionDetails{"password": []byte("chosen-by-the-tenant")}
		obs := observe(t, d, c)
		if obs.CredentialsInvalid != "" || string(obs.ConnectionDetails["password"]) != "chosen-by-the-tenant" {
			t.Errorf("with the new password: %+v", obs)
		}
		pgservertest.Connect(t, string(obs.ConnectionDetails["uri"]))
	})
}

// TestRotateCredentials: RotateCredentials gives the role a new password (the old one
// stops working) and returns it with its uri; it refuses a role that is not the
// capability's own.
func TestRotateCredentials(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	ctx := context.Background()

	c := capability(t, "acme", "rotating", postgresv1alpha1.PostgresDatabaseSpec{})
	old := create(t, d, c)
	c.ConnectionDetails = old
	observe(t, d, c) // remembers the old password

	fresh, err := d.RotateCredentials(ctx, c)
	if err != nil {
		t.Fatalf("RotateCredentials: %v", err)
	}
	if len(fresh["password"]) != 32 || string(fresh["password"]) == string(old["password"]) {
		t.Errorf("new password %q (old %q)", fresh["password"], old["password"])
	}
	for _, k := range []string{"host", "port", "database", "username"} {
		if string(fresh[k]) != string(old[k]) {
			t.Errorf("%s changed: %q, was %q", k, fresh[k], old[k])
		}
	}
	pgservertest.Connect(t, string(fresh["uri"]))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, string(old["uri"])); err == nil {
		_ = conn.Close(ctx)
		t.Error("the old password still works")
	}
	if obs := observe(t, d, c); obs.CredentialsInvalid == "" {
		t.Error("the old password is still taken as valid")
	}
	c.ConnectionDetails = fresh
	if obs := observe(t, d, c); obs.CredentialsInvalid != "" || string(obs.ConnectionDetails["password"]) != string(fresh["password"]) {
		t.Errorf("the new password: %+v", obs)
	}

	// Not this capability's role, not created yet.
	thief := capability(t, "mallory", "rotating", postgresv1alpha1.PostgresDatabaseSpec{DatabaseName: "x", Owner: string(old["username"])})
	_, err = d.RotateCredentials(ctx, thief)
	wantTenantError(t, err, "belongs to something else")
	pgservertest.Connect(t, string(fresh["uri"]))
	_, err = d.RotateCredentials(ctx, capability(t, "acme", "later", postgresv1alpha1.PostgresDatabaseSpec{}))
	wantTenantError(t, err, "is not created yet")
}

// TestExtensionsRemovedFromSpec: an extension the driver created and the spec no longer
// lists is reported and dropped; one it did not create is left alone; one in use is
// kept with a message that says what to do.
func TestExtensionsRemovedFromSpec(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	d := newDriver(t, srv)
	ctx := context.Background()

	withExtensions := func(exts ...postgresv1alpha1.Extension) *driver.Capability {
		return capability(t, "acme", "exts", postgresv1alpha1.PostgresDatabaseSpec{Extensions: exts})
	}
	details := create(t, d, withExtensions("pgcrypto", "citext", "cube", "earthdistance"))
	database, _ := names(t, withExtensions())
	dbAdmin := pgservertest.Connect(t, withDatabase(t, srv.AdminURL(), database))
	mustExec(t, dbAdmin, "CREATE EXTENSION hstore") // not the driver's
	installed := func() map[string]bool {
		t.Helper()
		got, err := installedExtensions(ctx, dbAdmin, capabilityMark("acme", "default", "exts"))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := installed(); !got["pgcrypto"] || !got["citext"] || !got["cube"] || !got["earthdistance"] {
		t.Fatalf("installed %v, want pgcrypto, citext, cube and earthdistance marked", got)
	}
	if ours, ok := installed()["hstore"]; !ok || ours {
		t.Fatalf("hstore: installed %v, ours %v", ok, ours)
	}
	wantHealthy(t, observe(t, d, withExtensions("pgcrypto", "citext", "cube", "earthdistance")))

	// citext, cube and earthdistance leave the spec (earthdistance needs cube: it goes first).
	c := withExtensions("pgcrypto")
	obs := observe(t, d, c)
	if !obs.Exists || obs.UpToDate {
		t.Fatalf("observed %+v, want drift", obs)
	}
	for _, e := range []string{"citext", "cube", "earthdistance"} {
		if want := "extension " + e + " is no longer in spec.extensions"; !strings.Contains(obs.Message, want) {
			t.Errorf("message %q does not say %q", obs.Message, want)
		}
	}
	if strings.Contains(obs.Message, "hstore") {
		t.Errorf("message %q names hstore, which the driver did not create", obs.Message)
	}
	if err := d.Update(ctx, c); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := installed()
	if got["citext"] || got["cube"] || got["earthdistance"] || !got["pgcrypto"] {
		t.Errorf("after Update: %v, want only pgcrypto of the driver's", got)
	}
	if _, ok := got["hstore"]; !ok {
		t.Error("Update dropped hstore, which the driver did not create")
	}
	wantHealthy(t, observe(t, d, c))

	// citext comes back, the tenant uses it, and leaves the spec again.
	if err := d.Update(ctx, withExtensions("pgcrypto", "citext")); err != nil {
		t.Fatal(err)
	}
	wantHealthy(t, observe(t, d, withExtensions("pgcrypto", "citext")))
	mustExec(t, pgservertest.Connect(t, string(details["uri"])), "CREATE TABLE users (email citext)")
	err := d.Update(ctx, c)
	var te *driver.TenantError
	const want = "extension citext cannot be dropped: objects in the database use it; drop them first, or add it back to spec.extensions"
	if !errors.As(err, &te) || te.Message != want {
		t.Errorf("Update: %v, want the TenantError %q", err, want)
	}
	if !installed()["citext"] {
		t.Error("citext was dropped with a table using it")
	}
}
