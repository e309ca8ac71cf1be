package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
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
	"github.com/msp-dev/msp/pkg/servicelet"
)

// Keys of a PostgresDatabase's connection Secret.
const (
	DetailHost     = "host"
	DetailPort     = "port"
	DetailDatabase = "database"
	DetailUsername = "username"
	DetailPassword = "password" // only Create knows it
	DetailURI      = "uri"      // only Create knows it
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
// role per capability. It is a servicelet.Driver and a servicelet.RuntimeProbe.
//
// Every database and role it creates carries a comment that names its capability (a hash
// of workspace, namespace and name). The driver only adopts, changes and drops what
// carries its capability's mark, so a tenant cannot take over another tenant's database
// or role by choosing the same databaseName or owner: that is reported to the tenant as
// a name that is taken.
type Driver struct {
	pool  *pgxpool.Pool
	admin *pgx.ConnConfig // for connections to tenant databases
	addr  string          // host:port of AdminURL, for messages
	host  string
	port  int
}

var (
	_ servicelet.Driver       = (*Driver)(nil)
	_ servicelet.RuntimeProbe = (*Driver)(nil)
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

// Names returns the database and owner role of a PostgresDatabase, defaults applied:
// the database is named after the object (dashes become underscores), the owner after
// the database with "_owner" appended.
func Names(db *postgresv1alpha1.PostgresDatabase) (database, owner string) {
	database = db.Spec.DatabaseName
	if database == "" {
		database = strings.ReplaceAll(db.Name, "-", "_")
	}
	owner = db.Spec.Owner
	if owner == "" {
		owner = database + "_owner"
	}
	return database, owner
}

// target is what one capability asks for.
type target struct {
	database, owner string
	extensions      []string
	mark            string // comment on the database and the role
}

// maxIdentifier is PostgreSQL's identifier length (NAMEDATALEN-1); longer names are
// cut silently, so the driver would never find what it created.
const maxIdentifier = 63

func targetOf(c *servicelet.Capability) (*target, error) {
	var db postgresv1alpha1.PostgresDatabase
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.Object.Object, &db); err != nil {
		return nil, fmt.Errorf("postgres: reading the PostgresDatabase: %w", err)
	}
	t := &target{}
	t.database, t.owner = Names(&db)
	switch {
	case len(t.database) > maxIdentifier:
		return nil, servicelet.NewTenantError(fmt.Sprintf("database name %q is longer than %d characters; set spec.databaseName", t.database, maxIdentifier))
	case t.database == "postgres" || t.database == "template0" || t.database == "template1" || strings.HasPrefix(t.database, "pg_"):
		return nil, servicelet.NewTenantError(fmt.Sprintf("database name %q is reserved; set spec.databaseName", t.database))
	case len(t.owner) > maxIdentifier:
		return nil, servicelet.NewTenantError(fmt.Sprintf("owner %q is longer than %d characters; set spec.owner", t.owner, maxIdentifier))
	case isReservedRole(t.owner):
		return nil, servicelet.NewTenantError(fmt.Sprintf("owner %q is reserved; set spec.owner", t.owner))
	}
	seen := map[string]bool{}
	for _, e := range db.Spec.Extensions {
		if !seen[string(e)] {
			seen[string(e)] = true
			t.extensions = append(t.extensions, string(e))
		}
	}
	sum := sha256.Sum256([]byte(c.Cluster + "/" + db.Namespace + "/" + db.Name))
	t.mark = "msp.dev capability " + hex.EncodeToString(sum[:16])
	return t, nil
}

func isReservedRole(name string) bool {
	switch name {
	case "postgres", "public", "none", "current_user", "current_role", "session_user":
		return true
	}
	return strings.HasPrefix(name, "pg_")
}

// state is what the server has of a target.
type state struct {
	roleExists, roleOurs bool
	dbExists, dbOurs     bool
	dbOwner              string
	dbSize               int64
}

// conflict says, for the tenant, what of the target's names is taken by something else.
func (st *state) conflict(t *target) string {
	if st.roleExists && !st.roleOurs {
		return fmt.Sprintf("role %q exists on this server and belongs to something else; choose another spec.owner", t.owner)
	}
	if st.dbExists && !st.dbOurs {
		return fmt.Sprintf("database %q exists on this server and belongs to something else; choose another spec.databaseName", t.database)
	}
	return ""
}

func (d *Driver) inspect(ctx context.Context, t *target) (*state, error) {
	var (
		st               state
		roleMark, dbMark string
	)
	err := d.pool.QueryRow(ctx, `
SELECT r.oid IS NOT NULL, coalesce(shobj_description(r.oid, 'pg_authid'), ''),
       d.oid IS NOT NULL, coalesce(shobj_description(d.oid, 'pg_database'), ''),
       coalesce(pg_get_userbyid(d.datdba), ''),
       CASE WHEN d.oid IS NULL THEN 0 ELSE pg_database_size(d.oid) END
FROM (SELECT 1) AS one
LEFT JOIN pg_roles r ON r.rolname = $1
LEFT JOIN pg_database d ON d.datname = $2`, t.owner, t.database).
		Scan(&st.roleExists, &roleMark, &st.dbExists, &dbMark, &st.dbOwner, &st.dbSize)
	if err != nil {
		return nil, err
	}
	// A role is created with its mark in one transaction. A database cannot be (CREATE
	// DATABASE runs outside transactions), so an unmarked database owned by our role is
	// ours too: a creation that stopped half way.
	st.roleOurs = st.roleExists && roleMark == t.mark
	st.dbOurs = st.dbExists && (dbMark == t.mark || (dbMark == "" && st.roleOurs && st.dbOwner == t.owner))
	return &st, nil
}

// Observe reports whether the database and its owner exist, whether the owner and the
// extensions are as asked, and whether the database accepts connections.
func (d *Driver) Observe(ctx context.Context, c *servicelet.Capability) (servicelet.Observation, error) {
	t, err := targetOf(c)
	if err != nil {
		return servicelet.Observation{}, err
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return servicelet.Observation{}, d.wrap(ctx, "observing", t, err)
	}
	obs := servicelet.Observation{ConnectionDetails: d.details(t)}
	if c.Spec.ManagementPolicy == platformv1alpha1.ManagementPolicyObserveOnly {
		// Adopting an existing database only to report on it: whoever made it. The driver
		// changes nothing and tells no password, and marks still guard Update and Delete.
		st.roleOurs, st.dbOurs = st.roleExists, st.dbExists
	}
	if msg := st.conflict(t); msg != "" {
		// Not ours: as far as this capability goes, it does not exist. Create then says
		// that the name is taken, and deleting the capability leaves the other one alone.
		obs.Message = msg
		return obs, nil
	}
	if !st.dbExists || !st.roleExists {
		obs.Message = fmt.Sprintf("database %s is not created yet", t.database)
		return obs, nil
	}
	obs.Exists = true
	obs.Usage = corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(st.dbSize, resource.BinarySI)}

	var drift []string
	if st.dbOwner != t.owner {
		drift = append(drift, fmt.Sprintf("database owner is %s, want %s", st.dbOwner, t.owner))
	}
	conn, err := d.connect(ctx, t.database)
	if err != nil {
		if isUnreachable(ctx, err) {
			return servicelet.Observation{}, servicelet.NewTenantError(msgUnreachable)
		}
		obs.Message = strings.Join(append(drift, fmt.Sprintf("database %s does not accept connections", t.database)), "; ")
		obs.UpToDate = len(drift) == 0 && len(t.extensions) == 0
		return obs, nil
	}
	defer conn.Close(context.WithoutCancel(ctx))
	installed, err := extensions(ctx, conn)
	if err != nil {
		return servicelet.Observation{}, d.wrap(ctx, "observing", t, err)
	}
	for _, e := range t.extensions {
		if !installed[e] {
			drift = append(drift, fmt.Sprintf("extension %s is missing", e))
		}
	}
	obs.UpToDate = len(drift) == 0
	obs.Ready = true
	obs.Message = strings.Join(drift, "; ")
	return obs, nil
}

