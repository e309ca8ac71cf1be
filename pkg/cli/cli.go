// Package cli is the common shape of msp's long-running commands: logging flags, flag
// validation, a context that ends on SIGINT or SIGTERM, and exit codes (2 for bad flags,
// 1 for a failure).
package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Main adds the logging flags to the command line, parses it, calls validate, and runs fn
// until it returns or a signal ends its context. The command's own flags must be added to
// pflag.CommandLine before.
func Main(name string, validate func() error, fn func(ctx context.Context, log logr.Logger) error) {
	zapOpts := zap.Options{}
	goflags := flag.NewFlagSet("log", flag.ExitOnError)
	zapOpts.BindFlags(goflags)
	pflag.CommandLine.AddGoFlagSet(goflags)
	pflag.Parse()
	if err := validate(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := fn(ctx, zap.New(zap.UseFlagOptions(&zapOpts))); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		stop()
		os.Exit(1)
	}
}

// NeverIfZero maps a duration flag where 0 turns a feature off onto a library option
// where 0 takes the default and a negative value turns it off.
func NeverIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
