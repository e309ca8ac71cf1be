package scheduler

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	"github.com/kcp-dev/logicalcluster/v3"
)

// Fleet is the capabilities of every bound workspace at once: one informer per kind and
// virtual-workspace endpoint, whose objects name their workspace (logicalcluster.From).
//
// The scheduler follows it with one handler per kind, whatever the number of workspaces:
// an event costs one call, where a handler per engaged workspace on the shared informer
// (multicluster-runtime's For, a per-cluster source) would offer every event to every
// workspace's handler and keep two goroutines and a buffer per workspace and kind.
type Fleet interface {
	// AddEventHandler registers h for the objects of gvk in every workspace, on the
	// endpoints there are now and on any that appear later.
	AddEventHandler(ctx context.Context, gvk schema.GroupVersionKind, h toolscache.ResourceEventHandler) (Registration, error)
}

// Registration is a handler added to a Fleet.
type Registration interface {
	// HasSynced reports whether the handler has been given every object each endpoint
	// held when it was added there.
	HasSynced() bool
}

// requestFor is the scheduler's request for a capability seen on a Fleet.
func requestFor(obj any) (mcreconcile.Request, bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	o, ok := obj.(client.Object)
	if !ok {
		return mcreconcile.Request{}, false
	}
	cluster := logicalcluster.From(o)
	if cluster.Empty() {
		return mcreconcile.Request{}, false
	}
	return mcreconcile.Request{
		ClusterName: multicluster.ClusterName(cluster.String()),
		Request:     reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}},
	}, true
}

// fleetSource feeds a kind's controller from a Fleet: every add, update and delete of a
// capability of that kind in any workspace queues its request. A request for a
// workspace not engaged yet is dropped by the controller (multicluster-runtime's
// ClusterNotFoundWrapper); the observer queues a workspace's capabilities again when it
// is engaged.
type fleetSource struct {
	fleet Fleet
	gvk   schema.GroupVersionKind
}

// Start implements source.TypedSource.
func (s *fleetSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[mcreconcile.Request]) error {
	add := func(obj any) {
		if req, ok := requestFor(obj); ok {
			q.Add(req)
		}
	}
	_, err := s.fleet.AddEventHandler(ctx, s.gvk, toolscache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
		DeleteFunc: add,
	})
	if err != nil {
		return fmt.Errorf("failed to follow %s in the tenant workspaces: %w", s.gvk.Kind, err)
	}
	return nil
}

func (s *fleetSource) String() string { return "fleet " + s.gvk.String() }
