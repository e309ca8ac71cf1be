package scheduler

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/sdk/capability"
)

func removing(uid string) func(*platformv1alpha1.ServiceRuntime) {
	return func(rt *platformv1alpha1.ServiceRuntime) {
		rt.UID = types.UID(uid)
		rt.DeletionTimestamp = &metav1.Time{Time: testNow}
		rt.Finalizers = []string{platformv1alpha1.FinalizerHostedCapabilities}
	}
}

// The tenants of the capabilities on a runtime being removed get one RuntimeRemoval
// event each per removal: not one on every pass, not one for a capability being
// deleted, none from a replica that does not own the workspace, and one for a decision
// once the cache shows it.
func TestNotifyRuntimeRemoval(t *testing.T) {
	ctx := context.Background()
	fw, err := plugins.NewFramework(plugins.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	kind := capability.Kind{GVK: pgGVK, Resource: pgGR.Resource}
	const other = multicluster.ClusterName("tenant-b")
	mine := &fakeStore{obj: capabilityDoc(withRuntimeName("rt-a"))}
	theirs := &fakeStore{obj: capabilityDoc(withRuntimeName("rt-a"))}
	doomed := readyRuntime("rt-a", deLoc, 10, removing("uid-1"))
	runtimes := &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{doomed, readyRuntime("rt-b", deLoc, 10)}}
	s, err := newScheduler(Options{
		Kinds: []capability.Kind{kind}, Framework: fw, Runtimes: runtimes, Now: func() time.Time { return testNow },
		Owns: func(c multicluster.ClusterName) bool { return c == tenant },
	}, fakeWorkspaces{tenant: mine, other: theirs})
	if err != nil {
		t.Fatal(err)
	}
	theirKey := capabilityKey(other.String(), pgKind, capName.Namespace, capName.Name)
	s.acct.Observe(capKey, "rt-a", req("1Gi"), "t")
	s.acct.Observe(theirKey, "rt-a", req("1Gi"), "t2")

	want := []string{"Warning RuntimeRemoval: the provider is removing runtime rt-a: this capability keeps running there until you delete it; to move it, create a new capability and delete this one"}
	s.notifyRemovals(ctx)
	if diff := cmp.Diff(want, mine.events); diff != "" {
		t.Errorf("events of the owned capability (-want +got):\n%s", diff)
	}
	if len(theirs.events) != 0 {
		t.Errorf("a replica told a capability of a workspace it does not own: %v", theirs.events)
	}
	s.notifyRemovals(ctx)
	s.notifyRemovals(ctx)
	if len(mine.events) != 1 {
		t.Errorf("told %d times, want once per removal: %v", len(mine.events), mine.events)
	}

	// A decision onto rt-a the cache does not show yet is told once it does.
	late := capabilityKey(tenant.String(), pgKind, capName.Namespace, "late")
	lateStore := &fakeStore{obj: capabilityDoc()}
	lateStore.obj.SetName("late")
	s.workspaces = storeWorkspaces{tenant: &multiStore{mine, lateStore}}
	s.acct.Assume(late, "rt-a", req("1Gi"), "t", testNow)
	if n := s.NotifyRuntimeRemoval(ctx, doomed); n != 0 {
		t.Errorf("told %d capabilities before the cache showed the decision, want 0", n)
	}
	lateStore.obj = capabilityDoc(withRuntimeName("rt-a"))
	lateStore.obj.SetName("late")
	if n := s.NotifyRuntimeRemoval(ctx, doomed); n != 1 || len(lateStore.events) != 1 {
		t.Errorf("told %d (events %v) once the cache shows the decision, want 1", n, lateStore.events)
	}

	// A capability being deleted is not told.
	gone := capabilityKey(tenant.String(), pgKind, capName.Namespace, "gone")
	goneStore := &fakeStore{obj: capabilityDoc(withRuntimeName("rt-a"), beingDeleted)}
	goneStore.obj.SetName("gone")
	s.workspaces = storeWorkspaces{tenant: &multiStore{mine, lateStore, goneStore}}
	s.acct.Observe(gone, "rt-a", req("1Gi"), "t")
	if n := s.NotifyRuntimeRemoval(ctx, doomed); n != 0 || len(goneStore.events) != 0 {
		t.Errorf("told a capability being deleted: %d, %v", n, goneStore.events)
	}

	// The runtime is gone: the removal is forgotten; a new runtime of the same name that
	// is removed in turn is a new removal.
	runtimes.items = runtimes.items[1:]
	s.notifyRemovals(ctx)
	if len(s.removals.told) != 0 {
		t.Errorf("removals still remembered after the runtime went: %v", s.removals.told)
	}
	again := readyRuntime("rt-a", deLoc, 10, removing("uid-2"))
	runtimes.items = append(runtimes.items, again)
	s.notifyRemovals(ctx)
	if len(mine.events) != 2 {
		t.Errorf("a second removal told the capability %d times in all, want 2", len(mine.events))
	}
}

