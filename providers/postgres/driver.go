package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/sdk/driver"
)

// Keys of a PostgresDatabase's connection Secret.
const (
	DetailHost     = "host"
	DetailPort     = "port"
	DetailDatabase = "database"
	DetailUsername = "username"
	DetailPassword = "password" // Create and RotateCredentials set it, Observe keeps it while it is valid
	DetailURI      = "uri"      // built with the password
)

// msgUnreachable is what a tenant reads while the runtime's server cannot be reached.
const msgUnreachable = "the PostgreSQL server of this runtime is unreachable; the platform retries by itself"

// DriverOptions configure the PostgreSQL driver.
type DriverOptions struct {
	// AdminURL is a superuser's URL (postgres://postgres:pw@127.0.0.1:5432/postgres).
	AdminURL string
	// Host is the host written into connection Secrets, as tenants reach the server.
	// Defaults to the host of AdminURL.
	Host string
	// Port is the port written into connection Secrets. Defaults to the port of AdminURL.
	Port int
	// MaxConns bounds the admin connection pool. Defaults to 4.
	MaxConns int32
}

// Driver creates PostgresDatabases on one PostgreSQL server: a database and its owner
// role per capability. It is a driver.Driver, a driver.CredentialRotator and a
// driver.RuntimeProbe.
//
// Every database and role it creates carries a comment that names its capability (a hash
// of workspace, namespace and name). The driver only adopts, changes and drops what
// carries its capability's mark, so a tenant cannot take over another tenant's database
// or role by choosing the same databaseName or owner: that is reported to the tenant as
// a name that is taken. The extensions it creates carry the mark too: it drops only
// those when the spec no longer lists them.
type Driver struct {
	pool  *pgxpool.Pool
	admin *pgx.ConnConfig // for connections to tenant databases
	addr  string          // host:port of AdminURL, for messages
	host  string
	port  int

	verified verifiedCache // passwords that matched their role's verifier
}

var (
	_ driver.Driver            = (*Driver)(nil)
	_ driver.CredentialRotator = (*Driver)(nil)
	_ driver.RuntimeProbe      = (*Driver)(nil)
)

// NewDriver returns a driver on the server at opts.AdminURL. It does not connect: the
// server may be down, and the driver connects when it needs to.
func NewDriver(ctx context.Context, opts DriverOptions) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(opts.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing the admin URL: %w", err) // pgconn leaves the password out
	}
	cfg.MaxConns = 4
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	d := &Driver{
		pool:  pool,
		admin: cfg.ConnConfig.Copy(),
		addr:  net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))),
		host:  opts.Host,
		port:  opts.Port,
	}
	if d.host == "" {
		d.host = cfg.ConnConfig.Host
	}
	if d.port == 0 {
		d.port = int(cfg.ConnConfig.Port)
	}
	return d, nil
}

// Close closes the admin connections.
func (d *Driver) Close() { d.pool.Close() }

// target is what one capability asks for.
type target struct {
	// database and owner are the names to use: spec.databaseName and spec.owner, else
	// the defaults (see Names), else, once inspect has looked, the names of what this
	// capability already has on the server under an earlier version's defaults.
	database, owner string
	// dbDefaulted and ownerDefaulted say that spec.databaseName and spec.owner are not
	// set.
	dbDefaulted, ownerDefaulted bool
	// legacyDatabase is the default database name of earlier versions, when dbDefaulted.
	legacyDatabase string
	extensions     []string
	mark           string // comment on the database, the role and the extensions it creates
	observeOnly    bool
}

// maxIdentifier is PostgreSQL's identifier length (NAMEDATALEN-1); longer names are
// cut silently, so the driver would never find what it created.
const maxIdentifier = 63

