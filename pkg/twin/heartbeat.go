// Package twin keeps a provider workspace's ServiceRuntimes, the runtimes' twins, true
// from the coordinator's side: the heartbeat monitor takes Ready back from a runtime
// whose servicelet went silent, the runtime guard holds a runtime being removed until it
// hosts nothing, and the revoker revokes the servicelet credential of a runtime that was
// removed.
package twin

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/runtimeready"
)

// HeartbeatControllerName names the controller that marks silent runtimes not Ready.
const HeartbeatControllerName = "msp-heartbeat"

// HeartbeatMonitor marks a ServiceRuntime not Ready when its servicelet has not reported
// within the timeout, so that the scheduler stops placing capabilities there (the ones
// already there stay; nothing is moved). When every runtime's heartbeat is late at once
// it blames kcp rather than the runtimes, for up to tolerance (see runtimeready.Late).
type HeartbeatMonitor struct {
	// Client reads and writes the provider workspace's ServiceRuntimes.
	Client client.Client
	// Timeout is how old a heartbeat may be; Tolerance how long late heartbeats of every
	// runtime at once are blamed on kcp (see runtimeready.Late).
	Timeout, Tolerance time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// SetupWithManager adds the monitor to mgr, whose cache holds the provider workspace.
func (h *HeartbeatMonitor) SetupWithManager(mgr ctrl.Manager) error {
	if h.Now == nil {
		h.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(HeartbeatControllerName).
		For(&platformv1alpha1.ServiceRuntime{}).
		Complete(h)
}

// Reconcile looks at one runtime's heartbeat and comes back when it would go stale.
func (h *HeartbeatMonitor) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	rt := &platformv1alpha1.ServiceRuntime{}
	if err := h.Client.Get(ctx, req.NamespacedName, rt); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	cond := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		return reconcile.Result{}, nil // nothing to take back
	}
	now := h.Now()
	var age time.Duration
	if hb := rt.Status.LastHeartbeatTime; hb != nil {
		age = now.Sub(hb.Time)
		if age <= h.Timeout {
			return reconcile.Result{RequeueAfter: h.Timeout - age + 100*time.Millisecond}, nil
		}
		all := &platformv1alpha1.ServiceRuntimeList{}
		if err := h.Client.List(ctx, all); err != nil {
			return reconcile.Result{}, err
		}
		runtimes := make([]*platformv1alpha1.ServiceRuntime, len(all.Items))
		for i := range all.Items {
			runtimes[i] = &all.Items[i]
		}
		newest := framework.NewestHeartbeat(runtimes)
		if !runtimeready.Late(hb, newest, now, h.Timeout, h.Tolerance) {
			// Every runtime is late alike: kcp lags, the servicelets most likely do not.
			log.FromContext(ctx).Info("every runtime's heartbeat is late: blaming kcp, not the runtime",
				"runtime", rt.Name, "age", age.Round(time.Second), "freshestAge", now.Sub(newest).Round(time.Second))
			return reconcile.Result{RequeueAfter: h.Timeout / 4}, nil
		}
	}
	msg := "no heartbeat from the runtime's servicelet"
	if rt.Status.LastHeartbeatTime != nil {
		msg = fmt.Sprintf("no heartbeat from the runtime's servicelet for %s (bound: %s); capabilities on it stay, new ones go elsewhere",
			age.Round(time.Second), h.Timeout)
	}
	patch := rt.DeepCopy()
	meta.SetStatusCondition(&patch.Status.Conditions, metav1.Condition{
		Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: platformv1alpha1.ReasonHeartbeatMissed, Message: msg,
	})
	// Guarded by resourceVersion: a heartbeat that lands meanwhile wins.
	if err := h.Client.Status().Patch(ctx, patch, client.MergeFromWithOptions(rt, client.MergeFromWithOptimisticLock{})); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	return reconcile.Result{}, nil
}
