package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	"github.com/kcp-dev/logicalcluster/v3"

	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/sdk/capability"
)

// fakeFleet hands out the handlers added to it, by kind.
type fakeFleet struct {
	mu       sync.Mutex
	handlers map[schema.GroupVersionKind][]toolscache.ResourceEventHandler
	synced   bool
}

func (f *fakeFleet) AddEventHandler(_ context.Context, gvk schema.GroupVersionKind, h toolscache.ResourceEventHandler) (Registration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handlers == nil {
		f.handlers = map[schema.GroupVersionKind][]toolscache.ResourceEventHandler{}
	}
	f.handlers[gvk] = append(f.handlers[gvk], h)
	return f, nil
}

func (f *fakeFleet) HasSynced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

func (f *fakeFleet) of(gvk schema.GroupVersionKind) []toolscache.ResourceEventHandler {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handlers[gvk]
}

// inWorkspace is a capability document of cluster, as a wildcard informer holds it.
func inWorkspace(cluster, name, runtime string) *unstructured.Unstructured {
	u := capabilityDoc()
	u.SetName(name)
	u.SetAnnotations(map[string]string{logicalcluster.AnnotationKey: cluster})
	if runtime != "" {
		_ = unstructured.SetNestedField(u.Object, runtime, "spec", "runtimeName")
	}
	return u
}

func TestRequestForNamesTheWorkspace(t *testing.T) {
	want := mcreconcile.Request{ClusterName: "ws-1", Request: reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: "db"}}}
	got, ok := requestFor(inWorkspace("ws-1", "db", ""))
	if !ok {
		t.Fatal("requestFor: no request")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requestFor() (-want +got):\n%s", diff)
	}
	got, ok = requestFor(toolscache.DeletedFinalStateUnknown{Key: "x", Obj: inWorkspace("ws-1", "db", "")})
	if !ok || got != want {
		t.Errorf("requestFor(tombstone) = %v, %v; want %v", got, ok, want)
	}
	u := capabilityDoc()
	if _, ok := requestFor(u); ok {
		t.Error("requestFor: an object without its workspace must give no request")
	}
}

// TestObserverFollowsEveryWorkspaceWithOneHandler: one handler per kind, whatever the
// number of workspaces, counts each capability under its own workspace; the
// observer is not synced before it has registered and its registrations synced.
func TestObserverFollowsEveryWorkspaceWithOneHandler(t *testing.T) {
	fw, err := plugins.NewFramework(plugins.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	fleet := &fakeFleet{}
	kind := capability.Kind{GVK: pgGVK}
	s, err := newScheduler(Options{Kinds: []capability.Kind{kind}, Fleet: fleet, Framework: fw, Runtimes: &fakeRuntimes{}}, fakeWorkspaces{})
	if err != nil {
		t.Fatal(err)
	}
	if s.observer.Synced() {
		t.Error("Synced before the observer started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.observer.Start(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(fleet.of(pgGVK)) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	handlers := fleet.of(pgGVK)
	if len(handlers) != 1 {
		t.Fatalf("the observer added %d handlers for the kind, want 1", len(handlers))
	}
	if s.observer.Synced() {
		t.Error("Synced while the fleet's registration is not")
	}
	fleet.mu.Lock()
	fleet.synced = true
	fleet.mu.Unlock()
	if !s.observer.Synced() {
		t.Error("not Synced after the fleet's registration synced")
	}

	h := handlers[0]
	for i := range 3 {
		h.OnAdd(inWorkspace("ws-"+string(rune('a'+i)), "db", "rt-1"), false)
	}
	h.OnAdd(inWorkspace("ws-a", "other", ""), false)
	if got := s.acct.Count("rt-1"); got != 3 {
		t.Errorf("rt-1 counts %d capabilities, want 3 (one per workspace)", got)
	}
	key := capabilityKey("ws-b", pgKind, "default", "db")
	if got := s.acct.RuntimeOf(key); got != "rt-1" {
		t.Errorf("ws-b's db counts on %q, want rt-1", got)
	}
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Obj: inWorkspace("ws-b", "db", "rt-1")})
	if got := s.acct.Count("rt-1"); got != 2 {
		t.Errorf("after ws-b's delete rt-1 counts %d, want 2", got)
	}
}