func targetOf(c *driver.Capability) (*target, error) {
	var db postgresv1alpha1.PostgresDatabase
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.Object.Object, &db); err != nil {
		return nil, fmt.Errorf("postgres: reading the PostgresDatabase: %w", err)
	}
	t := &target{
		dbDefaulted:    db.Spec.DatabaseName == "",
		ownerDefaulted: db.Spec.Owner == "",
		mark:           capabilityMark(c.Cluster, db.Namespace, db.Name),
		observeOnly:    c.Spec.ManagementPolicy == platformv1alpha1.ManagementPolicyObserveOnly,
	}
	t.database, t.owner = Names(c.Cluster, &db)
	if t.dbDefaulted {
		t.legacyDatabase = legacyDatabaseName(db.Name)
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range db.Spec.Extensions {
		if !seen[string(e)] {
			seen[string(e)] = true
			t.extensions = append(t.extensions, string(e))
		}
	}
	return t, nil
}

// check refuses names PostgreSQL cannot take. Admission refuses them already (the API's
// pattern and length, no reserved names, an owner when spec.databaseName is longer than
// 57 characters) and derived names keep to the same rules, but for an object's name
// starting with "pg-": this is the second line. Names cannot change, so the advice is a
// new PostgresDatabase.
func (t *target) check() error {
	switch {
	case len(t.database) > maxIdentifier:
		return tenantErrorf("spec.databaseName %q is longer than %d characters; spec.databaseName cannot change, so create a new PostgresDatabase with a shorter one and delete this one", t.database, maxIdentifier)
	case isReservedDatabase(t.database) && t.dbDefaulted:
		return tenantErrorf("the database name %q derived from this object's name starts with pg_, which PostgreSQL reserves; create a new PostgresDatabase with a spec.databaseName, or with a name that does not start with pg, and delete this one", t.database)
	case isReservedDatabase(t.database):
		return tenantErrorf("database name %q is reserved by PostgreSQL; spec.databaseName cannot change, so create a new PostgresDatabase with another spec.databaseName (or none, to get a name of its own) and delete this one", t.database)
	case len(t.owner) > maxIdentifier && t.ownerDefaulted:
		return tenantErrorf("the default owner %q (spec.databaseName followed by _owner) is longer than %d characters; create a new PostgresDatabase with a spec.owner, or with a spec.databaseName of at most %d characters, and delete this one", t.owner, maxIdentifier, maxIdentifier-len("_owner"))
	case len(t.owner) > maxIdentifier:
		return tenantErrorf("spec.owner %q is longer than %d characters; spec.owner cannot change, so create a new PostgresDatabase with a shorter one and delete this one", t.owner, maxIdentifier)
	case isReservedRole(t.owner):
		return tenantErrorf("owner %q is reserved by PostgreSQL; spec.owner cannot change, so create a new PostgresDatabase with another spec.owner (or none, to get a name of its own) and delete this one", t.owner)
	}
	return nil
}

func tenantErrorf(format string, args ...any) error {
	return driver.NewTenantError(fmt.Sprintf(format, args...))
}

func isReservedDatabase(name string) bool {
	return name == "postgres" || name == "template0" || name == "template1" || strings.HasPrefix(name, "pg_")
}

func isReservedRole(name string) bool {
	switch name {
	case "postgres", "public", "none", "current_user", "current_role", "session_user":
		return true
	}
	return strings.HasPrefix(name, "pg_")
}

// object is what the server has under one name.
type object struct {
	exists bool
	mark   string // its comment
	// Of a database only: its owner role, the owner's comment, its size.
	owner, ownerMark string
	size             int64
}

// state is what the server has of a target.
type state struct {
	role, db         object
	roleOurs, dbOurs bool
}

