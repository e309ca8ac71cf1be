// Package postgresserver is the provider of PostgreSQL servers (API group hosting.msp.dev,
// kind PostgresServer), formerly "the hosting provider". Its servicelet driver: each PostgresServer
// capability is a PostgreSQL server of its own on the host the servicelet runs on, and
// its connection Secret carries the superuser's credentials. The postgres provider orders
// its runtimes this way when its runtime class uses the cascading procurement driver.
package postgresserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"

	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/sdk/driver"
)

// Driver keeps one local PostgreSQL server per capability under a folder.
type Driver struct {
	dir     string
	mu      sync.Mutex
	servers map[string]*pgserver.Server
}

// New returns a driver that keeps its servers under dir.
func New(dir string) (*Driver, error) {
	if dir == "" {
		return nil, errors.New("postgresserver: a folder for the servers is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Driver{dir: dir, servers: map[string]*pgserver.Server{}}, nil
}

func (d *Driver) key(c *driver.Capability) string {
	return c.Cluster + "_" + c.Object.GetNamespace() + "_" + c.Object.GetName()
}

func (d *Driver) serverDir(c *driver.Capability) string {
	return filepath.Join(d.dir, d.key(c))
}

// Observe reports a server that exists (its folder does) and whether it answers. One that
// exists but does not run (the servicelet restarted) is not up to date, so Update starts
// it again.
//
// The connection Secret's credentials (the superuser's uri) are always the driver's to
// restore: the server keeps its superuser password in its folder, so Observe returns the
// whole of the connection details of a running server, whatever the Secret says
// (c.ConnectionDetails), and a Secret that lost or changed them is written again. It so
// never reports CredentialsInvalid. While the server does not run it returns no details,
// and the Secret stays as it is until Update has started the server.
func (d *Driver) Observe(ctx context.Context, c *driver.Capability) (driver.Observation, error) {
	if _, err := os.Stat(d.serverDir(c)); errors.Is(err, os.ErrNotExist) {
		return driver.Observation{}, nil
	}
	d.mu.Lock()
	srv := d.servers[d.key(c)]
	d.mu.Unlock()
	if srv == nil {
		return driver.Observation{Exists: true, Message: "the server is not running"}, nil
	}
	obs := driver.Observation{Exists: true, UpToDate: true, ConnectionDetails: details(srv)}
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(pingCtx, srv.AdminURL())
	if err != nil {
		obs.Message = "the server does not accept connections yet"
		if !srv.Running() {
			// Stopped behind the driver's back (a crash, an operator): Update starts it.
			obs.UpToDate, obs.Message = false, "the server is not running"
		}
		return obs, nil
	}
	_ = conn.Close(pingCtx)
	obs.Ready = true
	obs.Usage = corev1.ResourceList{}
	return obs, nil
}

// Create starts a new server and returns its superuser's credentials.
func (d *Driver) Create(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	srv, err := d.start(ctx, c)
	if err != nil {
		return nil, err
	}
	return details(srv), nil
}

// Update starts the server again when it does not run.
func (d *Driver) Update(ctx context.Context, c *driver.Capability) error {
	_, err := d.start(ctx, c)
	return err
}

// Delete stops the server and removes its data.
func (d *Driver) Delete(_ context.Context, c *driver.Capability) error {
	d.mu.Lock()
	srv := d.servers[d.key(c)]
	delete(d.servers, d.key(c))
	d.mu.Unlock()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			return err
		}
	}
	return os.RemoveAll(d.serverDir(c))
}

// Probe: the host is usable while the servicelet runs.
func (d *Driver) Probe(context.Context) error { return nil }

// Stop stops every server this driver runs; their data stays for the next start.
func (d *Driver) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, srv := range d.servers {
		_ = srv.Stop()
		delete(d.servers, k)
	}
}

func (d *Driver) start(ctx context.Context, c *driver.Capability) (*pgserver.Server, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if srv := d.servers[d.key(c)]; srv != nil && srv.Running() {
		return srv, nil
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: d.serverDir(c)})
	if err != nil {
		return nil, fmt.Errorf("failed to start a PostgreSQL server: %w", err)
	}
	d.servers[d.key(c)] = srv
	return srv, nil
}

// details are the connection details of a server, its superuser's uri included.
func details(srv *pgserver.Server) driver.ConnectionDetails {
	return driver.ConnectionDetails{
		"host":     []byte(srv.Host()),
		"port":     []byte(strconv.Itoa(srv.Port())),
		"username": []byte("postgres"),
		"uri":      []byte(srv.AdminURL()),
	}
}
