package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/app/servicelet"
	"github.com/msp-dev/msp/pkg/pgserver"
	sdkcapability "github.com/msp-dev/msp/sdk/capability"
)

// Kinds are the provider's capability kinds: a PostgresDatabase asks its server for its
// size as storage.
var Kinds = []sdkcapability.Kind{{GVK: GroupKind.WithVersion(""), Requests: Requests}}

// Defaults of the provider's workspace and export.
const (
	Workspace = "root:providers:postgres"
	Export    = "postgres.msp.dev"
)

// ServiceletOptions are the postgres servicelet's own flags: which PostgreSQL server is
// its runtime.
type ServiceletOptions struct {
	// URL is the admin connection URL of a server someone else runs.
	URL string
	// URLFile holds URL (arguments are visible to other users of the machine).
	URLFile string
	// LocalServerDir makes the runtime a PostgreSQL server this servicelet runs itself,
	// with its data in this folder (kept across restarts).
	LocalServerDir string
}

// AddFlags binds the options to flags.
func (o *ServiceletOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.URL, "postgres-url", o.URL, "Admin connection URL of the runtime's PostgreSQL server (prefer --postgres-url-file: arguments are visible to other users).")
	fs.StringVar(&o.URLFile, "postgres-url-file", o.URLFile, "File holding the admin connection URL of the runtime's PostgreSQL server.")
	fs.StringVar(&o.LocalServerDir, "local-server-dir", o.LocalServerDir, "Run the runtime's PostgreSQL server as a child of this servicelet, with its data in this folder (the local procurement driver's runtimes).")
}

// Validate checks that exactly one server is named.
func (o *ServiceletOptions) Validate() error {
	n := 0
	for _, v := range []string{o.URL, o.URLFile, o.LocalServerDir} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("name the runtime's PostgreSQL server with exactly one of --postgres-url, --postgres-url-file and --local-server-dir")
	}
	return nil
}

// Start connects the driver to the server, starting it first with --local-server-dir.
func (o *ServiceletOptions) Start(ctx context.Context, env servicelet.Env) (*servicelet.Runtime, error) {
	adminURL := o.URL
	var srv *pgserver.Server
	switch {
	case o.URLFile != "":
		raw, err := os.ReadFile(o.URLFile)
		if err != nil {
			return nil, fmt.Errorf("--postgres-url-file: %w", err)
		}
		adminURL = strings.TrimSpace(string(raw))
	case o.LocalServerDir != "":
		var err error
		if srv, err = pgserver.Start(ctx, pgserver.Options{Dir: o.LocalServerDir}); err != nil {
			return nil, fmt.Errorf("failed to start the runtime's PostgreSQL server: %w", err)
		}
		adminURL = srv.AdminURL()
		env.Log.Info("runtime's PostgreSQL server started", "dir", o.LocalServerDir, "port", srv.Port())
	}
	d, err := NewDriver(ctx, DriverOptions{AdminURL: adminURL})
	if err != nil {
		if srv != nil {
			_ = srv.Stop()
		}
		return nil, err
	}
	return &servicelet.Runtime{
		Drivers: servicelet.OneDriver(d, env.Kinds),
		Probe:   d,
		Close: func() {
			d.Close()
			if srv != nil {
				_ = srv.Stop()
			}
		},
	}, nil
}

// Servicelet is the postgres provider's servicelet.
func Servicelet(o *ServiceletOptions) servicelet.Provider {
	return servicelet.Provider{
		Name: "postgres-servicelet", Workspace: Workspace, Export: Export, Kinds: Kinds,
		AddFlags: o.AddFlags, Validate: o.Validate, Start: o.Start,
	}
}
