// Command msp-coordinator is a provider's service coordinator: the scheduler that places
// every capability of every bound tenant workspace on a ServiceRuntime that fits it.
// It talks to kcp only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/msp-dev/msp/pkg/coordinator"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/runtimemanager"
)

func main() {
	opts := defaultOptions()
	opts.AddFlags(pflag.CommandLine)
	zapOpts := zap.Options{}
	goflags := flag.NewFlagSet("log", flag.ExitOnError)
	zapOpts.BindFlags(goflags)
	pflag.CommandLine.AddGoFlagSet(goflags)
	pflag.Parse()
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "msp-coordinator:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, zap.New(zap.UseFlagOptions(&zapOpts))); err != nil {
		fmt.Fprintln(os.Stderr, "msp-coordinator:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts *options, logger logr.Logger) error {
	cfg, err := kcpconfig.Load(opts.Kubeconfig, opts.Context)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	servicelet := filepath.Join(filepath.Dir(exe), "msp-servicelet")
	kubeconfig := opts.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	var local *runtimemanager.LocalOptions
	if opts.LocalDir != "" {
		local = &runtimemanager.LocalOptions{
			Dir: opts.LocalDir, Servicelet: servicelet,
			Kubeconfig: kubeconfig, Workspace: opts.Workspace, Export: opts.Export,
			Driver: opts.LocalDriver, ExtraArgs: opts.LocalArgs, Log: logger.WithName("local-runtimes"),
		}
	}
	var cascading *runtimemanager.CascadingOptions
	if opts.CascadingDir != "" {
		cascading = &runtimemanager.CascadingOptions{
			Dir: opts.CascadingDir, Servicelet: servicelet,
			Kubeconfig: kubeconfig, Workspace: opts.Workspace, Export: opts.Export,
			ExtraArgs: opts.LocalArgs, Log: logger.WithName("cascaded-runtimes"),
		}
	}
	return coordinator.Run(ctx, coordinator.Options{
		RuntimeManager:         opts.RuntimeManager,
		RuntimeManagerInterval: opts.ManagerInterval,
		ScaleDownCooldown:      opts.ScaleDownCooldown,
		Local:                  local,
		Cascading:              cascading,
		Config:                 kcpconfig.ForWorkspace(cfg, opts.Workspace),
		Export:                 opts.Export,
		EndpointSlice:          opts.EndpointSlice,
		Kinds:                  opts.gvks,
		HeartbeatTimeout:       opts.HeartbeatTimeout,
		ScoreWeights:           opts.weights,
		MetricsAddr:            opts.MetricsAddr,
		HealthAddr:             opts.HealthAddr,
		PprofAddr:              opts.PprofAddr,
		LeaderElection:         opts.LeaderElect,
		Log:                    logger,
	})
}