// conflict says, for the tenant, what of the target's names is taken by something else,
// and what the tenant can do about it.
func (st *state) conflict(t *target) string {
	if st.db.exists && !st.dbOurs {
		if t.dbDefaulted {
			return fmt.Sprintf("database %q, the name derived from this object, exists on this server and belongs to something else; create a new PostgresDatabase with a spec.databaseName (or another name) and delete this one", t.database)
		}
		return fmt.Sprintf("database %q exists on this server and belongs to something else; spec.databaseName cannot change, so create a new PostgresDatabase with another spec.databaseName (or none, to get a name of its own) and delete this one", t.database)
	}
	if st.role.exists && !st.roleOurs {
		if t.ownerDefaulted {
			return fmt.Sprintf("role %q, the default owner of database %q, exists on this server and belongs to something else; create a new PostgresDatabase with a spec.owner of its own and delete this one", t.owner, t.database)
		}
		return fmt.Sprintf("role %q exists on this server and belongs to something else; spec.owner cannot change, so create a new PostgresDatabase with another spec.owner (or none, to get a name of its own) and delete this one", t.owner)
	}
	return ""
}

// foreign says, for ObserveOnly, what of the target belongs to another capability: it
// adopts what carries no mark of the platform, or this capability's.
func (st *state) foreign(t *target) string {
	if st.db.exists && (foreignMark(st.db.mark, t.mark) || foreignMark(st.db.ownerMark, t.mark)) {
		return fmt.Sprintf("database %q belongs to another capability on this server; ObserveOnly adopts only databases that no capability of the platform owns", t.database)
	}
	if st.role.exists && foreignMark(st.role.mark, t.mark) {
		return fmt.Sprintf("role %q belongs to another capability on this server; ObserveOnly adopts only roles that no capability of the platform owns", t.owner)
	}
	return ""
}

// missing says, for the tenant, why the target does not exist.
func (st *state) missing(t *target) string {
	switch {
	case !t.observeOnly:
		return fmt.Sprintf("database %s is not created yet", t.database)
	case st.db.exists:
		return fmt.Sprintf("role %q does not exist on this server; ObserveOnly adopts an existing database together with its owner role, named by spec.owner (by default spec.databaseName followed by _owner)", t.owner)
	case t.dbDefaulted:
		return "this PostgresDatabase has no database on this server; ObserveOnly adopts an existing database named by spec.databaseName"
	default:
		return fmt.Sprintf("database %q does not exist on this server; ObserveOnly adopts an existing database and does not create one", t.database)
	}
}

// inspect looks up the target's database and role. With a defaulted database name it
// first settles the names (see resolve), in the same query.
func (d *Driver) inspect(ctx context.Context, t *target) (*state, error) {
	roleNames, dbNames, mark := []string{t.owner}, []string{t.database}, ""
	if t.dbDefaulted {
		mark = t.mark
		dbNames = append(dbNames, t.legacyDatabase)
		roleNames = append(roleNames, t.legacyDatabase+"_owner")
	}
	roles, dbs, err := d.lookup(ctx, roleNames, dbNames, mark)
	if err != nil {
		return nil, err
	}
	if t.dbDefaulted {
		t.resolve(roles, dbs)
		known := func(asked []string, found map[string]object, name string) bool {
			return slices.Contains(asked, name) || found[name].exists
		}
		if !known(roleNames, roles, t.owner) || !known(dbNames, dbs, t.database) {
			// A name the first query did not ask for (an owner role that lost its mark).
			if roles, dbs, err = d.lookup(ctx, []string{t.owner}, []string{t.database}, ""); err != nil {
				return nil, err
			}
		}
	}
	st := &state{role: roles[t.owner], db: dbs[t.database]}
	// A role is created with its mark in one transaction, and only the platform (not a
	// tenant, who lacks CREATEROLE) can comment on a role. A database cannot be (CREATE
	// DATABASE runs outside transactions), so an unmarked database owned by our role is
	// ours too: a creation that stopped half way. A database's owner can comment on it,
	// so a tenant could put another capability's mark on its own: a marked database owned
	// by another capability's role is not ours.
	st.roleOurs = st.role.exists && st.role.mark == t.mark
	st.dbOurs = st.db.exists &&
		(st.db.mark == t.mark && !foreignMark(st.db.ownerMark, t.mark) ||
			st.db.mark == "" && st.roleOurs && st.db.owner == t.owner)
	return st, nil
}

