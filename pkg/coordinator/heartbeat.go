package coordinator

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

// heartbeatMonitor marks a ServiceRuntime not Ready when its servicelet has not reported
// within the timeout, so that the scheduler stops placing capabilities there (the ones
// already there stay; nothing is moved). When every runtime's heartbeat is late at once
// it blames kcp rather than the runtimes, for up to tolerance (see runtimeready.Late).
type heartbeatMonitor struct {
	client    client.Client
	timeout   time.Duration
	tolerance time.Duration
	now       func() time.Time
}

func (h *heartbeatMonitor) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(HeartbeatControllerName).
		For(&platformv1alpha1.ServiceRuntime{}).
		Complete(h)
}

// Reconcile looks at one runtime's heartbeat and comes back when it would go stale.
func (h *heartbeatMonitor) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	rt := &platformv1alpha1.ServiceRuntime{}
	if err := h.client.Get(ctx, req.NamespacedName, rt); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	cond := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		return reconcile.Result{}, nil // nothing to take back
	}
	now := h.now()
	var age time.Duration
	if hb := rt.Status.LastHeartbeatTime; hb != nil {
		age = now.Sub(hb.Time)
		if age <= h.timeout {
			return reconcile.Result{RequeueAfter: h.timeout - age + 100*time.Millisecond}, nil
		}
		all := &platformv1alpha1.ServiceRuntimeList{}
		if err := h.client.List(ctx, all); err != nil {
			return reconcile.Result{}, err
		}
		runtimes := make([]*platformv1alpha1.ServiceRuntime, len(all.Items))
		for i := range all.Items {
			runtimes[i] = &all.Items[i]
		}
		newest := framework.NewestHeartbeat(runtimes)
		if !runtimeready.Late(hb, newest, now, h.timeout, h.tolerance) {
			// Every runtime is late alike: kcp lags, the servicelets most likely do not.
			log.FromContext(ctx).Info("every runtime's heartbeat is late: blaming kcp, not the runtime",
				"runtime", rt.Name, "age", age.Round(time.Second), "freshestAge", now.Sub(newest).Round(time.Second))
			return reconcile.Result{RequeueAfter: h.timeout / 4}, nil
		}
	}
	msg := "no heartbeat from the runtime's servicelet"
	if rt.Status.LastHeartbeatTime != nil {
		msg = fmt.Sprintf("no heartbeat from the runtime's servicelet for %s (bound: %s); capabilities on it stay, new ones go elsewhere",
			age.Round(time.Second), h.timeout)
	}
	patch := rt.DeepCopy()
	meta.SetStatusCondition(&patch.Status.Conditions, metav1.Condition{
		Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: platformv1alpha1.ReasonHeartbeatMissed, Message: msg,
	})
	// Guarded by resourceVersion: a heartbeat that lands meanwhile wins.
	if err := h.client.Status().Patch(ctx, patch, client.MergeFromWithOptions(rt, client.MergeFromWithOptimisticLock{})); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	return reconcile.Result{}, nil
}
