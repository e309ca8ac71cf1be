package framework

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/msp-dev/msp/pkg/pgserver"
)

// PostgresRuntime is a runtime that is a real local PostgreSQL server, with its servicelet.
type PostgresRuntime struct {
	*Servicelet
	Server *pgserver.Server
	dir    string
}

// StartPostgresRuntime starts a PostgreSQL server of its own and a servicelet with the
// postgres provider's servicelet for it, registering the runtime; both stop when the test ends.
func (p *Provider) StartPostgresRuntime(t testing.TB, spec ServiceletSpec) *PostgresRuntime {
	t.Helper()
	dir := t.TempDir()
	r := &PostgresRuntime{dir: dir}
	r.startServer(t)
	urlFile := filepath.Join(dir, "admin-url")
	if err := os.WriteFile(urlFile, []byte(r.Server.AdminURL()), 0o600); err != nil {
		t.Fatal(err)
	}
	spec.Args = append([]string{"--postgres-url-file", urlFile}, spec.Args...)
	r.Servicelet = p.StartProviderServicelet(t, "postgres-servicelet", spec)
	return r
}

func (r *PostgresRuntime) startServer(t testing.TB) {
	t.Helper()
	srv, err := pgserver.Start(context.Background(), pgserver.Options{Dir: filepath.Join(r.dir, "postgres")})
	if err != nil {
		t.Fatalf("failed to start PostgreSQL: %v", err)
	}
	r.Server = srv
	t.Cleanup(func() { _ = srv.Stop() })
}

// StopServer stops the runtime's PostgreSQL server, as an outage would.
func (r *PostgresRuntime) StopServer(t testing.TB) {
	t.Helper()
	if err := r.Server.Stop(); err != nil {
		t.Fatalf("failed to stop PostgreSQL: %v", err)
	}
}

// StartServerAgain starts the stopped server on the same data, port and password.
func (r *PostgresRuntime) StartServerAgain(t testing.TB) {
	t.Helper()
	r.startServer(t)
}
