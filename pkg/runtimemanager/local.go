package runtimemanager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/postgres"
)

// LocalOptions configure the local procurement driver.
type LocalOptions struct {
	// Dir holds one folder per runtime (its PostgreSQL data, its servicelet's log).
	// Required.
	Dir string
	// Servicelet is the msp-servicelet executable. Required.
	Servicelet string
	// Access issues each servicelet its own credential. Required.
	Access *ServiceletAccess
	// Workspace and Export are handed to the servicelets.
	Workspace, Export string
	// Driver is the servicelets' driver: "postgres" (a local PostgreSQL server per
	// runtime, the default) or "test".
	Driver string
	// ExtraArgs are appended to every servicelet's arguments.
	ExtraArgs []string
	// Log is the logger.
	Log logr.Logger
}

// Local is the procurement driver of the embedded default: a runtime is a local
// PostgreSQL server with its servicelet, both children of the coordinator. After a
// restart of the coordinator, the next Order starts them again on the same data.
type Local struct {
	opts LocalOptions
	mu   sync.Mutex
	live map[string]*localRuntime
}

type localRuntime struct {
	server     *postgres.Server
	servicelet *proc
}

// NewLocal returns the local procurement driver.
func NewLocal(opts LocalOptions) (*Local, error) {
	if opts.Dir == "" || opts.Servicelet == "" {
		return nil, errors.New("runtimemanager: the local driver needs a folder and the msp-servicelet executable")
	}
	if err := opts.Access.complete(); err != nil {
		return nil, err
	}
	if opts.Driver == "" {
		opts.Driver = "postgres"
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	return &Local{opts: opts, live: map[string]*localRuntime{}}, nil
}

// Order starts the runtime's server and servicelet unless they run.
func (l *Local) Order(ctx context.Context, rt *platformv1alpha1.ServiceRuntime, _ *platformv1alpha1.ServiceRuntimeClass) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.live[rt.Name]; r != nil {
		if r.servicelet.running() {
			return nil
		}
		l.opts.Log.Info("servicelet exited; starting it again", "runtime", rt.Name)
	}
	dir := filepath.Join(l.opts.Dir, rt.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubeconfig, err := l.opts.Access.Issue(ctx, rt.Name, dir)
	if err != nil {
		return err
	}
	r := &localRuntime{}
	args := []string{
		"--kubeconfig", kubeconfig, "--workspace", l.opts.Workspace, "--export", l.opts.Export,
		"--runtime", rt.Name, "--driver", l.opts.Driver,
	}
	switch l.opts.Driver {
	case "postgres":
		srv, err := postgres.StartServer(ctx, postgres.ServerOptions{Dir: filepath.Join(dir, "postgres")})
		if err != nil {
			return fmt.Errorf("failed to start PostgreSQL for %s: %w", rt.Name, err)
		}
		r.server = srv
		urlFile := filepath.Join(dir, "admin-url")
		if err := os.WriteFile(urlFile, []byte(srv.AdminURL()), 0o600); err != nil {
			_ = srv.Stop()
			return err
		}
		args = append(args, "--postgres-url-file", urlFile)
	default:
		args = append(args, "--state-dir", filepath.Join(dir, "state"))
	}
	args = append(args, l.opts.ExtraArgs...)
	p, err := startProc(l.opts.Servicelet, args, filepath.Join(dir, "servicelet.log"))
	if err != nil {
		if r.server != nil {
			_ = r.server.Stop()
		}
		return fmt.Errorf("failed to start the servicelet of %s: %w", rt.Name, err)
	}
	r.servicelet = p
	l.live[rt.Name] = r
	l.opts.Log.Info("local runtime started", "runtime", rt.Name, "driver", l.opts.Driver)
	return nil
}

// Release stops the servicelet (letting it finish), revokes its credential, stops the
// server, and removes the runtime's folder.
func (l *Local) Release(ctx context.Context, rt *platformv1alpha1.ServiceRuntime) (bool, error) {
	l.mu.Lock()
	r := l.live[rt.Name]
	delete(l.live, rt.Name)
	l.mu.Unlock()
	if r != nil {
		r.stop()
	}
	if err := l.opts.Access.Revoke(ctx, rt.Name); err != nil {
		return false, err
	}
	if err := os.RemoveAll(filepath.Join(l.opts.Dir, rt.Name)); err != nil {
		return false, err
	}
	return true, nil
}

// Stop ends every runtime this driver runs (the coordinator is shutting down); their
// data stays for the next start.
func (l *Local) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, r := range l.live {
		r.stop()
		delete(l.live, name)
	}
}

func (r *localRuntime) stop() {
	if r.servicelet != nil {
		r.servicelet.stop()
	}
	if r.server != nil {
		_ = r.server.Stop()
	}
}
