package twin

import (
	"context"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/identity"
)

// RevokerControllerName names the controller that revokes a removed runtime's servicelet.
const RevokerControllerName = "msp-servicelet-revoker"

// Revoker deletes the servicelet's ServiceAccount of a ServiceRuntime that was removed:
// removing a runtime revokes its servicelet's credential (the front door then cuts its
// open watches), whoever issued it. It acts once the twin is gone, not when it is only
// being removed (see RuntimeGuard).
type Revoker struct {
	// Config addresses the provider workspace.
	Config *rest.Config
}

// revokeWhenGone lets through only a twin's removal from the cache: the twin is gone.
// A deletionTimestamp alone is an update: while the RuntimeGuard holds a runtime that
// still hosts capabilities, its servicelet keeps its credential and deletes them for
// their tenants.
var revokeWhenGone = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	UpdateFunc:  func(event.UpdateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
}

// SetupWithManager adds the revoker to mgr, whose cache holds the provider workspace.
func (r *Revoker) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(RevokerControllerName).
		For(&platformv1alpha1.ServiceRuntime{}, builder.WithPredicates(revokeWhenGone)).
		Complete(r)
}

// Reconcile runs for a runtime that is gone only (see revokeWhenGone).
func (r *Revoker) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := identity.RevokeServicelet(ctx, r.Config, req.Name); err != nil {
		return reconcile.Result{}, err
	}
	log.FromContext(ctx).Info("runtime removed: its servicelet's credential is revoked", "runtime", req.Name, "serviceAccount", identity.ServiceAccountName(req.Name))
	return reconcile.Result{}, nil
}
