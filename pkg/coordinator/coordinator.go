// Package coordinator wires a provider's coordinator, and does nothing else: one
// multicluster manager over the provider's APIExport virtual workspace (every bound
// tenant workspace, every shard) with the scheduler (pkg/scheduler), next to a cache of
// the provider workspace's ServiceRuntimes with the controllers that keep them true
// (pkg/twin) and, when enabled, the runtime manager (pkg/runtimemanager).
package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"

	"github.com/kcp-dev/multicluster-provider/apiexport"
	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"
	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"

	"github.com/msp-dev/msp/pkg/exports"
	"github.com/msp-dev/msp/pkg/runtimemanager"
	"github.com/msp-dev/msp/pkg/scheduler"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/runtimeready"
	"github.com/msp-dev/msp/pkg/twin"
	"github.com/msp-dev/msp/sdk/capability"
)

// Options configure a coordinator. Zero values take the documented defaults.
type Options struct {
	// Config addresses the provider workspace (e.g. root:providers:postgres), where the
	// APIExport, its endpoint slice and the ServiceRuntimes live. Required.
	Config *rest.Config
	// Export is the provider's APIExport. Required.
	Export string
	// EndpointSlice is the APIExportEndpointSlice to follow. Defaults to Export (kcp
	// creates one of the export's name).
	EndpointSlice string
	// Kinds are the capability kinds to schedule, with their requests; a version left
	// empty is the export's. Empty: every kind the export serves.
	Kinds []capability.Kind
	// HeartbeatTimeout is how old a runtime's heartbeat may be for the scheduler to use
	// it. Defaults to 150s (runtimeready.DefaultHeartbeatTimeout); negative disables the check (only the Ready condition counts).
	HeartbeatTimeout time.Duration
	// HeartbeatLagTolerance is how long late heartbeats are blamed on a lagging control
	// plane rather than on the runtimes, when every runtime's heartbeat is late at once
	// (see runtimeready.Late). Defaults to 5m; negative never blames the control plane.
	HeartbeatLagTolerance time.Duration
	// ScoreWeights override the default score weights, per plugin name.
	ScoreWeights map[string]int64
	// SchedulerWorkers is how many capabilities of a kind the scheduler works on at
	// once (decisions stay one at a time; the writes overlap). Defaults to 32.
	SchedulerWorkers int
	// NormalEvents records a Normal event for every assignment (see scheduler.Options).
	NormalEvents bool
	// MetricsAddr serves /metrics; "0" disables it. Defaults to 127.0.0.1:0.
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz; "0" disables it. Defaults to "0".
	HealthAddr string
	// PprofAddr serves Go's /debug/pprof endpoints; empty disables them.
	PprofAddr string
	// LeaderElection runs only one active coordinator among replicas, through a Lease
	// in the provider workspace.
	LeaderElection bool
	// ShardLocality keeps the capabilities of a workspace on a kcp shard with a region
	// to runtimes of that region (see shardRegions); tenants whose placement rules that
	// region out are told so.
	ShardLocality bool
	// ShardWorkspaces runs every replica active: they split the tenant workspaces
	// between them (see workspaceShards), reserve room on a runtime's twin before they
	// place a capability on it (scheduler.Reservations), and elect one of them to run
	// the runtime manager. It replaces LeaderElection.
	ShardWorkspaces bool
	// ReplicaID names this replica among the others. With ShardWorkspaces it defaults to
	// the host name and a random suffix. With LeaderElection it is the identity in the
	// Lease, when set: a replica restarted under the same name (a pod's container after a
	// crash) takes its Lease back at once instead of waiting for it to expire. It must be
	// unique among the live replicas (a pod's name is).
	ReplicaID string
	// PeerLeaseDuration is how long a replica that stopped renewing its Lease keeps its
	// workspaces before the others take them over. Defaults to 15s.
	PeerLeaseDuration time.Duration
	// Log is the logger. Defaults to controller-runtime's.
	Log logr.Logger

	// RuntimeManager enables ordering and removing runtimes of the provider's
	// ServiceRuntimeClasses.
	RuntimeManager bool
	// RuntimeManagerInterval is the time between its passes (default 2s); ScaleDownCooldown
	// the least time between two removals in one class (default 30s).
	RuntimeManagerInterval, ScaleDownCooldown time.Duration
	// Local configures the "local" procurement driver; nil leaves it out.
	Local *runtimemanager.LocalOptions
	// Cascading configures the "cascading" procurement driver (its client is the
	// coordinator's own); nil leaves it out.
	Cascading *runtimemanager.CascadingOptions
}

// newShards builds the split of the tenant workspaces between the active replicas.
func newShards(opts *Options) (*workspaceShards, error) {
	if opts.ReplicaID == "" {
		host, _ := os.Hostname()
		suffix := make([]byte, 3)
		_, _ = rand.Read(suffix)
		opts.ReplicaID = fmt.Sprintf("%s-%x", host, suffix)
	}
	if opts.PeerLeaseDuration == 0 {
		opts.PeerLeaseDuration = 15 * time.Second
	}
	c, err := client.New(opts.Config, client.Options{})
	if err != nil {
		return nil, err
	}
	peers := newLeasePeers(c, "default", opts.Export, opts.ReplicaID, opts.PeerLeaseDuration, peerRefresh, opts.Log.WithName("replicas"))
	return newWorkspaceShards(peers, peerRefresh, opts.Log.WithName("workspace-shards")), nil
}

