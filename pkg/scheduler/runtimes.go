package scheduler

import (
	"context"
	"fmt"
	"reflect"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// CachedRuntimes lists ServiceRuntimes from an informer cache of the provider workspace
// and tells the scheduler when a change may let a waiting capability fit.
type CachedRuntimes struct {
	notifier
	cache cache.Cache
	reg   toolscache.ResourceEventHandlerRegistration
}

// NewCachedRuntimes watches the ServiceRuntimes in c. The Waker it is given (see
// ChangeNotifier; New gives it the scheduler) is woken when a runtime appears, or
// changes in a way that may make it fit more capabilities; heartbeats alone do not
// wake it. A Waker that is a RemovalWaker is also told when a runtime starts being
// removed.
func NewCachedRuntimes(ctx context.Context, c cache.Cache) (*CachedRuntimes, error) {
	inf, err := c.GetInformer(ctx, &platformv1alpha1.ServiceRuntime{})
	if err != nil {
		return nil, fmt.Errorf("failed to watch ServiceRuntimes: %w", err)
	}
	cr := &CachedRuntimes{cache: c}
	onChange := cr.changed
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			onChange()
			if rt, ok := obj.(*platformv1alpha1.ServiceRuntime); ok && rt.DeletionTimestamp != nil {
				cr.removing()
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*platformv1alpha1.ServiceRuntime)
			n, ok2 := newObj.(*platformv1alpha1.ServiceRuntime)
			if !ok1 || !ok2 || mayFitMore(o, n) {
				onChange()
			}
			if ok1 && ok2 && o.DeletionTimestamp == nil && n.DeletionTimestamp != nil {
				cr.removing()
			}
		},
		DeleteFunc: func(any) { onChange() },
	})
	if err != nil {
		return nil, err
	}
	cr.reg = reg
	return cr, nil
}

// List returns the runtimes, shared with the cache: callers must not modify them.
func (c *CachedRuntimes) List(ctx context.Context) ([]*platformv1alpha1.ServiceRuntime, error) {
	var list platformv1alpha1.ServiceRuntimeList
	if err := c.cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("failed to list ServiceRuntimes: %w", err)
	}
	out := make([]*platformv1alpha1.ServiceRuntime, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// Synced reports whether the cache has listed the runtimes.
func (c *CachedRuntimes) Synced() bool { return c.reg.HasSynced() }

// mayFitMore tells whether a runtime's change can make a capability fit that did not:
// anything in its spec or labels, or its readiness.
func mayFitMore(o, n *platformv1alpha1.ServiceRuntime) bool {
	if o.Generation != n.Generation || !reflect.DeepEqual(o.Labels, n.Labels) || !reflect.DeepEqual(o.Spec, n.Spec) {
		return true
	}
	return readyStatus(o) != readyStatus(n)
}

func readyStatus(r *platformv1alpha1.ServiceRuntime) string {
	for _, c := range r.Status.Conditions {
		if c.Type == platformv1alpha1.ConditionReady {
			return string(c.Status)
		}
	}
	return ""
}

// removing tells the Waker, when it is a RemovalWaker, that a runtime started being
// removed.
func (n *notifier) removing() {
	if w := n.waker.Load(); w != nil {
		if r, ok := (*w).(RemovalWaker); ok {
			r.RuntimeRemoving()
		}
	}
}