// Create creates the owner role with a new password (or gives an existing one a new
// password, since the old one is unknown), the database owned by it and closed to
// everyone else, and the extensions. It returns the credentials.
func (d *Driver) Create(ctx context.Context, c *servicelet.Capability) (servicelet.ConnectionDetails, error) {
	t, err := targetOf(c)
	if err != nil {
		return nil, err
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}
	if msg := st.conflict(t); msg != "" {
		return nil, servicelet.NewTenantError(msg)
	}
	password := randomPassword()
	if err := d.ensureRole(ctx, t, st, password); err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}
	if !st.dbExists {
		_, err := d.pool.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", ident(t.database), ident(t.owner)))
		if err != nil && !hasCode(err, "42P04") { // duplicate_database: created meanwhile
			return nil, d.wrap(ctx, "creating", t, err)
		}
	}
	if err := d.ensureDatabase(ctx, t); err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}
	if err := d.ensureExtensions(ctx, t); err != nil {
		return nil, d.wrap(ctx, "creating", t, err)
	}

	details := d.details(t)
	details[DetailPassword] = []byte(password)
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(t.owner, password),
		Host:     net.JoinHostPort(d.host, strconv.Itoa(d.port)),
		Path:     "/" + t.database,
		RawQuery: "sslmode=disable",
	}
	details[DetailURI] = []byte(u.String())
	return details, nil
}

