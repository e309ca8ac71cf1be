// Package pgservertest starts local PostgreSQL servers for tests.
package pgservertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msp-dev/msp/pkg/pgserver"
)

// Start starts a PostgreSQL server for a test (in a temporary folder unless opts names
// one) and stops it when the test ends. Without PostgreSQL installed the test fails and
// says to run hack/install-postgres.sh.
func Start(t testing.TB, opts pgserver.Options) *pgserver.Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, opts)
	if errors.Is(err, pgserver.ErrNotInstalled) {
		t.Fatalf("these tests need a PostgreSQL server installed: run hack/install-postgres.sh (%v)", err)
	}
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping PostgreSQL: %v", err)
		}
	})
	return srv
}

// Connect opens a connection for a test and closes it when the test ends.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}