// resolve keeps, for a defaulted database name, the names of what this capability has on
// the server already: a database carrying its mark (created by an earlier version under
// the old default name, say), or one whose creation stopped half way. Else the derived
// names stay.
func (t *target) resolve(roles, dbs map[string]object) {
	var mine, half []string
	for name, o := range dbs {
		switch {
		case o.mark == t.mark && !foreignMark(o.ownerMark, t.mark):
			mine = append(mine, name)
		case o.mark == "" && o.ownerMark == t.mark && (t.ownerDefaulted && o.owner == name+"_owner" || !t.ownerDefaulted && o.owner == t.owner):
			half = append(half, name) // created, not yet marked
		}
	}
	if len(mine) == 0 {
		mine = half
	}
	slices.Sort(mine)
	switch {
	case slices.Contains(mine, t.database):
	case len(mine) > 0:
		t.database = mine[0]
	case t.ownerDefaulted && roles[t.legacyDatabase+"_owner"].mark == t.mark && !dbs[t.legacyDatabase].exists:
		t.database = t.legacyDatabase // an earlier version created the role, not yet the database
	}
	if t.ownerDefaulted {
		t.owner = t.database + "_owner"
	}
}

// lookup returns the roles and databases of these names, and, with mark set, those that
// carry it and the unmarked databases owned by a role that carries it.
func (d *Driver) lookup(ctx context.Context, roleNames, dbNames []string, mark string) (roles, dbs map[string]object, err error) {
	rows, err := d.pool.Query(ctx, `
WITH marked AS (
	SELECT objoid, classoid FROM pg_shdescription
	WHERE $3::text <> '' AND description = $3::text
	  AND classoid IN ('pg_authid'::regclass, 'pg_database'::regclass)
), r AS (
	SELECT oid, rolname, coalesce(shobj_description(oid, 'pg_authid'), '') AS mark FROM pg_roles
	WHERE rolname = ANY($1::text[]) OR oid IN (SELECT objoid FROM marked WHERE classoid = 'pg_authid'::regclass)
)
SELECT false, rolname, mark, '', '', 0::bigint FROM r
UNION ALL
SELECT true, d.datname, coalesce(shobj_description(d.oid, 'pg_database'), ''),
       pg_get_userbyid(d.datdba), coalesce(shobj_description(d.datdba, 'pg_authid'), ''),
       pg_database_size(d.oid)
FROM pg_database d
WHERE d.datname = ANY($2::text[])
   OR d.oid IN (SELECT objoid FROM marked WHERE classoid = 'pg_database'::regclass)
   OR ($3::text <> '' AND shobj_description(d.oid, 'pg_database') IS NULL
       AND d.datdba IN (SELECT oid FROM r WHERE mark = $3::text))`, roleNames, dbNames, mark)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	roles, dbs = map[string]object{}, map[string]object{}
	for rows.Next() {
		var (
			isDB bool
			name string
			o    = object{exists: true}
		)
		if err := rows.Scan(&isDB, &name, &o.mark, &o.owner, &o.ownerMark, &o.size); err != nil {
			return nil, nil, err
		}
		if isDB {
			dbs[name] = o
		} else {
			roles[name] = o
		}
	}
	return roles, dbs, rows.Err()
}

