// Command msp-coordinator is a provider's service coordinator: the scheduler that places
// every capability of every bound tenant workspace on a ServiceRuntime that fits it.
// It talks to kcp only.
package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/pkg/cli"
	"github.com/msp-dev/msp/pkg/coordinator"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/runtimemanager"
)

func main() {
	opts := defaultOptions()
	opts.AddFlags(pflag.CommandLine)
	cli.Main("msp-coordinator", opts.Validate, func(ctx context.Context, log logr.Logger) error {
		return run(ctx, opts, log)
	})
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
	providerCfg := kcpconfig.ForWorkspace(cfg, opts.Workspace)
	var access *runtimemanager.ServiceletAccess
	if opts.FrontDoorURL != "" {
		access = &runtimemanager.ServiceletAccess{Config: providerCfg, FrontDoorURL: opts.FrontDoorURL, TokenTTL: opts.ServiceletTTL}
		if opts.FrontDoorCAFile != "" {
			if access.CA, err = os.ReadFile(opts.FrontDoorCAFile); err != nil {
				return err
			}
		}
	}
	var local *runtimemanager.LocalOptions
	if opts.LocalDir != "" {
		local = &runtimemanager.LocalOptions{
			Dir: opts.LocalDir, Servicelet: servicelet, Access: access,
			Workspace: opts.Workspace, Export: opts.Export,
			Driver: opts.LocalDriver, ExtraArgs: opts.LocalArgs, Log: logger.WithName("local-runtimes"),
		}
	}
	var cascading *runtimemanager.CascadingOptions
	if opts.CascadingDir != "" {
		cascading = &runtimemanager.CascadingOptions{
			Dir: opts.CascadingDir, Servicelet: servicelet, Access: access,
			Workspace: opts.Workspace, Export: opts.Export,
			ExtraArgs: opts.LocalArgs, Log: logger.WithName("cascaded-runtimes"),
		}
	}
	return coordinator.Run(ctx, coordinator.Options{
		RuntimeManager:         opts.RuntimeManager,
		RuntimeManagerInterval: opts.ManagerInterval,
		ScaleDownCooldown:      opts.ScaleDownCooldown,
		Local:                  local,
		Cascading:              cascading,
		Config:                 providerCfg,
		Export:                 opts.Export,
		EndpointSlice:          opts.EndpointSlice,
		Kinds:                  opts.gvks,
		HeartbeatTimeout:       opts.HeartbeatTimeout,
		HeartbeatLagTolerance:  cli.NeverIfZero(opts.LagTolerance),
		ScoreWeights:           opts.weights,
		SchedulerWorkers:       opts.Workers,
		NormalEvents:           opts.NormalEvents,
		MetricsAddr:            opts.MetricsAddr,
		HealthAddr:             opts.HealthAddr,
		PprofAddr:              opts.PprofAddr,
		LeaderElection:         opts.LeaderElect,
		Log:                    logger,
	})
}