// Update gives the database its owner back and creates missing extensions. It drops
// nothing: extensions removed from the spec stay installed.
func (d *Driver) Update(ctx context.Context, c *servicelet.Capability) error {
	t, err := targetOf(c)
	if err != nil {
		return err
	}
	st, err := d.inspect(ctx, t)
	if err != nil {
		return d.wrap(ctx, "updating", t, err)
	}
	if msg := st.conflict(t); msg != "" {
		return servicelet.NewTenantError(msg)
	}
	if !st.dbExists || !st.roleExists {
		return nil // the next Observe says so, and Create finishes the job
	}
	if err := d.ensureDatabase(ctx, t); err != nil {
		return d.wrap(ctx, "updating", t, err)
	}
	if err := d.ensureExtensions(ctx, t); err != nil {
		return d.wrap(ctx, "updating", t, err)
	}
	return nil
}

// Delete ends the database's sessions and drops the database and its owner role. It
// leaves alone what is not this capability's (see Driver).
func (d *Driver) Delete(ctx context.Context, c *servicelet.Capability) error {
	t, err := targetOf(c)
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
		if st.roleExists {
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

func (d *Driver) ensureExtensions(ctx context.Context, t *target) error {
	if len(t.extensions) == 0 {
		return nil
	}
	conn, err := d.connect(ctx, t.database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	installed, err := extensions(ctx, conn)
	if err != nil {
		return err
	}
	for _, e := range t.extensions {
		if installed[e] {
			continue
		}
		if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+ident(e)); err != nil {
			// undefined_file (before PostgreSQL 16), feature_not_supported (since): the
			// server does not have the extension.
			if hasCode(err, "58P01") || hasCode(err, "0A000") {
				return servicelet.NewTenantError(fmt.Sprintf("extension %s is not available on this server", e))
			}
			return fmt.Errorf("creating extension %s: %w", e, err)
		}
	}
	return nil
}

// connect opens an admin connection to a tenant database.
func (d *Driver) connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg := d.admin.Copy()
	cfg.Database = database
	return pgx.ConnectConfig(ctx, cfg)
}

func extensions(ctx context.Context, conn *pgx.Conn) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT extname FROM pg_extension`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	installed := make(map[string]bool, len(names))
	for _, n := range names {
		installed[n] = true
	}
	return installed, nil
}

func (d *Driver) details(t *target) servicelet.ConnectionDetails {
	return servicelet.ConnectionDetails{
		DetailHost:     []byte(d.host),
		DetailPort:     []byte(strconv.Itoa(d.port)),
		DetailDatabase: []byte(t.database),
		DetailUsername: []byte(t.owner),
	}
}

// wrap turns an error into what the servicelet reports: a TenantError while the server
// cannot be reached, else an error for the log.
func (d *Driver) wrap(ctx context.Context, step string, t *target, err error) error {
	var te *servicelet.TenantError
	if errors.As(err, &te) {
		return err
	}
	if isUnreachable(ctx, err) {
		return servicelet.NewTenantError(msgUnreachable)
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
