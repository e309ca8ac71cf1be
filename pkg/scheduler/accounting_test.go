package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	"github.com/kcp-dev/logicalcluster/v3"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/sdk/capability"
)

func rt(name string) *platformv1alpha1.ServiceRuntime {
	return &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func req(storage string) corev1.ResourceList {
	return corev1.ResourceList{
		platformv1alpha1.ResourceCapabilities: resource.MustParse("1"),
		corev1.ResourceStorage:                resource.MustParse(storage),
	}
}

type runtimeUsage struct {
	Count   int
	Storage string
}

func usageOf(a *Accounting, exclude string, runtimes ...string) map[string]runtimeUsage {
	var rts []*platformv1alpha1.ServiceRuntime
	for _, n := range runtimes {
		rts = append(rts, rt(n))
	}
	out := map[string]runtimeUsage{}
	for _, info := range a.Snapshot(rts, exclude, "") {
		s := info.Allocated[corev1.ResourceStorage]
		out[info.Name()] = runtimeUsage{Count: info.Count, Storage: s.String()}
	}
	return out
}

func TestAccounting(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		steps   func(a *Accounting)
		exclude string
		want    map[string]runtimeUsage
	}{
		{
			name: "observed and assumed both count",
			steps: func(a *Accounting) {
				a.Observe("x", "a", req("1Gi"), "t1")
				a.Assume("y", "a", req("2Gi"), "t1", now)
				a.Assume("z", "b", req("1Gi"), "t2", now)
			},
			want: map[string]runtimeUsage{"a": {2, "3Gi"}, "b": {1, "1Gi"}},
		},
		{
			name: "an observation replaces an assumption without counting twice",
			steps: func(a *Accounting) {
				a.Assume("y", "a", req("2Gi"), "t1", now)
				a.Observe("y", "a", req("2Gi"), "t1")
			},
			want: map[string]runtimeUsage{"a": {1, "2Gi"}, "b": {0, "0"}},
		},
		{
			name: "an unassigned observation leaves an assumption in place",
			steps: func(a *Accounting) {
				a.Assume("y", "a", req("2Gi"), "t1", now)
				a.Observe("y", "", req("2Gi"), "t1") // the cache has not caught up yet
			},
			want: map[string]runtimeUsage{"a": {1, "2Gi"}, "b": {0, "0"}},
		},
		{
			name: "forget and delete free the runtime",
			steps: func(a *Accounting) {
				a.Assume("y", "a", req("2Gi"), "t1", now)
				a.Observe("x", "b", req("1Gi"), "t1")
				a.Forget("y")
				a.Delete("x")
			},
			want: map[string]runtimeUsage{"a": {0, "0"}, "b": {0, "0"}},
		},
		{
			name: "exclude leaves one capability out",
			steps: func(a *Accounting) {
				a.Observe("x", "a", req("1Gi"), "t1")
				a.Observe("y", "a", req("1Gi"), "t1")
			},
			exclude: "x",
			want:    map[string]runtimeUsage{"a": {1, "1Gi"}, "b": {0, "0"}},
		},
		{
			name: "allocations on unknown runtimes are ignored",
			steps: func(a *Accounting) {
				a.Observe("x", "gone", req("1Gi"), "t1")
			},
			want: map[string]runtimeUsage{"a": {0, "0"}, "b": {0, "0"}},
		},
		{
			name: "non-positive requests never lower an allocation",
			steps: func(a *Accounting) {
				a.Observe("x", "a", req("10Gi"), "t1")
				a.Observe("y", "a", req("-5Gi"), "t1")
				a.Assume("z", "a", req("0"), "t1", now)
			},
			want: map[string]runtimeUsage{"a": {3, "10Gi"}, "b": {0, "0"}},
		},
		{
			name: "excluding a capability with a negative request adds nothing",
			steps: func(a *Accounting) {
				a.Observe("x", "a", req("10Gi"), "t1")
				a.Observe("y", "a", req("-5Gi"), "t1")
			},
			exclude: "y",
			want:    map[string]runtimeUsage{"a": {1, "10Gi"}, "b": {0, "0"}},
		},
		{
			name: "deleting a capability with a negative request frees nothing",
			steps: func(a *Accounting) {
				a.Observe("x", "a", req("10Gi"), "t1")
				a.Observe("y", "a", req("-5Gi"), "t1")
				a.Delete("y")
			},
			want: map[string]runtimeUsage{"a": {1, "10Gi"}, "b": {0, "0"}},
		},
		{
			name: "expired assumptions are dropped",
			steps: func(a *Accounting) {
				a.Assume("old", "a", req("1Gi"), "t1", now.Add(-time.Minute))
				a.Assume("new", "a", req("1Gi"), "t1", now)
				if n := a.Expire(now, 30*time.Second); n != 1 {
					t.Errorf("Expire dropped %d, want 1", n)
				}
			},
			want: map[string]runtimeUsage{"a": {1, "1Gi"}, "b": {0, "0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAccounting()
			tt.steps(a)
			if diff := cmp.Diff(tt.want, usageOf(a, tt.exclude, "a", "b")); diff != "" {
				t.Errorf("runtimeUsage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAccountingPerTenant(t *testing.T) {
	a := NewAccounting()
	a.Observe("x", "a", req("1Gi"), "t1")
	a.Assume("y", "a", req("1Gi"), "t1", time.Now())
	a.Observe("z", "a", req("1Gi"), "t2")
	for _, tc := range []struct {
		tenant, exclude string
		want            map[string]int
	}{
		{tenant: "t1", want: map[string]int{"t1": 2}},
		{tenant: "t2", want: map[string]int{"t2": 1}},
		{tenant: "t1", exclude: "x", want: map[string]int{"t1": 1}},
		{tenant: "t3", want: map[string]int{}},
	} {
		got := a.Snapshot([]*platformv1alpha1.ServiceRuntime{rt("a")}, tc.exclude, tc.tenant)[0].PerTenant
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("tenant %s excluding %q (-want +got):\n%s", tc.tenant, tc.exclude, diff)
		}
	}
	a.DeletePrefix("")
	if got := a.Snapshot([]*platformv1alpha1.ServiceRuntime{rt("a")}, "", "t1")[0].Count; got != 0 {
		t.Errorf("after DeletePrefix the runtime still counts %d", got)
	}
}

func TestPendingLeavesOutDecisionsBeingWritten(t *testing.T) {
	s := &Scheduler{acct: NewAccounting(), waiting: newWaitingSet()}
	c := &framework.Capability{Name: "a"}
	s.waiting.add("a", 0, mcreconcile.Request{}, platformv1alpha1.ReasonUnschedulable, "0/1 runtimes fit", c)
	s.waiting.add("b", 0, mcreconcile.Request{}, platformv1alpha1.ReasonUnschedulable, "0/1 runtimes fit", c)
	s.waiting.add("c", 0, mcreconcile.Request{}, platformv1alpha1.ReasonRuntimeNotFound, "runtime x does not exist", c)
	// b's assignment is assumed (being written) while it is still in the waiting set.
	s.acct.Assume("b", "rt", req("1Gi"), "t", time.Now())
	var keys []string
	for _, p := range s.Pending() {
		keys = append(keys, p.Key)
	}
	if diff := cmp.Diff([]string{"a"}, keys); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}
}

// With replicas that share the workspaces, Pending includes what waits in the others'
// workspaces, as the documents say, once: not a capability this replica waits on
// itself, nor one that is assigned or waits for another reason.
func TestPendingIncludesOtherReplicasWorkspaces(t *testing.T) {
	s := &Scheduler{acct: NewAccounting(), waiting: newWaitingSet()}
	s.observer = &observer{acct: s.acct, waker: s, others: newOthersPending()}
	kind := capability.Kind{GVK: pgGVK}
	h := s.observer.handler(kind)
	doc := func(cluster, name, reason string, mutate ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
		u := capabilityDoc(append(mutate, withCondition(scheduledCond(metav1.ConditionFalse, reason, "0/4 runtimes fit: 4 insufficient capabilities", 1)))...)
		u.SetName(name)
		u.SetAnnotations(map[string]string{logicalcluster.AnnotationKey: cluster})
		return u
	}
	h.OnAdd(doc("ws-other", "waits", platformv1alpha1.ReasonUnschedulable), false)
	h.OnAdd(doc("ws-other", "named", platformv1alpha1.ReasonRuntimeNotFound), false)
	h.OnAdd(doc("ws-other", "placed", platformv1alpha1.ReasonUnschedulable, withRuntimeName("rt-a")), false)
	h.OnAdd(doc("ws-mine", "mine", platformv1alpha1.ReasonUnschedulable), false)
	mine := capabilityKey("ws-mine", pgKind, "default", "mine")
	s.waiting.add(mine, 0, mcreconcile.Request{}, platformv1alpha1.ReasonUnschedulable, "0/4 runtimes fit", &framework.Capability{Name: "mine"})
	var keys []string
	for _, p := range s.Pending() {
		keys = append(keys, p.Key)
		if p.Capability == nil || p.Capability.Name != "mine" && p.Capability.Requests == nil {
			t.Errorf("pending %s carries no requests", p.Key)
		}
	}
	want := []string{capabilityKey("ws-mine", pgKind, "default", "mine"), capabilityKey("ws-other", pgKind, "default", "waits")}
	if diff := cmp.Diff(want, keys, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}
	// Placed after all: no longer pending.
	h.OnUpdate(nil, doc("ws-other", "waits", platformv1alpha1.ReasonUnschedulable, withRuntimeName("rt-b")))
	if n := len(s.Pending()); n != 1 {
		t.Errorf("after the other's capability was placed, %d pending, want 1 (this replica's own)", n)
	}
}
