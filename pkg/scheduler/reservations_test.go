package scheduler

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/sdk/capability"
)

func withReservations(t *testing.T, entries map[string]Reservation) func(*platformv1alpha1.ServiceRuntime) {
	raw, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return func(rt *platformv1alpha1.ServiceRuntime) {
		rt.Annotations = map[string]string{platformv1alpha1.AnnotationReservations: string(raw)}
		rt.ResourceVersion = "7"
	}
}

func TestAccountingCountsOtherReplicasReservations(t *testing.T) {
	now := time.Now()
	a := NewAccounting()
	a.now = func() time.Time { return now }
	one := req("1Gi")
	rtA := readyRuntime("a", deLoc, 10, withReservations(t, map[string]Reservation{
		"fresh":    {Requests: one, Tenant: "t1", At: now.Unix()},
		"observed": {Requests: one, Tenant: "t1", At: now.Unix()},
		"expired":  {Requests: one, Tenant: "t1", At: now.Add(-2 * time.Minute).Unix()},
		"self":     {Requests: one, Tenant: "t1", At: now.Unix()},
	}))
	a.Observe("observed", "a", one, "t1")
	infos := a.Snapshot([]*platformv1alpha1.ServiceRuntime{rtA}, "self", "t1")
	storage := infos[0].Allocated[corev1.ResourceStorage]
	got := map[string]any{"count": infos[0].Count, "storage": storage.String(), "tenant": infos[0].PerTenant["t1"]}
	want := map[string]any{"count": 2, "storage": "2Gi", "tenant": 2} // observed once, fresh; not expired, not the excluded one
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runtime a (-want +got):\n%s", diff)
	}
	a.Assume("fresh", "a", one, "t1", now)
	if n := a.Snapshot([]*platformv1alpha1.ServiceRuntime{rtA}, "", "t1")[0].Count; n != 3 {
		t.Errorf("with fresh assumed here too, runtime a counts %d, want 3 (fresh once, observed, self)", n)
	}
	rtA.Annotations[platformv1alpha1.AnnotationReservations] = "{not json"
	rtA.ResourceVersion = "8"
	if n := a.Snapshot([]*platformv1alpha1.ServiceRuntime{rtA}, "", "t1")[0].Count; n != 2 {
		t.Errorf("with a malformed record, runtime a counts %d, want 2 (what this accounting knows)", n)
	}
}

// Two replicas, each with its own caches, place one capability each on a runtime with
// room for one. The second decides on a stale twin; its reservation conflicts, the fresh
// twin shows the first's reservation, and it writes no assignment.
func TestReservationsKeepTwoReplicasFromOverfilling(t *testing.T) {
	ctx := context.Background()
	fw, err := plugins.NewFramework(plugins.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	kind := capability.Kind{GVK: pgGVK, Resource: pgGR.Resource}
	stale := readyRuntime("rt-a", deLoc, 1)
	stale.ResourceVersion = "1"
	scheme := Scheme()
	twins := fake.NewClientBuilder().WithScheme(scheme).WithObjects(stale.DeepCopy()).Build()
	replica := func(id string, cluster multicluster.ClusterName, store *fakeStore) *Scheduler {
		s, err := newScheduler(Options{
			Kinds: []capability.Kind{kind}, Framework: fw, Now: func() time.Time { return testNow },
			Runtimes:     &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{stale}},
			Reservations: &Reservations{Client: twins, Reader: twins, Self: id},
		}, fakeWorkspaces{cluster: store})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first, second := &fakeStore{obj: capabilityDoc()}, &fakeStore{obj: capabilityDoc()}
	a, b := replica("a", tenant, first), replica("b", "tenant-b", second)
	reqFor := func(cluster multicluster.ClusterName) mcreconcile.Request {
		return mcreconcile.Request{Request: reconcile.Request{NamespacedName: capName}, ClusterName: cluster}
	}
	if _, err := (&reconciler{s: a, kind: kind}).Reconcile(ctx, reqFor(tenant)); err != nil {
		t.Fatal(err)
	}
	if len(first.patches) != 1 {
		t.Fatalf("replica a wrote %d patches, want its assignment: %v", len(first.patches), first.patches)
	}
	res, err := (&reconciler{s: b, kind: kind}).Reconcile(ctx, reqFor("tenant-b"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Requeue {
		t.Errorf("replica b's result %+v, want a requeue to decide again", res)
	}
	if len(second.patches) != 0 {
		t.Errorf("replica b assigned although the runtime is full: %v", second.patches)
	}
	if got := b.acct.RuntimeOf(capabilityKey("tenant-b", pgKind, capName.Namespace, capName.Name)); got != "" {
		t.Errorf("replica b still counts its refused decision on %q", got)
	}
	twin := &platformv1alpha1.ServiceRuntime{}
	if err := twins.Get(ctx, types.NamespacedName{Name: "rt-a"}, twin); err != nil {
		t.Fatal(err)
	}
	entries, err := ParseReservations(twin)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[capKey].By != "a" {
		t.Errorf("reservations on rt-a: %+v, want replica a's only", entries)
	}

	// Decided again on the fresh twin, b's capability waits: the runtime is full.
	b.opts.Runtimes = &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{twin}}
	if _, err := (&reconciler{s: b, kind: kind}).Reconcile(ctx, reqFor("tenant-b")); err != nil {
		t.Fatal(err)
	}
	if len(second.patches) != 0 || len(second.applied) != 1 || second.applied[0].Conditions[0].Reason != platformv1alpha1.ReasonUnschedulable {
		t.Errorf("replica b, decided again: patches %v, status %+v; want no assignment and Unschedulable", second.patches, second.applied)
	}
}
