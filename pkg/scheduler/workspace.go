package scheduler

import (
	"context"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
)

// workspaces gives the reconcilers the capabilities of an engaged workspace.
type workspaces interface {
	Workspace(ctx context.Context, name multicluster.ClusterName) (capabilityStore, error)
}

// capabilityStore is what a reconciler reads and writes of one workspace's capabilities.
type capabilityStore interface {
	// Get reads a capability from the workspace's cache.
	Get(ctx context.Context, key types.NamespacedName, obj *unstructured.Unstructured) error
	// Patch applies a JSON merge patch to the capability's metadata and spec; obj
	// becomes what the server returned.
	Patch(ctx context.Context, obj *unstructured.Unstructured, mergePatch []byte) error
	// ApplyStatus applies obj's status (the scheduler's part of it) with server-side
	// apply, as the scheduler's field manager.
	ApplyStatus(ctx context.Context, obj *unstructured.Unstructured) error
	eventRecorder
}

type eventRecorder interface {
	Event(object runtime.Object, eventtype, reason, message string)
}

// managerWorkspaces are the workspaces the multicluster manager engaged.
type managerWorkspaces struct{ mgr mcmanager.Manager }

func (m managerWorkspaces) Workspace(ctx context.Context, name multicluster.ClusterName) (capabilityStore, error) {
	cl, err := m.mgr.GetCluster(ctx, name)
	if err != nil {
		return nil, err
	}
	return clusterStore{cl: cl, eventRecorder: lazyRecorder{cl}}, nil
}

// lazyRecorder asks the workspace for its event recorder only when an event is
// recorded: most reconciles record none (only Warnings are recorded by default).
type lazyRecorder struct{ cl cluster.Cluster }

func (l lazyRecorder) Event(object runtime.Object, eventtype, reason, message string) {
	if r := l.cl.GetEventRecorderFor(ControllerName); r != nil {
		r.Event(object, eventtype, reason, message)
	}
}

// clusterStore reads from a workspace's cache and writes through its client.
type clusterStore struct {
	cl cluster.Cluster
	eventRecorder
}

func (c clusterStore) Get(ctx context.Context, key types.NamespacedName, obj *unstructured.Unstructured) error {
	return c.cl.GetCache().Get(ctx, key, obj)
}

func (c clusterStore) Patch(ctx context.Context, obj *unstructured.Unstructured, mergePatch []byte) error {
	return c.cl.GetClient().Patch(ctx, obj, client.RawPatch(types.MergePatchType, mergePatch))
}

func (c clusterStore) ApplyStatus(ctx context.Context, obj *unstructured.Unstructured) error {
	return c.cl.GetClient().Status().Patch(ctx, obj, client.Apply, client.FieldOwner(ControllerName), client.ForceOwnership) //nolint:staticcheck // SSA of an unstructured status
}

// notifier implements ChangeNotifier for the cached listers. Until a Waker is
// registered a change wakes nobody: no scheduler exists yet that could be waiting.
type notifier struct {
	waker atomic.Pointer[Waker]
}

// Notify makes every later change call w.WakeWaiting.
func (n *notifier) Notify(w Waker) { n.waker.Store(&w) }

func (n *notifier) changed() {
	if w := n.waker.Load(); w != nil {
		(*w).WakeWaiting()
	}
}

var (
	_ ChangeNotifier = (*CachedRuntimes)(nil)
	_ ChangeNotifier = (*CachedClasses)(nil)
)
