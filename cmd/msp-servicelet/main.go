// Command msp-servicelet runs next to one service runtime. It connects outbound to the
// provider's APIExport virtual workspace, reconciles only the capabilities assigned to
// its runtime, and keeps the runtime's ServiceRuntime twin true.
package main

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/cli"
	"github.com/msp-dev/msp/pkg/coordinator"
	"github.com/msp-dev/msp/pkg/hosting"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/postgres"
	"github.com/msp-dev/msp/pkg/servicelet"
	"github.com/msp-dev/msp/pkg/servicelet/testdriver"
)

func main() {
	opts := defaultOptions()
	opts.AddFlags(pflag.CommandLine)
	cli.Main("msp-servicelet", opts.Validate, func(ctx context.Context, log logr.Logger) error {
		return run(ctx, opts, log)
	})
}

func run(ctx context.Context, opts *options, log logr.Logger) error {
	cfg, err := kcpconfig.Load(opts.Kubeconfig, opts.Context)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	providerCfg := kcpconfig.ForWorkspace(cfg, opts.Workspace)

	// The export's kinds; kcp may be down at start, so keep asking.
	var exported []coordinator.ExportedKind
	for {
		if exported, err = coordinator.DiscoverKinds(ctx, providerCfg, opts.Export); err == nil {
			break
		}
		log.Info("waiting for the provider's APIExport", "err", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-sleep():
		}
	}
	var kinds []servicelet.Kind
	var hosted []platformv1alpha1.CapabilityKind
	for _, k := range exported {
		sk := servicelet.Kind{GVK: k.GVK, Resource: k.Resource}
		if k.GVK.GroupKind() == postgres.GroupKind {
			sk.ExtraRequests = postgres.Requests
		}
		kinds = append(kinds, sk)
		hosted = append(hosted, platformv1alpha1.CapabilityKind{Group: k.GVK.Group, Kind: k.GVK.Kind})
	}

	var driver interface {
		servicelet.Driver
		servicelet.RuntimeProbe
	}
	switch opts.Driver {
	case "postgres":
		pg, err := postgres.NewDriver(ctx, postgres.DriverOptions{AdminURL: opts.PostgresURL})
		if err != nil {
			return err
		}
		defer pg.Close()
		driver = pg
	case "hosting":
		h, err := hosting.New(opts.HostingDir)
		if err != nil {
			return err
		}
		defer h.Stop()
		driver = h
	default:
		td, err := testdriver.New(testdriver.Options{Dir: opts.StateDir, Runtime: opts.Runtime, ProvisionDelay: opts.ProvisionDelay})
		if err != nil {
			return err
		}
		driver = td
	}
	s, err := servicelet.New(servicelet.Options{
		Config:            providerCfg,
		EndpointSlice:     opts.EndpointSlice,
		Runtime:           opts.Runtime,
		Register:          opts.registration(hosted),
		Kinds:             kinds,
		Driver:            driver,
		Probe:             driver,
		HeartbeatInterval: opts.HeartbeatInterval,
		Resync:            opts.Resync,
		Workers:           opts.Workers,
		NormalEvents:      opts.NormalEvents,
		DebugAddr:         opts.DebugAddr,
		Log:               log,
	})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func sleep() <-chan time.Time { return time.After(2 * time.Second) }
