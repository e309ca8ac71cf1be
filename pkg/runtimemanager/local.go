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
	"github.com/msp-dev/msp/sdk/launch"
	"github.com/msp-dev/msp/sdk/procurement"
)

// LocalOptions configure the local procurement driver.
type LocalOptions struct {
	// Dir holds one folder per runtime (what its servicelet keeps there, its log).
	// Required.
	Dir string
	// Servicelet is the provider's servicelet executable. Required.
	Servicelet string
	// Runtime says how the servicelet runs one runtime: its own flags. Required.
	Runtime procurement.Local
	// Credentials issues each servicelet its own credential. Required.
	Credentials *ServiceletAccess
	// Workspace and Export are handed to the servicelets.
	Workspace, Export string
	// ExtraArgs are appended to every servicelet's arguments.
	ExtraArgs []string
	// Log is the logger.
	Log logr.Logger
}

// Local is the procurement driver of the embedded default: a runtime is the provider's
// servicelet, a child of the coordinator, that runs its runtime itself (a postgres
// servicelet its PostgreSQL server). After a restart of the coordinator, the next Order
// starts it again on the same folder.
type Local struct {
	opts LocalOptions
	mu   sync.Mutex
	live map[string]*localRuntime
}

type localRuntime struct {
	servicelet *proc
}

// NewLocal returns the local procurement driver.
func NewLocal(opts LocalOptions) (*Local, error) {
	if opts.Dir == "" || opts.Servicelet == "" || opts.Runtime.Args == nil {
		return nil, errors.New("runtimemanager: the local driver needs a folder, the provider's servicelet executable and its runtime flags")
	}
	if err := opts.Credentials.complete(); err != nil {
		return nil, err
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
	kubeconfig, err := l.opts.Credentials.Issue(ctx, rt.Name, dir)
	if err != nil {
		return err
	}
	r := &localRuntime{}
	args := launch.Servicelet{
		Kubeconfig: kubeconfig, Workspace: l.opts.Workspace, Export: l.opts.Export, Runtime: rt.Name,
		Extra: append(l.opts.Runtime.Args(dir), l.opts.ExtraArgs...),
	}.Args()
	p, err := startProc(l.opts.Servicelet, args, filepath.Join(dir, "servicelet.log"))
	if err != nil {
		return fmt.Errorf("failed to start the servicelet of %s: %w", rt.Name, err)
	}
	r.servicelet = p
	l.live[rt.Name] = r
	l.opts.Log.Info("local runtime started", "runtime", rt.Name, "servicelet", filepath.Base(l.opts.Servicelet))
	return nil
}

// Release stops the servicelet (letting it finish, and stop its runtime), revokes its
// credential, lets the provider release what the runtime keeps elsewhere
// (procurement.Local.Release), and removes the runtime's folder.
func (l *Local) Release(ctx context.Context, rt *platformv1alpha1.ServiceRuntime) (bool, error) {
	l.mu.Lock()
	r := l.live[rt.Name]
	delete(l.live, rt.Name)
	l.mu.Unlock()
	if r != nil {
		r.stop()
	}
	if err := l.opts.Credentials.Revoke(ctx, rt.Name); err != nil {
		return false, err
	}
	dir := filepath.Join(l.opts.Dir, rt.Name)
	if l.opts.Runtime.Release != nil {
		if _, err := os.Stat(dir); err == nil {
			if err := l.opts.Runtime.Release(ctx, dir); err != nil {
				return false, fmt.Errorf("failed to release what runtime %s keeps outside its folder: %w", rt.Name, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
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
}
