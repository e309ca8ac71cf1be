package main

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
)

// options configure msp-local, the embedded default behind `make run`.
type options struct {
	// Home is the local state folder: kcp's data, its log, the kubeconfig handed to users.
	Home string
	// KCPBinary is the kcp executable.
	KCPBinary string
	// Port is kcp's HTTPS port (with more than one shard, the front proxy's); 0 picks a
	// free one on first start and keeps it after.
	Port int
	// Shards is the number of kcp shards: 1 runs one kcp; more run a root shard and
	// shard-1 ... with kcp's cache server and front proxy (launcher.Options.Shards).
	Shards int
	// BootstrapTimeout bounds each wait of the bootstrap.
	BootstrapTimeout time.Duration
	// Exit stops everything right after the platform is up (for scripts and tests).
	Exit bool
}

func defaultOptions() *options {
	return &options{Home: ".msp", KCPBinary: "kcp", Shards: 1, BootstrapTimeout: 2 * time.Minute}
}

// AddFlags binds the options to flags.
func (o *options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Home, "home", o.Home, "Local state folder (kcp data, logs, kubeconfig). Running again on the same folder resumes.")
	fs.StringVar(&o.KCPBinary, "kcp", o.KCPBinary, "kcp executable (built by 'make tools' into _bin).")
	fs.IntVar(&o.Port, "port", o.Port, "kcp HTTPS port on 127.0.0.1 (with --shards > 1, the front proxy's); 0 picks a free one on first start and keeps it.")
	fs.IntVar(&o.Shards, "shards", o.Shards, "Number of kcp shards (1 to 4). More than 1 runs a root shard, shard-1 ..., kcp's cache server and its front proxy, which clients use. A home keeps the number it was first started with (it may grow).")
	fs.DurationVar(&o.BootstrapTimeout, "bootstrap-timeout", o.BootstrapTimeout, "How long the bootstrap waits for any one workspace or API.")
	fs.BoolVar(&o.Exit, "exit-when-ready", o.Exit, "Stop everything once the platform is up, instead of running until Ctrl-C.")
}

// Validate checks the options.
func (o *options) Validate() error {
	var errs []error
	if o.Home == "" {
		errs = append(errs, errors.New("--home must not be empty"))
	}
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, errors.New("--port must be between 0 and 65535"))
	}
	if o.Shards < 1 || o.Shards > 4 {
		errs = append(errs, errors.New("--shards must be between 1 and 4"))
	}
	if o.BootstrapTimeout <= 0 {
		errs = append(errs, errors.New("--bootstrap-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Complete fills in derived values.
func (o *options) Complete() error {
	home, err := filepath.Abs(o.Home)
	if err != nil {
		return err
	}
	o.Home = home
	return nil
}
