package main

import (
	"errors"
	"net"
	"time"

	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/pkg/frontdoor"
)

// options configure msp-frontdoor.
type options struct {
	Kubeconfig         string
	Context            string
	Workspace          string
	Export             string
	BindAddress        string
	PublicURL          string
	TLSCertFile        string
	TLSKeyFile         string
	Audience           string
	MaxTokenExpiration time.Duration
	CoordinatorUser    string
}

func defaultOptions() *options {
	return &options{
		Workspace:          "root:providers:postgres",
		Export:             "postgres.msp.dev",
		BindAddress:        "127.0.0.1:7443",
		Audience:           frontdoor.DefaultAudience,
		MaxTokenExpiration: time.Hour,
	}
}

// AddFlags binds the options to flags.
func (o *options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the front door's own kcp identity (defaults to $KUBECONFIG).")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context.")
	fs.StringVar(&o.Workspace, "workspace", o.Workspace, "The provider workspace (its APIExport, endpoint slice, ServiceRuntimes and the servicelets' ServiceAccounts live there).")
	fs.StringVar(&o.Export, "export", o.Export, "The provider's APIExport; also the name of its APIExportEndpointSlice.")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "Address to serve HTTPS on.")
	fs.StringVar(&o.PublicURL, "public-url", o.PublicURL, "URL servicelets dial, written into the endpoint slice they read (defaults to https://<bind-address>).")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "Serving certificate (PEM); read again when it changes. Required.")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", o.TLSKeyFile, "Serving key (PEM). Required.")
	fs.StringVar(&o.Audience, "audience", o.Audience, "Audience the servicelets' tokens must be issued for (kcp refuses tokens of this audience itself).")
	fs.DurationVar(&o.MaxTokenExpiration, "max-token-expiration", o.MaxTokenExpiration, "Longest lifetime of the tokens servicelets request for themselves (kcp's minimum is 10m).")
	fs.StringVar(&o.CoordinatorUser, "coordinator-user", o.CoordinatorUser, "kcp username of the provider's coordinator, whose writes the admission webhook (served at /admission/) always allows. Empty: nobody's.")
}

// Validate checks the options and fills in the defaults that depend on others.
func (o *options) Validate() error {
	var errs []error
	if o.TLSCertFile == "" || o.TLSKeyFile == "" {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file are required: the front door serves HTTPS only"))
	}
	if o.Workspace == "" || o.Export == "" {
		errs = append(errs, errors.New("--workspace and --export are required"))
	}
	if _, _, err := net.SplitHostPort(o.BindAddress); err != nil {
		errs = append(errs, errors.New("--bind-address must be host:port, e.g. 127.0.0.1:7443"))
	}
	if o.MaxTokenExpiration < 10*time.Minute {
		errs = append(errs, errors.New("--max-token-expiration must be at least 10m, kcp's minimum token lifetime"))
	}
	if o.Audience == "" {
		errs = append(errs, errors.New("--audience must not be empty"))
	}
	if o.PublicURL == "" {
		o.PublicURL = "https://" + o.BindAddress
	}
	return errors.Join(errs...)
}
