package postgresserver

import (
	"context"
	"errors"

	"github.com/spf13/pflag"

	hostingv1alpha1 "github.com/msp-dev/msp/apis/hosting/v1alpha1"
	"github.com/msp-dev/msp/app/servicelet"
	"github.com/msp-dev/msp/sdk/capability"
)

// Kinds are the provider's capability kinds.
var Kinds = []capability.Kind{{GVK: hostingv1alpha1.SchemeGroupVersion.WithKind("PostgresServer")}}

// Defaults of the provider's workspace and export.
const (
	Workspace = "root:providers:hosting"
	Export    = "hosting.msp.dev"
)

// ServiceletOptions are the servicelet's own flags.
type ServiceletOptions struct {
	// Dir holds the servers' folders.
	Dir string
}

// AddFlags binds the options to flags.
func (o *ServiceletOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "servers-dir", o.Dir, "Folder of the PostgreSQL servers this servicelet runs, one per PostgresServer. Required.")
}

// Validate checks the options.
func (o *ServiceletOptions) Validate() error {
	if o.Dir == "" {
		return errors.New("--servers-dir is required")
	}
	return nil
}

// Start returns the driver.
func (o *ServiceletOptions) Start(_ context.Context, env servicelet.Env) (*servicelet.Runtime, error) {
	d, err := New(o.Dir)
	if err != nil {
		return nil, err
	}
	return &servicelet.Runtime{Drivers: servicelet.OneDriver(d, env.Kinds), Probe: d, Close: d.Stop}, nil
}

// Servicelet is the provider's servicelet.
func Servicelet(o *ServiceletOptions) servicelet.Provider {
	return servicelet.Provider{
		Name: "postgresserver-servicelet", Workspace: Workspace, Export: Export, Kinds: Kinds,
		AddFlags: o.AddFlags, Validate: o.Validate, Start: o.Start,
	}
}
