// Package servicelet is the entry point of a provider's servicelet binary. A provider's
// main.go names its kinds, its flags and how to build its drivers; Main does the rest:
// msp's common flags, the connection to kcp, discovering the export's kinds, the shared
// reconciler, the runtime's twin and its heartbeat.
//
//	func main() {
//		servicelet.Main(servicelet.Provider{
//			Name:      "redis-servicelet",
//			Workspace: "root:providers:redis", Export: "redis.example.dev",
//			Kinds:     []capability.Kind{{GVK: redisv1alpha1.SchemeGroupVersion.WithKind("RedisCache")}},
//			AddFlags:  opts.AddFlags,
//			Start:     opts.Start,
//		})
//	}
package servicelet

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/cli"
	"github.com/msp-dev/msp/pkg/exports"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	slet "github.com/msp-dev/msp/pkg/servicelet"
	"github.com/msp-dev/msp/sdk/capability"
	"github.com/msp-dev/msp/sdk/driver"
)

// Provider is what a provider's servicelet is made of.
type Provider struct {
	// Name names the binary in its messages, e.g. "postgres-servicelet". Required.
	Name string
	// Workspace and Export are the defaults of --workspace (the provider workspace) and
	// --export (the provider's APIExport).
	Workspace, Export string
	// Kinds are the provider's capability kinds, with what one object requests of its
	// runtime (the servicelet reports the sum as the runtime's status.allocated, as the
	// scheduler counts). The version may be left empty: the export's is used. Empty:
	// every kind the export serves (for drivers that work on any kind).
	Kinds []capability.Kind
	// AddFlags adds the provider's own flags (how to reach its runtime, say). Optional.
	AddFlags func(*pflag.FlagSet)
	// Validate checks the provider's flags after parsing; an error ends the process
	// with exit code 2 before anything starts. Optional.
	Validate func() error
	// Start builds the drivers once the flags are parsed. Required.
	Start func(ctx context.Context, env Env) (*Runtime, error)
}

// Env is what Start is told.
type Env struct {
	// Runtime is the name of the servicelet's ServiceRuntime.
	Runtime string
	// Kinds are the kinds the servicelet serves: those of Provider.Kinds that the
	// export serves, or, when the provider declares none, every kind it serves.
	Kinds []capability.Kind
	// Log is the servicelet's logger.
	Log logr.Logger
}

// Runtime is what a provider's servicelet runs with.
type Runtime struct {
	// Drivers has a driver for every kind of Env.Kinds. Required.
	Drivers map[schema.GroupKind]driver.Driver
	// Probe reports on the runtime as a whole. Required.
	Probe driver.RuntimeProbe
	// Close, if set, is called when the servicelet stops.
	Close func()
}

// Main runs the provider's servicelet until SIGINT or SIGTERM; it does not return.
func Main(p Provider) {
	opts := defaultOptions(p)
	opts.AddFlags(pflag.CommandLine)
	if p.AddFlags != nil {
		p.AddFlags(pflag.CommandLine)
	}
	validate := func() error {
		err := opts.Validate()
		if p.Validate != nil {
			err = errors.Join(err, p.Validate())
		}
		if p.Start == nil {
			err = errors.Join(err, errors.New("the provider has no Start (a bug of the binary)"))
		}
		return err
	}
	cli.Main(p.Name, validate, func(ctx context.Context, log logr.Logger) error {
		return run(ctx, p, opts, log)
	})
}

func run(ctx context.Context, p Provider, opts *options, log logr.Logger) error {
	cfg, err := kcpconfig.LoadPatient(opts.Kubeconfig, opts.Context)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	providerCfg := kcpconfig.ForWorkspace(cfg, opts.Workspace)

	// The export's kinds; kcp may be down at start, so keep asking.
	served, err := exports.WaitKinds(ctx, providerCfg, opts.Export, log)
	if err != nil {
		return nil // stopped while waiting
	}
	kinds, left := capability.Select(served, p.Kinds)
	for _, k := range left {
		log.Info("the export serves a kind this servicelet has no driver for; its capabilities are left to another servicelet", "kind", k.GVK.GroupKind().String(), "servicelet", p.Name)
	}
	if len(kinds) == 0 {
		return fmt.Errorf("the export %s serves none of the kinds of %s", opts.Export, p.Name)
	}
	hosted := make([]platformv1alpha1.CapabilityKind, 0, len(kinds))
	for _, k := range kinds {
		hosted = append(hosted, platformv1alpha1.CapabilityKind{Group: k.GVK.Group, Kind: k.GVK.Kind})
	}

	rt, err := p.Start(ctx, Env{Runtime: opts.Runtime, Kinds: kinds, Log: log})
	if err != nil {
		return err
	}
	if rt.Close != nil {
		defer rt.Close()
	}
	s, err := slet.New(slet.Options{
		Config:            providerCfg,
		EndpointSlice:     opts.EndpointSlice,
		Runtime:           opts.Runtime,
		Register:          opts.registration(hosted),
		Kinds:             kinds,
		Drivers:           rt.Drivers,
		Probe:             rt.Probe,
		HeartbeatInterval: opts.HeartbeatInterval,
		ProbeInterval:     opts.ProbeInterval,
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

// OneDriver returns drivers that use d for every one of kinds (Env.Kinds), for
// providers with one driver for all of their kinds.
func OneDriver(d driver.Driver, kinds []capability.Kind) map[schema.GroupKind]driver.Driver {
	out := make(map[schema.GroupKind]driver.Driver, len(kinds))
	for _, k := range kinds {
		out[k.GVK.GroupKind()] = d
	}
	return out
}
