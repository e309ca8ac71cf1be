// Package coordinator is the entry point of a provider's coordinator binary: the
// scheduler that places every capability of every bound tenant workspace on a
// ServiceRuntime that fits it, and the runtime manager that orders runtimes from the
// provider's ServiceRuntimeClasses when none fits and removes those nobody needs. A
// provider's main.go names its kinds (with their requests) and how its runtimes are
// procured; Main does the rest.
//
//	func main() {
//		coordinator.Main(coordinator.Provider{
//			Name:      "redis-coordinator",
//			Workspace: "root:providers:redis", Export: "redis.example.dev",
//			Kinds:     redis.Kinds,
//			Servicelet: "redis-servicelet",
//			Local:     &procurement.Local{Args: func(dir string) []string { return []string{"--data-dir", dir} }},
//		})
//	}
//
// A provider whose kinds ask nothing beyond their spec.resources and that orders no
// runtimes needs no coordinator of its own: msp-coordinator is this Main with an empty
// Provider.
package coordinator

import (
	"context"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/pkg/cli"
	coord "github.com/msp-dev/msp/pkg/coordinator"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/runtimemanager"
	"github.com/msp-dev/msp/sdk/capability"
	"github.com/msp-dev/msp/sdk/procurement"
)

// TestServicelet is the servicelet the "test" local runtimes run: msp's test driver.
const TestServicelet = "msp-servicelet"

// Provider is what a provider's coordinator is made of.
type Provider struct {
	// Name names the binary in its messages, e.g. "postgres-coordinator". Required.
	Name string
	// Workspace and Export are the defaults of --workspace and --export.
	Workspace, Export string
	// Kinds are the provider's kinds with their requests (capability.Kind.Requests);
	// --kind narrows them. Empty: every kind the export serves, with no requests of
	// their own.
	Kinds []capability.Kind
	// Servicelet is the file name of the provider's servicelet, found next to the
	// coordinator's executable (or at --servicelet-binary). The runtime manager starts it
	// for the runtimes it orders.
	Servicelet string
	// Local says how the servicelet runs a runtime on this machine, for the "local"
	// procurement driver. Nil: local runtimes can only be test runtimes.
	Local *procurement.Local
	// Access says how the servicelet takes a runtime ordered from another provider,
	// for the "cascading" procurement driver. Nil: no cascading.
	Access *procurement.Access
}

// Main runs the provider's coordinator until SIGINT or SIGTERM; it does not return.
func Main(p Provider) {
	opts := defaultOptions(p)
	opts.AddFlags(pflag.CommandLine)
	servicelet := p.Servicelet
	pflag.CommandLine.StringVar(&servicelet, "servicelet-binary", servicelet, "The provider's servicelet executable, for the runtimes the runtime manager orders (a bare name is looked up next to this executable).")
	validate := func() error {
		return opts.validate(p, servicelet)
	}
	cli.Main(p.Name, validate, func(ctx context.Context, log logr.Logger) error {
		return run(ctx, p, opts, servicelet, log)
	})
}

func run(ctx context.Context, p Provider, opts *options, servicelet string, logger logr.Logger) error {
	cfg, err := kcpconfig.LoadPatient(opts.Kubeconfig, opts.Context)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
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
		bin, runtime := servicelet, p.Local
		if opts.LocalDriver == "test" {
			bin, runtime = TestServicelet, &procurement.Local{Args: func(dir string) []string {
				return []string{"--state-dir", filepath.Join(dir, "state")}
			}}
		}
		if bin, err = executable(bin); err != nil {
			return err
		}
		local = &runtimemanager.LocalOptions{
			Dir: opts.LocalDir, Servicelet: bin, Runtime: *runtime, Credentials: access,
			Workspace: opts.Workspace, Export: opts.Export,
			ExtraArgs: opts.LocalArgs, Log: logger.WithName("local-runtimes"),
		}
	}
	var cascading *runtimemanager.CascadingOptions
	if opts.CascadingDir != "" {
		bin, err := executable(servicelet)
		if err != nil {
			return err
		}
		cascading = &runtimemanager.CascadingOptions{
			Dir: opts.CascadingDir, Servicelet: bin, Access: *p.Access, Credentials: access,
			Workspace: opts.Workspace, Export: opts.Export,
			ExtraArgs: opts.LocalArgs, Log: logger.WithName("cascaded-runtimes"),
		}
	}
	kinds := p.Kinds
	if len(opts.gvks) > 0 {
		kinds = nil
		for _, gvk := range opts.gvks {
			k := capability.Kind{GVK: gvk}
			for _, d := range p.Kinds {
				if d.GVK.GroupKind() == gvk.GroupKind() {
					k.Requests = d.Requests
				}
			}
			kinds = append(kinds, k)
		}
	}
	return coord.Run(ctx, coord.Options{
		RuntimeManager:         opts.RuntimeManager,
		RuntimeManagerInterval: opts.ManagerInterval,
		ScaleDownCooldown:      opts.ScaleDownCooldown,
		Local:                  local,
		Cascading:              cascading,
		Config:                 providerCfg,
		Export:                 opts.Export,
		EndpointSlice:          opts.EndpointSlice,
		Kinds:                  kinds,
		HeartbeatTimeout:       opts.HeartbeatTimeout,
		HeartbeatLagTolerance:  cli.NeverIfZero(opts.LagTolerance),
		ScoreWeights:           opts.weights,
		SchedulerWorkers:       opts.Workers,
		NormalEvents:           opts.NormalEvents,
		MetricsAddr:            opts.MetricsAddr,
		HealthAddr:             opts.HealthAddr,
		PprofAddr:              opts.PprofAddr,
		LeaderElection:         opts.LeaderElect,
		ShardWorkspaces:        opts.ShardWorkspaces,
		ShardLocality:          opts.ShardLocality,
		ReplicaID:              opts.ReplicaID,
		PeerLeaseDuration:      opts.PeerLease,
		Log:                    logger,
	})
}

// executable resolves a servicelet's file name: a bare name is next to this executable.
func executable(bin string) (string, error) {
	if filepath.Base(bin) != bin {
		return bin, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(exe), bin), nil
}
