package twin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// GuardControllerName names the controller that holds a runtime's removal while
// capabilities count on it.
const GuardControllerName = "msp-runtime-guard"

// Defaults of RuntimeGuard.
const (
	// DefaultGuardInterval is how often a runtime being removed is looked at again,
	// besides on every change of it.
	DefaultGuardInterval = 5 * time.Second
	// DefaultStartupGrace is how long after it starts the guard lets no runtime go: the
	// coordinator is still engaging the tenant workspaces and counting their
	// capabilities, and a count of 0 means nothing yet.
	DefaultStartupGrace = 10 * time.Second
)

// RuntimeGuard removes a ServiceRuntime only once it hosts nothing, as a ServiceProvider
// is deleted only once no capability is left. It puts the finalizer
// platform.msp.dev/hosted-capabilities on every runtime; while a runtime being removed
// still has capabilities counting on it, it keeps the finalizer, says so on the twin
// (condition Removal, reason HostsCapabilities, and a Warning event when that changes)
// and looks again every Interval; at 0 it removes the finalizer and the twin goes (the
// Revoker then revokes the runtime's servicelet). Until then the servicelet keeps its
// credential, so that the tenants can still delete their capabilities through it; the
// scheduler places nothing new there (runtimeready) and tells those tenants (the
// RuntimeRemoval event on each capability).
type RuntimeGuard struct {
	// Client reads (from the cache) and writes the provider workspace's ServiceRuntimes
	// and writes events there.
	Client client.Client
	// Hosted returns how many capabilities count on a runtime, by tenant workspace (the
	// scheduler's accounting). Required.
	Hosted func(rt *platformv1alpha1.ServiceRuntime) map[string]int
	// Synced reports whether Hosted has counted every workspace; nil is always.
	Synced func() bool
	// Interval and StartupGrace default to DefaultGuardInterval and DefaultStartupGrace.
	Interval, StartupGrace time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	// started is when the guard started (Unix nanoseconds).
	started atomic.Int64
}

func (g *RuntimeGuard) defaults() {
	if g.Interval == 0 {
		g.Interval = DefaultGuardInterval
	}
	if g.StartupGrace == 0 {
		g.StartupGrace = DefaultStartupGrace
	}
	if g.Now == nil {
		g.Now = time.Now
	}
}

// start records when the guard started counting.
func (g *RuntimeGuard) start() {
	g.defaults()
	g.started.Store(g.Now().UnixNano())
}

// SetupWithManager adds the guard to mgr, whose cache holds the provider workspace, as
// one of its controllers.
func (g *RuntimeGuard) SetupWithManager(mgr ctrl.Manager) error {
	g.start()
	return ctrl.NewControllerManagedBy(mgr).
		Named(GuardControllerName).
		For(&platformv1alpha1.ServiceRuntime{}).
		Complete(g)
}

// Runnable returns the guard as a runnable that the caller adds to mgr, or runs under
// an election of its own: every Start runs a new controller over mgr's cache until its
// context ends, so that it can run again when it leads again.
func (g *RuntimeGuard) Runnable(mgr ctrl.Manager) manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		g.start()
		c, err := controller.NewUnmanaged(GuardControllerName, controller.Options{
			Reconciler: g, Logger: mgr.GetLogger(), SkipNameValidation: ptr.To(true),
		})
		if err != nil {
			return err
		}
		src := source.Kind(mgr.GetCache(), &platformv1alpha1.ServiceRuntime{}, &handler.TypedEnqueueRequestForObject[*platformv1alpha1.ServiceRuntime]{})
		if err := c.Watch(src); err != nil {
			return err
		}
		return c.Start(ctx)
	})
}