// peerRefresh is how often a replica lists the others and recomputes its workspaces.
const peerRefresh = 2 * time.Second

// Run runs the coordinator until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Config == nil || opts.Export == "" {
		return errors.New("coordinator: a provider workspace config and an export name are required")
	}
	if opts.EndpointSlice == "" {
		opts.EndpointSlice = opts.Export
	}
	if opts.HeartbeatTimeout == 0 {
		opts.HeartbeatTimeout = runtimeready.DefaultHeartbeatTimeout
	}
	if opts.HeartbeatTimeout < 0 {
		opts.HeartbeatTimeout = 0
	}
	opts.HeartbeatLagTolerance = runtimeready.LagTolerance(opts.HeartbeatLagTolerance)
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "127.0.0.1:0"
	}
	if opts.HealthAddr == "" {
		opts.HealthAddr = "0"
	}
	if opts.Log.GetSink() == nil {
		opts.Log = log.Log
	}
	log.SetLogger(opts.Log)
	ctx = log.IntoContext(ctx, opts.Log)

	// kcp may be away or warming up after a restart: wait for it rather than exit.
	served, err := exports.WaitKinds(ctx, opts.Config, opts.Export, opts.Log)
	if err != nil {
		return nil // stopped while waiting
	}
	kinds, left := capability.Select(served, opts.Kinds)
	if len(kinds) == 0 {
		return fmt.Errorf("the export %s serves none of the kinds to schedule", opts.Export)
	}
	gvks := make([]string, 0, len(kinds))
	for _, k := range kinds {
		gvks = append(gvks, k.GVK.String())
	}
	for _, k := range left {
		opts.Log.Info("the export serves a kind this coordinator does not schedule", "kind", k.GVK.GroupKind().String())
	}
	opts.Log.Info("coordinating", "export", opts.Export, "kinds", gvks)

	scheme := scheduler.Scheme()
	// The apiexport provider as apiexport.New builds it, but with the coordinator's own
	// pruned caches of the tenant workspaces (see tenantCaches).
	caches := newTenantCaches(ctx, scheme, opts.Log.WithName("tenant-cache"))
	p, err := mcprovider.NewProvider(opts.Config, opts.EndpointSlice, mcprovider.Options{
		Scheme:                       scheme,
		Log:                          &opts.Log,
		EndpointSliceObject:          &apisv1alpha1.APIExportEndpointSlice{},
		ExtractURLsFromEndpointSlice: mcprovider.DefaultExtractURLsFromEndpointSlice,
		ObjectToWatch:                &apisv1alpha1.APIBinding{},
		AddFilter:                    mcprovider.ConditionReadyFunc("Ready"),
		UpdateFilter:                 mcprovider.ConditionReadyFunc("Ready"),
		NewCluster:                   caches.newCluster,
	})
	if err != nil {
		return fmt.Errorf("failed to create the apiexport provider: %w", err)
	}
	provider := &apiexport.Provider{Provider: p}
	var shards *workspaceShards
	var mcOpts []mcmanager.Option
	if opts.ShardWorkspaces {
		opts.LeaderElection = false
		if shards, err = newShards(&opts); err != nil {
			return err
		}
		mcOpts = append(mcOpts, mcmanager.WithCoordinator(shards))
		opts.Log.Info("sharing the tenant workspaces with the other active replicas", "replica", opts.ReplicaID, "leaseDuration", opts.PeerLeaseDuration.String())
	}
	var leaderLock resourcelock.Interface
	if opts.LeaderElection && opts.ReplicaID != "" {
		if leaderLock, err = newLeaderLock(opts.Config, "msp-coordinator-"+opts.Export, opts.ReplicaID); err != nil {
			return err
		}
	}
	mgr, err := mcmanager.New(opts.Config, provider, manager.Options{
		Scheme:                  scheme,
		Cache:                   cache.Options{DefaultTransform: pruneForCache},
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.HealthAddr,
		PprofBindAddress:        opts.PprofAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "msp-coordinator-" + opts.Export,
		LeaderElectionNamespace: "default",
		// Run returns (and the process exits) once the manager has stopped: a stopped
		// leader hands its Lease over instead of making the next one wait it out.
		LeaderElectionReleaseOnCancel:       true,
		LeaderElectionResourceLockInterface: leaderLock,
	}, mcOpts...)
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	if opts.HealthAddr != "0" {
		if err := mgr.GetLocalManager().AddHealthzCheck("ping", healthz.Ping); err != nil {
			return err
		}
	}

	fw, err := plugins.NewFramework(plugins.Options{HeartbeatTimeout: opts.HeartbeatTimeout, HeartbeatLagTolerance: opts.HeartbeatLagTolerance, Weights: opts.ScoreWeights})
	if err != nil {
		return err
	}
	// Both listers wake the scheduler, which registers itself with them (see
	// scheduler.ChangeNotifier).
	runtimes, err := scheduler.NewCachedRuntimes(ctx, mgr.GetLocalManager().GetCache())
	if err != nil {
		return err
	}
	// The classes only tell tenants where the runtime manager could order a runtime;
	// without them the scheduler still works, its hints name the runtimes' locations.
	var classes scheduler.ClassLister
	if cc, err := scheduler.NewCachedClasses(ctx, mgr.GetLocalManager().GetCache()); err != nil {
		opts.Log.Info("runtime classes are left out of the scheduler's location hints", "err", err.Error())
	} else {
		classes = cc
	}
	if opts.HeartbeatTimeout > 0 {
		hb := &twin.HeartbeatMonitor{Client: mgr.GetLocalManager().GetClient(), Timeout: opts.HeartbeatTimeout, Tolerance: opts.HeartbeatLagTolerance}
		if err := hb.SetupWithManager(mgr.GetLocalManager()); err != nil {
			return fmt.Errorf("failed to set up the heartbeat monitor: %w", err)
		}
	}
	if err := (&twin.Revoker{Config: opts.Config}).SetupWithManager(mgr.GetLocalManager()); err != nil {
		return fmt.Errorf("failed to set up the servicelet revoker: %w", err)
	}
	schedOpts := scheduler.Options{Kinds: kinds, Fleet: caches, Framework: fw, Runtimes: runtimes, Classes: classes, MaxConcurrentReconciles: opts.SchedulerWorkers, NormalEvents: opts.NormalEvents,
		Permits: scheduler.SARPermits(mgr.GetLocalManager().GetClient())}
	if opts.ShardLocality {
		schedOpts.ShardRegion = (&shardRegions{slices: mgr.GetLocalManager().GetClient(), hosts: caches}).of
	}
	if shards != nil {
		schedOpts.Owns, schedOpts.Bound = shards.Owns, shards.Bound
		schedOpts.Reservations = &scheduler.Reservations{Client: mgr.GetLocalManager().GetClient(), Reader: mgr.GetLocalManager().GetAPIReader(), Self: opts.ReplicaID}
	}
	sched, err := scheduler.New(mgr, schedOpts)
	if err != nil {
		return err
	}
	if err := sched.SetupWithManager(mgr); err != nil {
		return err
	}
	// The guard holds a runtime being removed until no capability counts on it. Every
	// replica counts every workspace, so with replicas that share the workspaces it runs
	// on one of them, with the runtime manager (singletons, under one Lease).
	var singletons runnables
	guard := &twin.RuntimeGuard{Client: mgr.GetLocalManager().GetClient(), Hosted: sched.Hosted, Synced: sched.Synced}
	// On every replica when they share the workspaces: its writes are idempotent, and
	// it must not depend on a Lease in a workspace that may be going away.
	if err := guard.SetupWithManager(mgr.GetLocalManager()); err != nil {
		return fmt.Errorf("failed to set up the runtime guard: %w", err)
	}
	if opts.RuntimeManager {
		procurers := map[string]runtimemanager.Procurer{}
		if opts.Local != nil {
			local, err := runtimemanager.NewLocal(*opts.Local)
			if err != nil {
				return err
			}
			defer local.Stop()
			procurers["local"] = local
		}
		if opts.Cascading != nil {
			c, err := client.New(opts.Config, client.Options{Scheme: scheme})
			if err != nil {
				return err
			}
			copts := *opts.Cascading
			copts.Client = c
			cascading, err := runtimemanager.NewCascading(copts)
			if err != nil {
				return err
			}
			defer cascading.Stop()
			procurers["cascading"] = cascading
		}
		rm, err := runtimemanager.New(runtimemanager.Options{
			Client: mgr.GetLocalManager().GetClient(), Scheduler: sched, Framework: fw, Procurers: procurers,
			Interval: opts.RuntimeManagerInterval, Cooldown: opts.ScaleDownCooldown, Log: opts.Log.WithName("runtime-manager"),
		})
		if err != nil {
			return err
		}
		if shards != nil {
			singletons = append(singletons, rm)
		} else if err := mgr.GetLocalManager().Add(rm); err != nil {
			return err
		}
	}
	if len(singletons) > 0 {
		run := &leaderOnly{config: opts.Config, lease: "msp-runtime-manager-" + opts.Export, identity: opts.ReplicaID, run: singletons, log: opts.Log.WithName("runtime-manager")}
		if err := mgr.GetLocalManager().Add(run); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// runnables run together until their context ends: what one replica runs while it
// holds a Lease.
type runnables []manager.Runnable

// Start starts every runnable and returns when all have returned.
func (rs runnables) Start(ctx context.Context) error {
	errs := make(chan error, len(rs))
	for _, r := range rs {
		go func() { errs <- r.Start(ctx) }()
	}
	var all []error
	for range rs {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}
