// Package scheduler is the service scheduler of a provider's coordinator: a
// multicluster-runtime controller over the provider's APIExport virtual workspace that
// sees the capabilities of every bound workspace, picks a ServiceRuntime that fits each
// unassigned one, and writes the runtime's name into the document.
//
// It works on any kind that embeds the capability contract (platform.msp.dev
// CapabilitySpec/CapabilityStatus), read as unstructured objects; a capability.Kind may add
// kind-specific requests (a database's size as storage).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	mcbuilder "sigs.k8s.io/multicluster-runtime/pkg/builder"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/metrics"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/sdk/capability"
)

// ControllerName names the scheduler's controllers, its field manager and its events.
const ControllerName = "msp-scheduler"

// Event reasons.
const (
	EventScheduled        = "Scheduled"
	EventFailedScheduling = "FailedScheduling"
)

// Options configure the scheduler. Zero values take the documented defaults.
type Options struct {
	// Kinds are the capability kinds to schedule. Required.
	Kinds []capability.Kind
	// Framework filters and scores runtimes. Required.
	Framework *framework.Framework
	// Fleet brings the capabilities of every bound workspace, one informer per kind and
	// endpoint (see Fleet). Required by New.
	Fleet Fleet
	// Runtimes lists the provider's ServiceRuntimes (the provider workspace's cache).
	// Required.
	Runtimes RuntimeLister
	// Classes lists the provider's ServiceRuntimeClasses, whose locations a capability
	// that fits nowhere for its location is told of (see LocationHint). Optional.
	Classes ClassLister
	// MaxConcurrentReconciles per kind. The decisions themselves are made one at a time;
	// this parallelizes the writes, whose latency (not msp's CPU) bounds the throughput
	// when kcp is busy. Defaults to 32.
	MaxConcurrentReconciles int
	// InitialBackoff and MaxBackoff bound the retries of a capability that nothing fits;
	// a change of the runtimes retries it at once. Default 1s and 1m.
	InitialBackoff, MaxBackoff time.Duration
	// NormalEvents records a Normal "Scheduled" event for every assignment. Off by
	// default: the Scheduled condition says the same, and in kcp each event is a write
	// through the virtual workspace (with an authorization round) on the busiest path.
	// Warning events (FailedScheduling) are always recorded.
	NormalEvents bool
	// AssumeTTL drops a decision the cache never confirmed. Defaults to 1 minute.
	AssumeTTL time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Reservations, when set, records every placement on the runtime's twin before the
	// assignment (see Reservations): for several active replicas. Nil: none.
	Reservations *Reservations
	// Owns reports whether this scheduler reconciles a workspace's capabilities; the
	// others' are counted but left to the replica that owns them. Nil: every workspace.
	Owns func(multicluster.ClusterName) bool
	// Bound reports whether a workspace this scheduler stopped reconciling is still
	// bound (another replica took it over), so that its capabilities keep counting.
	// Nil: a disengaged workspace is gone.
	Bound func(multicluster.ClusterName) bool
	// ShardRegion, when set, returns the region of the kcp shard a workspace is on, to
	// which its capabilities are kept (see framework.Capability.ShardRegion); "" for
	// none.
	ShardRegion func(multicluster.ClusterName) string
	// Permits answers whether the tenant workspace cluster may name runtime in
	// spec.runtimeName (see identity.TenantSubject). Nil permits every runtime.
	Permits func(ctx context.Context, cluster, runtime string) (bool, error)
}

// RuntimeLister returns the current ServiceRuntimes; callers must not modify them.
type RuntimeLister interface {
	List(ctx context.Context) ([]*platformv1alpha1.ServiceRuntime, error)
	// Synced reports whether the list reflects the server.
	Synced() bool
}

// Waker retries the capabilities that wait for a runtime; *Scheduler is one.
type Waker interface {
	WakeWaiting()
}

// ChangeNotifier is a RuntimeLister or ClassLister that can tell when what it lists
// changed in a way that may let a waiting capability fit (CachedRuntimes and
// CachedClasses are). New hands it the scheduler it builds, so the lister needs no
// callback into a scheduler that does not exist yet when the lister is made.
type ChangeNotifier interface {
	// Notify makes the lister call w.WakeWaiting on every such change from now on.
	Notify(w Waker)
}