// Observe reports whether the database and its owner exist, whether the owner and the
// extensions are as asked, whether the database accepts connections, and the real names
// (status.databaseName, status.owner). It checks the password of the connection Secret
// against the role's and returns it, with a fresh uri, when it is still the role's;
// else it reports the credentials invalid. With ObserveOnly it adopts only what no other
// capability owns, and tells no password.
func (d *Driver) Observe(ctx context.Context, c *driver.Capability) (driver.Observation, error) {
	t, err := targetOf(c)
	if err != nil {
		return driver.Observation{}, err
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return driver.Observation{}, d.wrap(ctx, "observing", t, err)
	}
	obs := driver.Observation{ConnectionDetails: d.details(t), Status: map[string]any{}}
	if t.observeOnly {
		if msg := st.foreign(t); msg != "" {
			obs.Message = msg
			return obs, nil
		}
		// Adopting a database that no capability owns (or this one does) only to report
		// on it: the driver changes nothing and tells no password, and marks still guard
		// Update and Delete.
		st.roleOurs, st.dbOurs = st.role.exists, st.db.exists
	} else if msg := st.conflict(t); msg != "" {
		// Not ours: as far as this capability goes, it does not exist. Create then says
		// that the name is taken, and deleting the capability leaves the other one alone.
		obs.Message = msg
		return obs, nil
	}
	if !st.db.exists || !st.role.exists {
		obs.Message = st.missing(t)
		return obs, nil
	}
	obs.Exists = true
	obs.Status = map[string]any{"databaseName": t.database, "owner": t.owner}
	obs.Usage = corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(st.db.size, resource.BinarySI)}
	if !t.observeOnly {
		if err := d.checkCredentials(ctx, t, c.ConnectionDetails, &obs); err != nil {
			return driver.Observation{}, d.wrap(ctx, "observing", t, err)
		}
	}

	var drift []string
	if st.db.owner != t.owner {
		drift = append(drift, fmt.Sprintf("database owner is %s, want %s", st.db.owner, t.owner))
	}
	conn, err := d.connect(ctx, t.database)
	if err != nil {
		if isUnreachable(ctx, err) {
			return driver.Observation{}, driver.NewTenantError(msgUnreachable)
		}
		obs.Message = strings.Join(append(drift, fmt.Sprintf("database %s does not accept connections", t.database)), "; ")
		obs.UpToDate = len(drift) == 0 && len(t.extensions) == 0
		return obs, nil
	}
	defer conn.Close(context.WithoutCancel(ctx))
	installed, err := installedExtensions(ctx, conn, t.mark)
	if err != nil {
		return driver.Observation{}, d.wrap(ctx, "observing", t, err)
	}
	for _, e := range t.extensions {
		if _, ok := installed[e]; !ok {
			drift = append(drift, fmt.Sprintf("extension %s is missing", e))
		}
	}
	for _, e := range removedExtensions(installed, t.extensions) {
		drift = append(drift, fmt.Sprintf("extension %s is no longer in spec.extensions", e))
	}
	obs.UpToDate = len(drift) == 0
	obs.Ready = true
	obs.Message = strings.Join(drift, "; ")
	return obs, nil
}

// Messages of Observation.CredentialsInvalid.
const (
	msgNoPassword    = "the connection Secret has no password"
	msgWrongPassword = "the connection Secret's password is no longer the role's"
)

// checkCredentials checks the Secret's password against the role's verifier, locally
// (connecting as the role would prove nothing where pg_hba trusts local connections),
// and returns it with a uri built afresh (an edited uri is so repaired), or reports the
// credentials invalid.
func (d *Driver) checkCredentials(ctx context.Context, t *target, have driver.ConnectionDetails, obs *driver.Observation) error {
	password := string(have[DetailPassword])
	if password == "" {
		obs.CredentialsInvalid = msgNoPassword
		return nil
	}
	var verifier string
	err := d.pool.QueryRow(ctx, `SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = $1`, t.owner).Scan(&verifier)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("role %s disappeared while being observed", t.owner)
	}
	if err != nil {
		return err
	}
	if !d.verified.verify(t.owner, verifier, password) {
		obs.CredentialsInvalid = msgWrongPassword
		return nil
	}
	obs.ConnectionDetails[DetailPassword] = []byte(password)
	obs.ConnectionDetails[DetailURI] = []byte(d.uri(t, password))
	return nil
}