// storeWorkspaces holds any capabilityStore per workspace.
type storeWorkspaces map[multicluster.ClusterName]capabilityStore

func (f storeWorkspaces) Workspace(_ context.Context, name multicluster.ClusterName) (capabilityStore, error) {
	st, ok := f[name]
	if !ok {
		return nil, errBoom
	}
	return st, nil
}

// multiStore is one workspace holding several capabilities, each in a fakeStore of its
// own (by name).
type multiStore []*fakeStore

func (m *multiStore) of(name string) *fakeStore {
	for _, st := range *m {
		if st.obj != nil && st.obj.GetName() == name {
			return st
		}
	}
	return (*m)[0]
}

func (m *multiStore) Get(ctx context.Context, key types.NamespacedName, obj *unstructured.Unstructured) error {
	return m.of(key.Name).Get(ctx, key, obj)
}

func (m *multiStore) Patch(ctx context.Context, obj *unstructured.Unstructured, raw []byte) error {
	return m.of(obj.GetName()).Patch(ctx, obj, raw)
}

func (m *multiStore) ApplyStatus(ctx context.Context, obj *unstructured.Unstructured) error {
	return m.of(obj.GetName()).ApplyStatus(ctx, obj)
}

func (m *multiStore) Event(ctx context.Context, obj *unstructured.Unstructured, eventtype, reason, message string) {
	m.of(obj.GetName()).Event(ctx, obj, eventtype, reason, message)
}

// Hosted counts by workspace what counts on a runtime: observed and assumed
// capabilities, and the unexpired reservations of capabilities not counted otherwise.
func TestAccountingHosted(t *testing.T) {
	now := testNow
	a := NewAccounting()
	a.now = func() time.Time { return now }
	a.Observe("ws-1|PostgresDatabase.postgres.msp.dev|default/a", "rt", req("1Gi"), "t1")
	a.Assume("ws-1|PostgresDatabase.postgres.msp.dev|default/b", "rt", req("1Gi"), "t1", now)
	a.Observe("ws-2|PostgresDatabase.postgres.msp.dev|default/c", "rt", req("1Gi"), "t2")
	a.Observe("ws-2|PostgresDatabase.postgres.msp.dev|default/d", "other", req("1Gi"), "t2")
	reservations := map[string]Reservation{
		"ws-3|PostgresDatabase.postgres.msp.dev|default/e": {Requests: req("1Gi"), At: now.Unix()},
		"ws-3|PostgresDatabase.postgres.msp.dev|default/f": {Requests: req("1Gi"), At: now.Add(-time.Hour).Unix()}, // expired
		"ws-1|PostgresDatabase.postgres.msp.dev|default/a": {Requests: req("1Gi"), At: now.Unix()},                 // counted already
	}
	raw, err := json.Marshal(reservations)
	if err != nil {
		t.Fatal(err)
	}
	r := rt("rt")
	r.ResourceVersion = strconv.Itoa(7)
	r.Annotations = map[string]string{platformv1alpha1.AnnotationReservations: string(raw)}
	if diff := cmp.Diff(map[string]int{"ws-1": 2, "ws-2": 1, "ws-3": 1}, a.Hosted(r)); diff != "" {
		t.Errorf("Hosted (-want +got):\n%s", diff)
	}
	if got := a.Hosted(rt("empty")); got != nil {
		t.Errorf("Hosted of an empty runtime = %v, want nil", got)
	}
	if diff := cmp.Diff([]string{"ws-1|PostgresDatabase.postgres.msp.dev|default/a", "ws-1|PostgresDatabase.postgres.msp.dev|default/b", "ws-2|PostgresDatabase.postgres.msp.dev|default/c"}, a.On("rt")); diff != "" {
		t.Errorf("On (-want +got):\n%s", diff)
	}
}
