// Command msp-bootstrap applies msp's workspace tree and APIExports to a running kcp,
// idempotently. `make run` does the same on its local kcp; use this one for a kcp you
// run yourself (see deploy/).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

func main() {
	opts := defaultOptions()
	opts.AddFlags(pflag.CommandLine)
	pflag.Parse()
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "msp-bootstrap:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "msp-bootstrap:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts *options) error {
	cfg, err := kcpconfig.Load(opts.Kubeconfig, opts.Context)
	if err != nil {
		return err
	}
	res, err := bootstrap.Run(ctx, bootstrap.Options{Config: cfg, Timeout: opts.Timeout, Log: zap.New().WithName("bootstrap")})
	for _, a := range res.Applied {
		fmt.Println(a)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%d objects, %d created or updated\n", len(res.Applied), len(res.Changed()))
	return nil
}