// Create creates the owner role with a new password (or gives an existing one a new
// password), the database owned by it and closed to everyone else, and the extensions.
// It returns the credentials.
func (d *Driver) Create(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	t, err := targetOf(c)
	if err != nil {
		return nil, err
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}
	if msg := st.conflict(t); msg != "" {
		return nil, driver.NewTenantError(msg)
	}
	password := pgserver.NewPassword()
	if err := d.ensureRole(ctx, t, st, password); err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}
	if !st.db.exists {
		_, err := d.pool.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", ident(t.database), ident(t.owner)))
		if err != nil && !hasCode(err, "42P04") { // duplicate_database: created meanwhile
			return nil, d.wrap(ctx, "creating", t, err)
		}
	}
	if err := d.ensureDatabase(ctx, t); err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}
	if err := d.syncExtensions(ctx, t); err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}
	return d.credentials(t, password), nil
}

// Update gives the database its owner back, creates missing extensions and drops those
// it created that the spec no longer lists.
func (d *Driver) Update(ctx context.Context, c *driver.Capability) error {
	t, err := targetOf(c)
	if err != nil {
		return err
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return d.wrap(ctx, "updating", t, err)
	}
	if msg := st.conflict(t); msg != "" {
		return driver.NewTenantError(msg)
	}
	if !st.db.exists || !st.role.exists {
		return nil // the next Observe says so, and Create finishes the job
	}
	if err := d.ensureDatabase(ctx, t); err != nil {
		return d.wrap(ctx, "updating", t, err)
	}
	if err := d.syncExtensions(ctx, t); err != nil {
		return d.wrap(ctx, "updating", t, err)
	}
	return nil
}

// RotateCredentials gives the owner role a new random password, so that the old one
// stops working, and returns it with the uri. It refuses a role that is not this
// capability's own, and ObserveOnly.
func (d *Driver) RotateCredentials(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	t, err := targetOf(c)
	if err != nil {
		return nil, err
	}
	if t.observeOnly {
		return nil, driver.NewTenantError("the management policy is ObserveOnly, so the servicelet does not rotate credentials")
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return nil, d.wrap(ctx, "rotating the credentials of", t, err)
	}
	if msg := st.conflict(t); msg != "" {
		return nil, driver.NewTenantError(msg)
	}
	if !st.roleOurs {
		return nil, tenantErrorf("role %s is not created yet, so it has no credentials to rotate", t.owner)
	}
	password := pgserver.NewPassword()
	if err := d.ensureRole(ctx, t, st, password); err != nil {
		return nil, d.wrap(ctx, "rotating the credentials of", t, err)
	}
	d.verified.forget(t.owner)
	return d.credentials(t, password), nil
}

// Delete ends the database's sessions and drops the database and its owner role. It
// leaves alone what is not this capability's (see Driver).
func (d *Driver) Delete(ctx context.Context, c *driver.Capability) error {
	t, err := targetOf(c)
	var te *driver.TenantError
	if errors.As(err, &te) {
		// A name the driver refuses (reserved, too long) was never created by it:
		// there is nothing to delete, and refusing would hold the finalizer forever.
		return nil
	}
	if err != nil {
		return err
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return d.wrap(ctx, "deleting", t, err)
	}
	if st.dbOurs {
		if _, err := d.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, t.database); err != nil {
			return d.wrap(ctx, "deleting", t, err)
		}
		var version int
		if err := d.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
			return d.wrap(ctx, "deleting", t, err)
		}
		drop := "DROP DATABASE IF EXISTS " + ident(t.database)
		if version >= 130000 {
			drop += " WITH (FORCE)" // also ends sessions that connected meanwhile
		}
		if _, err := d.pool.Exec(ctx, drop); err != nil {
			return d.wrap(ctx, "deleting", t, err)
		}
	}
	if st.roleOurs {
		if _, err := d.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, t.owner); err != nil {
			return d.wrap(ctx, "deleting", t, err)
		}
		if _, err := d.pool.Exec(ctx, "DROP ROLE IF EXISTS "+ident(t.owner)); err != nil {
			return d.wrap(ctx, "deleting", t, err)
		}
		d.verified.forget(t.owner)
	}
	return nil
}

