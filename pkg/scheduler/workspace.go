package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/log"
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
	// Event records an event about obj in its workspace.
	Event(ctx context.Context, obj *unstructured.Unstructured, eventtype, reason, message string)
}

// managerWorkspaces are the workspaces the multicluster manager engaged.
type managerWorkspaces struct{ mgr mcmanager.Manager }

func (m managerWorkspaces) Workspace(ctx context.Context, name multicluster.ClusterName) (capabilityStore, error) {
	cl, err := m.mgr.GetCluster(ctx, name)
	if err != nil {
		return nil, err
	}
	return clusterStore{cl: cl, eventRecorder: directEvents{cl.GetClient()}}, nil
}

// directEvents writes an event as one create through the workspace's client. Not
// client-go's event recorder: that one starts a broadcaster per workspace (goroutines, a
// watch and a queue of a thousand events each), which at W=1000 workspaces with waiting
// capabilities held most of the coordinator's memory. The scheduler records few events
// (Warnings when a capability's reason to wait changes), so it needs no aggregation.
type directEvents struct{ c client.Client }

// eventTimeout bounds the write of one event; an event that cannot be written is lost,
// as with client-go's recorder.
const eventTimeout = 5 * time.Second

func (d directEvents) Event(ctx context.Context, obj *unstructured.Unstructured, eventtype, reason, message string) {
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	if err := d.c.Create(ctx, newEvent(obj, eventtype, reason, message, time.Now())); err != nil {
		log.FromContext(ctx).V(1).Info("failed to record an event", "reason", reason, "err", err.Error())
	}
}

// maxEventMessage is the longest message an event keeps (the API's limit is 1 KiB for
// a note; longer ones are cut).
const maxEventMessage = 1024

// newEvent is the event about obj that the scheduler records.
func newEvent(obj *unstructured.Unstructured, eventtype, reason, message string, now time.Time) *corev1.Event {
	if len(message) > maxEventMessage {
		message = message[:maxEventMessage-3] + "..."
	}
	t := metav1.NewTime(now)
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", obj.GetName(), now.UnixNano()),
			Namespace: obj.GetNamespace(),
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Type: eventtype, Reason: reason, Message: message,
		Source:         corev1.EventSource{Component: ControllerName},
		FirstTimestamp: t, LastTimestamp: t, Count: 1,
		ReportingController: ControllerName,
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
