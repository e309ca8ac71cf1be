package fileshare

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/app/servicelet"
	fsv1alpha1 "github.com/msp-dev/msp/examples/fileshare/apis/v1alpha1"
	"github.com/msp-dev/msp/sdk/capability"
)

// Kinds are the provider's kinds. A FileShare asks nothing of its runtime beyond its
// slot and what the tenant writes in spec.resources.
var Kinds = []capability.Kind{{GVK: fsv1alpha1.SchemeGroupVersion.WithKind("FileShare")}}

// Options are the fileshare servicelet's own flags.
type Options struct {
	// Dir holds the shares.
	Dir string
	// Listen is the address of the HTTP server (port 0: a free one).
	Listen string
	// PublicURL is how tenants reach the HTTP server; defaults to http://<listen address>.
	PublicURL string
}

// AddFlags binds the options to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "shares-dir", o.Dir, "Folder of the shares. Required.")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "Address the shares are served on (port 0: a free one).")
	fs.StringVar(&o.PublicURL, "public-url", o.PublicURL, "URL tenants reach the shares at (defaults to http:// and the listen address).")
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Dir == "" {
		return errors.New("--shares-dir is required")
	}
	return nil
}

// Start opens the HTTP server and returns the driver.
func (o *Options) Start(_ context.Context, env servicelet.Env) (*servicelet.Runtime, error) {
	l, err := Listen(o.Listen)
	if err != nil {
		return nil, err
	}
	base := o.PublicURL
	if base == "" {
		base = "http://" + l.Addr().String()
	}
	d, err := NewDriver(o.Dir, base)
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	env.Log.Info("serving shares", "url", base)
	return &servicelet.Runtime{
		Drivers: servicelet.OneDriver(d, env.Kinds),
		Probe:   d,
		Close: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		},
	}, nil
}

// Servicelet is the fileshare provider's servicelet.
func Servicelet(o *Options) servicelet.Provider {
	return servicelet.Provider{
		Name: "fileshare-servicelet", Workspace: "root:providers:fileshare", Export: fsv1alpha1.GroupName, Kinds: Kinds,
		AddFlags: o.AddFlags, Validate: o.Validate, Start: o.Start,
	}
}
