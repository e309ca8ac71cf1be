package main

import (
	"errors"
	"time"

	"github.com/spf13/pflag"
)

// options configure msp-bootstrap.
type options struct {
	// Kubeconfig points at the kcp server (any workspace; the bootstrap addresses root itself).
	Kubeconfig string
	// Context is the kubeconfig context to use; empty for the current one.
	Context string
	// Timeout bounds each wait.
	Timeout time.Duration
}

func defaultOptions() *options { return &options{Timeout: 2 * time.Minute} }

// AddFlags binds the options to flags.
func (o *options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of a kcp admin (defaults to $KUBECONFIG).")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context (defaults to the current one).")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for any one workspace or API.")
}

// Validate checks the options.
func (o *options) Validate() error {
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	return nil
}
