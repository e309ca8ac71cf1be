package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// A runtime the provider removes while it hosts capabilities stays, held by the
// coordinator's runtime guard (pkg/twin), until they are deleted: the filter
// runtimeready places nothing new there, and the scheduler tells the tenants of the
// capabilities on it, one Warning event each per removal.

// removalMessage is the event a capability on a runtime being removed gets.
const removalMessage = "the provider is removing runtime %s: this capability keeps running there until you delete it; to move it, create a new capability and delete this one"

// RemovalWaker is a Waker that is also told when a runtime starts being removed (see
// CachedRuntimes); *Scheduler is one.
type RemovalWaker interface {
	RuntimeRemoving()
}

// removals remembers which capabilities were told of which runtime's removal.
type removals struct {
	mu sync.Mutex
	// told holds the keys told, by removal (the runtime's UID and name).
	told map[string]map[string]bool
	// kick asks the housekeeping loop to tell the tenants now.
	kick chan struct{}
}

var _ RemovalWaker = (*Scheduler)(nil)

func newRemovals() *removals {
	return &removals{told: map[string]map[string]bool{}, kick: make(chan struct{}, 1)}
}

func removalOf(rt *platformv1alpha1.ServiceRuntime) string { return string(rt.UID) + "/" + rt.Name }

func (r *removals) was(removal, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.told[removal][key]
}

func (r *removals) mark(removal, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.told[removal] == nil {
		r.told[removal] = map[string]bool{}
	}
	r.told[removal][key] = true
}

// keep forgets every removal but those in current.
func (r *removals) keep(current map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for removal := range r.told {
		if !current[removal] {
			delete(r.told, removal)
		}
	}
}

// RuntimeRemoving implements RemovalWaker: a runtime got a deletionTimestamp, so the
// tenants of its capabilities are told now rather than at the next housekeeping tick.
func (s *Scheduler) RuntimeRemoving() {
	select {
	case s.removals.kick <- struct{}{}:
	default:
	}
}

// Synced reports whether the scheduler has counted the capabilities of every workspace
// it follows and listed the runtimes.
func (s *Scheduler) Synced() bool {
	return s.observer.Synced() && s.opts.Runtimes.Synced()
}

// Hosted returns how many capabilities count on rt, by workspace, including decisions
// not yet visible in the cache and other replicas' reservations on it. With replicas
// that share the workspaces, every replica counts every workspace.
func (s *Scheduler) Hosted(rt *platformv1alpha1.ServiceRuntime) map[string]int {
	return s.acct.Hosted(rt)
}

// notifyRemovals tells the tenants of the capabilities on every runtime being removed
// (see NotifyRuntimeRemoval) and forgets the removals that are over.
func (s *Scheduler) notifyRemovals(ctx context.Context) {
	if !s.Synced() {
		return
	}
	runtimes, err := s.opts.Runtimes.List(ctx)
	if err != nil {
		log.FromContext(ctx).Info("cannot tell the tenants of runtimes being removed yet", "err", err.Error())
		return
	}
	current := map[string]bool{}
	for _, rt := range runtimes {
		if rt.DeletionTimestamp == nil {
			continue
		}
		current[removalOf(rt)] = true
		if n := s.NotifyRuntimeRemoval(ctx, rt); n > 0 {
			log.FromContext(ctx).Info("told the tenants of capabilities on a runtime being removed", "runtime", rt.Name, "capabilities", n)
		}
	}
	s.removals.keep(current)
}

// NotifyRuntimeRemoval records the Warning event RuntimeRemoval on every capability
// that counts on rt, a runtime being removed, in the workspaces this scheduler
// reconciles (Options.Owns), once per capability and removal. A capability its cache
// does not show on rt yet is told on a later call; one being deleted is not told. It
// returns how many it told.
func (s *Scheduler) NotifyRuntimeRemoval(ctx context.Context, rt *platformv1alpha1.ServiceRuntime) int {
	removal := removalOf(rt)
	told := 0
	for _, key := range s.acct.On(rt.Name) {
		if s.removals.was(removal, key) {
			continue
		}
		cluster, kindIndex, name, ok := s.parseKey(key)
		if !ok {
			continue
		}
		if s.opts.Owns != nil && !s.opts.Owns(cluster) {
			continue // its owner tells it
		}
		store, err := s.workspaces.Workspace(ctx, cluster)
		if err != nil {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(s.opts.Kinds[kindIndex].GVK)
		if err := store.Get(ctx, name, u); err != nil {
			continue
		}
		if on, _, _ := unstructured.NestedString(u.Object, "spec", "runtimeName"); on != rt.Name {
			continue // a decision the cache does not show yet
		}
		s.removals.mark(removal, key)
		if u.GetDeletionTimestamp() != nil {
			continue
		}
		store.Event(ctx, u, corev1.EventTypeWarning, platformv1alpha1.ReasonRuntimeRemoval, fmt.Sprintf(removalMessage, rt.Name))
		told++
	}
	return told
}

// parseKey reads a capability key (see capabilityKey) back: its workspace, the index of
// its kind among the scheduler's kinds, and its namespace and name.
func (s *Scheduler) parseKey(key string) (multicluster.ClusterName, int, types.NamespacedName, bool) {
	parts := strings.SplitN(key, "|", 3)
	if len(parts) != 3 {
		return "", 0, types.NamespacedName{}, false
	}
	ns, name, ok := strings.Cut(parts[2], "/")
	if !ok {
		return "", 0, types.NamespacedName{}, false
	}
	for i, k := range s.opts.Kinds {
		if k.GVK.GroupKind().String() == parts[1] {
			return multicluster.ClusterName(parts[0]), i, types.NamespacedName{Namespace: ns, Name: name}, true
		}
	}
	return "", 0, types.NamespacedName{}, false
}