// Probe pings the server.
func (d *Driver) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := d.pool.Ping(ctx)
	if err == nil {
		return nil
	}
	if hasCodePrefix(err, "28") { // invalid_authorization_specification, invalid_password
		return fmt.Errorf("PostgreSQL at %s refuses the platform's admin credentials", d.addr)
	}
	return fmt.Errorf("PostgreSQL at %s is not accepting connections", d.addr)
}

func (d *Driver) ensureRole(ctx context.Context, t *target, st *state, password string) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		pw, err := quoteLiteral(ctx, tx, password)
		if err != nil {
			return err
		}
		if st.role.exists {
			_, err = tx.Exec(ctx, fmt.Sprintf("ALTER ROLE %s LOGIN PASSWORD %s", ident(t.owner), pw))
			return err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s", ident(t.owner), pw)); err != nil {
			return err
		}
		mark, err := quoteLiteral(ctx, tx, t.mark)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, fmt.Sprintf("COMMENT ON ROLE %s IS %s", ident(t.owner), mark))
		return err
	})
}

// ensureDatabase marks the database, gives it its owner and closes it to everyone else.
func (d *Driver) ensureDatabase(ctx context.Context, t *target) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		mark, err := quoteLiteral(ctx, tx, t.mark)
		if err != nil {
			return err
		}
		db, owner := ident(t.database), ident(t.owner)
		for _, stmt := range []string{
			"COMMENT ON DATABASE " + db + " IS " + mark,
			"ALTER DATABASE " + db + " OWNER TO " + owner,
			// PUBLIC may connect to a new database; other tenants' roles must not.
			"REVOKE ALL ON DATABASE " + db + " FROM PUBLIC",
			"GRANT ALL ON DATABASE " + db + " TO " + owner,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
}

// syncExtensions creates the extensions of the spec that are missing, each marked as
// this capability's, and drops those it created that the spec no longer lists.
// Extensions it did not create (the tenant's own, the template's) are left alone.
func (d *Driver) syncExtensions(ctx context.Context, t *target) error {
	conn, err := d.connect(ctx, t.database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	installed, err := installedExtensions(ctx, conn, t.mark)
	if err != nil {
		return err
	}
	for _, e := range t.extensions {
		if _, ok := installed[e]; ok {
			continue
		}
		if err := createExtension(ctx, conn, e, t.mark); err != nil {
			return err
		}
	}
	return dropExtensions(ctx, conn, removedExtensions(installed, t.extensions))
}

// createExtension creates an extension and marks it, in one transaction.
func createExtension(ctx context.Context, conn *pgx.Conn, name, mark string) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE EXTENSION "+ident(name)); err != nil {
			return err
		}
		m, err := quoteLiteral(ctx, tx, mark)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "COMMENT ON EXTENSION "+ident(name)+" IS "+m)
		return err
	})
	switch {
	case err == nil:
		return nil
	case hasCode(err, "42710"): // duplicate_object: created meanwhile by someone else, so not ours
		return nil
	case hasCode(err, "58P01") || hasCode(err, "0A000"):
		// undefined_file (before PostgreSQL 16), feature_not_supported (since): the
		// server does not have the extension.
		return tenantErrorf("extension %s is not available on this server", name)
	}
	return fmt.Errorf("creating extension %s: %w", name, err)
}