// Reconcile puts the finalizer on a runtime, and holds or lets go of one being removed.
func (g *RuntimeGuard) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if g.started.Load() == 0 {
		g.start()
	}
	rt := &platformv1alpha1.ServiceRuntime{}
	if err := g.Client.Get(ctx, req.NamespacedName, rt); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if rt.DeletionTimestamp == nil {
		if controllerutil.ContainsFinalizer(rt, platformv1alpha1.FinalizerHostedCapabilities) {
			return reconcile.Result{}, nil
		}
		patch := rt.DeepCopy()
		controllerutil.AddFinalizer(patch, platformv1alpha1.FinalizerHostedCapabilities)
		return g.patch(ctx, rt, patch)
	}
	if !controllerutil.ContainsFinalizer(rt, platformv1alpha1.FinalizerHostedCapabilities) {
		return reconcile.Result{}, nil // removed before the guard saw it: nothing holds it
	}
	hosted := g.Hosted(rt)
	n := 0
	for _, c := range hosted {
		n += c
	}
	if n == 0 {
		if wait := g.settling(); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
		patch := rt.DeepCopy()
		controllerutil.RemoveFinalizer(patch, platformv1alpha1.FinalizerHostedCapabilities)
		if res, err := g.patch(ctx, rt, patch); err != nil || res.RequeueAfter > 0 {
			return res, err
		}
		log.FromContext(ctx).Info("runtime being removed hosts nothing: letting it go", "runtime", rt.Name)
		return reconcile.Result{}, nil
	}
	msg := HeldMessage(hosted)
	cond := metav1.Condition{
		Type: platformv1alpha1.ConditionRemoval, Status: metav1.ConditionTrue,
		Reason: platformv1alpha1.ReasonHostsCapabilities, Message: msg, ObservedGeneration: rt.Generation,
	}
	if old := meta.FindStatusCondition(rt.Status.Conditions, cond.Type); old == nil || old.Status != cond.Status || old.Reason != cond.Reason || old.Message != cond.Message {
		patch := rt.DeepCopy()
		meta.SetStatusCondition(&patch.Status.Conditions, cond)
		// Guarded by resourceVersion, as every writer of the twin's status: a heartbeat
		// that lands meanwhile is not overwritten.
		if err := g.Client.Status().Patch(ctx, patch, client.MergeFromWithOptions(rt, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) {
				return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
			}
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
		g.event(ctx, rt, msg)
		log.FromContext(ctx).Info("runtime being removed still hosts capabilities: holding it", "runtime", rt.Name, "capabilities", n)
	}
	return reconcile.Result{RequeueAfter: g.Interval}, nil
}

// settling returns how long the guard still waits, after its start or while the count is
// not synced, before it trusts a count of 0; 0 when it trusts it.
func (g *RuntimeGuard) settling() time.Duration {
	if g.Synced != nil && !g.Synced() {
		return time.Second
	}
	since := g.Now().Sub(time.Unix(0, g.started.Load()))
	if since < g.StartupGrace {
		return g.StartupGrace - since
	}
	return 0
}

// patch writes a change of rt's metadata (its finalizers), guarded by the resourceVersion
// it was read at, so that no other owner's finalizer is lost to a stale copy; a conflict
// is tried again shortly.
func (g *RuntimeGuard) patch(ctx context.Context, rt, patch *platformv1alpha1.ServiceRuntime) (reconcile.Result, error) {
	if err := g.Client.Patch(ctx, patch, client.MergeFromWithOptions(rt, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	return reconcile.Result{}, nil
}

// event records a Warning event about the twin rt (cluster-scoped: in namespace
// default), written directly; one that cannot be written is lost, as with client-go's
// recorder.
func (g *RuntimeGuard) event(ctx context.Context, rt *platformv1alpha1.ServiceRuntime, msg string) {
	now := metav1.NewTime(g.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", rt.Name, now.UnixNano()), Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: platformv1alpha1.SchemeGroupVersion.String(), Kind: "ServiceRuntime", Name: rt.Name,
			UID: rt.UID, ResourceVersion: rt.ResourceVersion,
		},
		Type: corev1.EventTypeWarning, Reason: platformv1alpha1.ReasonHostsCapabilities, Message: msg,
		Source:         corev1.EventSource{Component: GuardControllerName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: GuardControllerName,
	}
	if err := g.Client.Create(ctx, ev); err != nil {
		log.FromContext(ctx).V(1).Info("failed to record an event", "runtime", rt.Name, "err", err.Error())
	}
}

// maxWorkspacesNamed is how many workspaces a held runtime's message names.
const maxWorkspacesNamed = 5

// HeldMessage says why a runtime being removed is held: how many capabilities it hosts
// and in which tenant workspaces (by logical cluster, most first).
func HeldMessage(hosted map[string]int) string {
	total := 0
	for _, n := range hosted {
		total += n
	}
	clusters := slices.SortedFunc(maps.Keys(hosted), func(a, b string) int {
		if hosted[a] != hosted[b] {
			return hosted[b] - hosted[a]
		}
		return strings.Compare(a, b)
	})
	var where []string
	for i, c := range clusters {
		if i == maxWorkspacesNamed {
			where = append(where, fmt.Sprintf("and %d more workspaces", len(clusters)-i))
			break
		}
		where = append(where, fmt.Sprintf("%d in workspace %s", hosted[c], c))
	}
	noun, them := "capabilities", "they are"
	if total == 1 {
		noun, them = "capability", "it is"
	}
	return fmt.Sprintf("being removed: hosts %d %s (%s); it is removed once %s deleted", total, noun, strings.Join(where, ", "), them)
}