// Scheduler places capabilities on runtimes.
type Scheduler struct {
	opts       Options
	workspaces workspaces
	acct       *Accounting

	// decide serializes the decisions, so that each sees the ones before it.
	decide sync.Mutex

	// written holds the assignments this scheduler completed (key → runtime) until the
	// cache shows them, so that their echo in the cache causes no second write.
	written sync.Map

	// waitReasons, when set, explain the capabilities that nothing fits in the runtime
	// manager's terms (a runtime ordered for it, a class at its maximum), by key.
	waitReasons atomic.Pointer[map[string]WaitReason]

	waiting  *waitingSet
	triggers []*trigger
	observer *observer
	// removals remembers which tenants were told of which runtime's removal.
	removals *removals
}

// New returns a scheduler for the manager's clusters. When opts.Runtimes or
// opts.Classes is a ChangeNotifier, it is told to wake the new scheduler.
func New(mgr mcmanager.Manager, opts Options) (*Scheduler, error) {
	if opts.Fleet == nil {
		return nil, errors.New("scheduler: a fleet of the tenant workspaces is required")
	}
	return newScheduler(opts, managerWorkspaces{mgr})
}

// newScheduler is New with the workspaces the reconcilers read and write.
func newScheduler(opts Options, ws workspaces) (*Scheduler, error) {
	if len(opts.Kinds) == 0 {
		return nil, errors.New("scheduler: no capability kinds configured")
	}
	if opts.Framework == nil || opts.Runtimes == nil {
		return nil, errors.New("scheduler: a framework and a runtime lister are required")
	}
	if opts.MaxConcurrentReconciles == 0 {
		opts.MaxConcurrentReconciles = 32
	}
	if opts.InitialBackoff == 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.AssumeTTL == 0 {
		opts.AssumeTTL = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Scheduler{opts: opts, workspaces: ws, acct: NewAccounting(), waiting: newWaitingSet(), removals: newRemovals()}
	s.acct.now, s.acct.reservationTTL = opts.Now, opts.AssumeTTL
	s.observer = &observer{kinds: opts.Kinds, acct: s.acct, waker: s, fleet: opts.Fleet, requeue: s.requeue, bound: opts.Bound}
	if opts.Owns != nil {
		s.observer.others = newOthersPending()
	}
	if n, ok := opts.Runtimes.(ChangeNotifier); ok {
		n.Notify(s)
	}
	if n, ok := opts.Classes.(ChangeNotifier); ok {
		n.Notify(s)
	}
	return s, nil
}

// Accounting exposes the scheduler's view of what runs where (for explain and tests).
func (s *Scheduler) Accounting() *Accounting { return s.acct }

// SetupWithManager registers one controller per kind, fed by the Fleet, the observer
// that keeps the accounting current, and the housekeeping loop.
func (s *Scheduler) SetupWithManager(mgr mcmanager.Manager) error {
	if err := mgr.Add(s.observer); err != nil {
		return fmt.Errorf("failed to add the capability observer: %w", err)
	}
	for i, kind := range s.opts.Kinds {
		t := &trigger{}
		s.triggers = append(s.triggers, t)
		r := &reconciler{s: s, kind: kind, kindIndex: i}
		err := mcbuilder.ControllerManagedBy(mgr).
			Named(fmt.Sprintf("%s-%s", ControllerName, kindName(kind.GVK))).
			WatchesRawSource(&fleetSource{fleet: s.opts.Fleet, gvk: kind.GVK}).
			WatchesRawSource(t).
			WithOptions(controller.TypedOptions[mcreconcile.Request]{MaxConcurrentReconciles: s.opts.MaxConcurrentReconciles}).
			Complete(r)
		if err != nil {
			return fmt.Errorf("failed to set up the scheduler for %s: %w", kind.GVK.Kind, err)
		}
	}
	return mgr.GetLocalManager().Add(housekeeping{s})
}

// WaitReason is what the runtime manager says of a capability nothing fits.
type WaitReason struct {
	Reason, Message string
}

// SetWaitReasons replaces what the runtime manager says of the capabilities that
// nothing fits, by capability key; the scheduler keeps a copy. A capability it names
// reports the reason and message on its next attempt (see WakeWaiting).
func (s *Scheduler) SetWaitReasons(reasons map[string]WaitReason) {
	c := maps.Clone(reasons)
	s.waitReasons.Store(&c)
}

// waitReason is what the runtime manager said last of the capability with key.
func (s *Scheduler) waitReason(key string) (WaitReason, bool) {
	reasons := s.waitReasons.Load()
	if reasons == nil {
		return WaitReason{}, false
	}
	why, ok := (*reasons)[key]
	return why, ok
}

// Pending is a capability that nothing fits right now.
type Pending struct {
	// Key identifies the capability across workspaces.
	Key string
	// Reason and Message are what its Scheduled condition said last.
	Reason, Message string
	// Capability is what the scheduler knew of it then.
	Capability *framework.Capability
}

// Pending returns the capabilities that wait because no runtime fits them (not the
// ones whose named runtime is missing or unfit, nor the ones whose assignment is being
// written). With replicas that share the workspaces, it includes the capabilities that
// wait in the other replicas' workspaces, as their documents say.
func (s *Scheduler) Pending() []Pending {
	var out []Pending
	waiting := s.waiting.snapshot()
	if s.observer != nil && s.observer.others != nil {
		out = s.observer.others.list(func(key string) bool {
			_, mine := waiting[key]
			return mine || s.acct.RuntimeOf(key) != ""
		})
	}
	for key, w := range waiting {
		// A decision being written counts on its runtime already; it waits for nothing.
		if s.acct.RuntimeOf(key) != "" {
			continue
		}
		if w.reason == platformv1alpha1.ReasonUnschedulable && w.capability != nil {
			out = append(out, Pending{Key: key, Reason: w.reason, Message: w.message, Capability: w.capability})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Snapshot returns the runtimes with what the scheduler counts on each.
func (s *Scheduler) Snapshot(runtimes []*platformv1alpha1.ServiceRuntime) []*framework.RuntimeInfo {
	return s.acct.Snapshot(runtimes, "", "")
}

// RuntimeLoad returns how many capabilities count on a runtime, including decisions
// not yet visible in the cache.
func (s *Scheduler) RuntimeLoad(runtime string) int {
	return s.acct.Count(runtime)
}

// requeue puts a capability on its kind's controller queue.
func (s *Scheduler) requeue(kindIndex int, req mcreconcile.Request) {
	if kindIndex < len(s.triggers) {
		s.triggers[kindIndex].add(req)
	}
}

// WakeWaiting retries every capability that nothing fitted, at once: a runtime
// appeared or changed, or capacity was freed.
func (s *Scheduler) WakeWaiting() {
	for _, w := range s.waiting.all() {
		s.requeue(w.kindIndex, w.req)
	}
}

// housekeeping expires unconfirmed decisions, keeps the gauges current and tells the
// tenants of capabilities on runtimes being removed (at once when a runtime starts being
// removed, and on every tick for what landed there since).
type housekeeping struct{ s *Scheduler }

func (h housekeeping) Start(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.s.removals.kick:
			h.s.notifyRemovals(ctx)
		case <-tick.C:
			h.s.notifyRemovals(ctx)
			if n := h.s.acct.Expire(h.s.opts.Now(), h.s.opts.AssumeTTL); n > 0 {
				log.FromContext(ctx).Info("dropped scheduling decisions the cache never confirmed", "count", n)
				h.s.WakeWaiting()
			}
			metrics.AssumedDecisions.Set(float64(h.s.acct.Assumed()))
			metrics.PendingCapabilities.Set(float64(h.s.waiting.len()))
		}
	}
}

// capabilityKey identifies a capability across workspaces and kinds.
func capabilityKey(clusterName string, gk schema.GroupKind, namespace, name string) string {
	return clusterName + "|" + gk.String() + "|" + namespace + "/" + name
}

func kindName(gvk schema.GroupVersionKind) string {
	return gvk.Kind + "." + gvk.Group
}

var _ multicluster.Aware = &observer{}

func logIntoContext(ctx context.Context, l logr.Logger) context.Context {
	return log.IntoContext(ctx, l)
}