// dropExtensions drops extensions, RESTRICT: objects that use one keep it. One that
// another of them needs is dropped after it.
func dropExtensions(ctx context.Context, conn *pgx.Conn, names []string) error {
	for len(names) > 0 {
		var inUse []string
		for _, e := range names {
			_, err := conn.Exec(ctx, "DROP EXTENSION IF EXISTS "+ident(e)+" RESTRICT")
			switch {
			case err == nil:
			case hasCode(err, "2BP01"): // dependent_objects_still_exist
				inUse = append(inUse, e)
			default:
				return fmt.Errorf("dropping extension %s: %w", e, err)
			}
		}
		if len(inUse) == len(names) {
			if len(inUse) == 1 {
				return tenantErrorf("extension %s cannot be dropped: objects in the database use it; drop them first, or add it back to spec.extensions", inUse[0])
			}
			return tenantErrorf("extensions %s cannot be dropped: objects in the database use them; drop those objects first, or add the extensions back to spec.extensions", strings.Join(inUse, ", "))
		}
		names = inUse
	}
	return nil
}

// connect opens an admin connection to a tenant database.
func (d *Driver) connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg := d.admin.Copy()
	cfg.Database = database
	return pgx.ConnectConfig(ctx, cfg)
}

// installedExtensions returns the extensions in the database, each with whether it
// carries mark (this capability created it).
func installedExtensions(ctx context.Context, conn *pgx.Conn, mark string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT extname, coalesce(obj_description(oid, 'pg_extension'), '') = $1::text FROM pg_extension`, mark)
	if err != nil {
		return nil, err
	}
	installed := map[string]bool{}
	var (
		name string
		ours bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &ours}, func() error {
		installed[name] = ours
		return nil
	})
	return installed, err
}

// removedExtensions are the installed extensions this capability created that spec no
// longer lists, by name.
func removedExtensions(installed map[string]bool, spec []string) []string {
	var out []string
	for e, ours := range installed {
		if ours && !slices.Contains(spec, e) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out
}

func (d *Driver) details(t *target) driver.ConnectionDetails {
	return driver.ConnectionDetails{
		DetailHost:     []byte(d.host),
		DetailPort:     []byte(strconv.Itoa(d.port)),
		DetailDatabase: []byte(t.database),
		DetailUsername: []byte(t.owner),
	}
}

// credentials are the details with a password and the uri that carries it.
func (d *Driver) credentials(t *target, password string) driver.ConnectionDetails {
	details := d.details(t)
	details[DetailPassword] = []byte(password)
	details[DetailURI] = []byte(d.uri(t, password))
	return details
}

// uri is the URL a tenant connects with.
func (d *Driver) uri(t *target, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(t.owner, password),
		Host:     net.JoinHostPort(d.host, strconv.Itoa(d.port)),
		Path:     "/" + t.database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// wrap turns an error into what the servicelet reports: a TenantError while the server
// cannot be reached, else an error for the log.
func (d *Driver) wrap(ctx context.Context, step string, t *target, err error) error {
	var te *driver.TenantError
	if errors.As(err, &te) {
		return err
	}
	if isUnreachable(ctx, err) {
		return driver.NewTenantError(msgUnreachable)
	}
	return fmt.Errorf("postgres: %s database %s on %s: %w", step, t.database, d.addr, err)
}

// isUnreachable says whether err means that the server cannot be reached (down, starting,
// shutting down, connection lost), as opposed to a refusal or a failed statement.
func isUnreachable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false // our caller gave up; not the server's fault
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.Timeout(err)
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

func hasCodePrefix(err error, prefix string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, prefix)
}

// ident quotes an identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// quoteLiteral quotes a string literal the way the server itself does (quote_literal),
// for statements that take no bind parameters (CREATE ROLE ... PASSWORD, COMMENT).
func quoteLiteral(ctx context.Context, q rowQuerier, s string) (string, error) {
	var quoted string
	err := q.QueryRow(ctx, `SELECT quote_literal($1::text)`, s).Scan(&quoted)
	return quoted, err
}

// rowQuerier is a connection, a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
