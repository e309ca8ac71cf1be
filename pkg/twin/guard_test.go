package twin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// guardFixture is a guard over a fake provider workspace, with a count the test sets.
type guardFixture struct {
	t      *testing.T
	c      client.Client
	g      *RuntimeGuard
	now    time.Time
	hosted map[string]int
	synced bool
}

func newGuardFixture(t *testing.T, objs ...client.Object) *guardFixture {
	s := scheme()
	utilruntime.Must(corev1.AddToScheme(s))
	f := &guardFixture{t: t, now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), synced: true}
	f.c = fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(&platformv1alpha1.ServiceRuntime{}).Build()
	f.g = &RuntimeGuard{
		Client: f.c,
		Hosted: func(*platformv1alpha1.ServiceRuntime) map[string]int { return f.hosted },
		Synced: func() bool { return f.synced },
		Now:    func() time.Time { return f.now },
	}
	f.g.start()
	return f
}

func (f *guardFixture) reconcile(name string) reconcile.Result {
	f.t.Helper()
	res, err := f.g.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// get returns the runtime, or nil when it is gone.
func (f *guardFixture) get(name string) *platformv1alpha1.ServiceRuntime {
	f.t.Helper()
	rt := &platformv1alpha1.ServiceRuntime{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Name: name}, rt); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		f.t.Fatal(err)
	}
	return rt
}

func (f *guardFixture) delete(name string) {
	f.t.Helper()
	if err := f.c.Delete(context.Background(), f.get(name)); err != nil {
		f.t.Fatal(err)
	}
}

// events returns the messages of the Warning events about the runtime.
func (f *guardFixture) events(name string) []string {
	f.t.Helper()
	list := &corev1.EventList{}
	if err := f.c.List(context.Background(), list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "ServiceRuntime" && e.Type == corev1.EventTypeWarning && e.Reason == platformv1alpha1.ReasonHostsCapabilities {
			out = append(out, e.Message)
		}
	}
	return out
}

func twinNamed(name string, finalizers ...string) *platformv1alpha1.ServiceRuntime {
	return &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers}}
}

func TestRuntimeGuardAddsItsFinalizer(t *testing.T) {
	const procurement = "platform.msp.dev/procurement"
	f := newGuardFixture(t, twinNamed("rt"), twinNamed("ordered", procurement))
	for _, name := range []string{"rt", "ordered"} {
		if res := f.reconcile(name); res.RequeueAfter != 0 {
			t.Errorf("%s: a runtime in use is not looked at again on a timer; got %+v", name, res)
		}
		if rt := f.get(name); !controllerutil.ContainsFinalizer(rt, platformv1alpha1.FinalizerHostedCapabilities) {
			t.Errorf("%s: finalizers %v, want %s", name, rt.Finalizers, platformv1alpha1.FinalizerHostedCapabilities)
		}
	}
	if rt := f.get("ordered"); !controllerutil.ContainsFinalizer(rt, procurement) {
		t.Errorf("the runtime manager's finalizer was lost: %v", rt.Finalizers)
	}
	// Idempotent.
	before := f.get("rt").ResourceVersion
	f.reconcile("rt")
	if after := f.get("rt").ResourceVersion; after != before {
		t.Errorf("a second pass wrote the runtime again (resourceVersion %s → %s)", before, after)
	}
}

// A runtime being removed while it hosts capabilities is held, says so once per change,
// and goes when they are deleted; the Revoker, which revokes its servicelet, does not
// act on the deletionTimestamp alone.
func TestRuntimeGuardHoldsARuntimeThatHostsCapabilities(t *testing.T) {
	f := newGuardFixture(t, twinNamed("rt"))
	f.reconcile("rt")
	f.now = f.now.Add(time.Minute) // past the startup grace
	f.hosted = map[string]int{"ws-a": 1}
	f.delete("rt")
	res := f.reconcile("rt")
	rt := f.get("rt")
	if rt == nil || rt.DeletionTimestamp == nil || !controllerutil.ContainsFinalizer(rt, platformv1alpha1.FinalizerHostedCapabilities) {
		t.Fatalf("a runtime that hosts a capability is not held: %+v", rt)
	}
	if res.RequeueAfter != DefaultGuardInterval {
		t.Errorf("held: result %+v, want to look again after %s", res, DefaultGuardInterval)
	}
	cond := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionRemoval)
	want := "being removed: hosts 1 capability (1 in workspace ws-a); it is removed once it is deleted"
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != platformv1alpha1.ReasonHostsCapabilities || cond.Message != want {
		t.Fatalf("Removal condition %+v, want True %s %q", cond, platformv1alpha1.ReasonHostsCapabilities, want)
	}
	if got := f.events("rt"); len(got) != 1 || got[0] != want {
		t.Errorf("events %q, want one Warning %q", got, want)
	}

	// The Revoker acts on the twin being gone, not on its deletionTimestamp.
	old := rt.DeepCopy()
	old.DeletionTimestamp = nil
	if revokeWhenGone.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: rt}) {
		t.Error("the Revoker revokes the servicelet of a runtime that is only being removed")
	}
	if !revokeWhenGone.Delete(event.DeleteEvent{Object: rt}) {
		t.Error("the Revoker does not revoke the servicelet of a runtime that is gone")
	}

	// Nothing changed: nothing written, no second event.
	before := rt.ResourceVersion
	f.reconcile("rt")
	if f.get("rt").ResourceVersion != before || len(f.events("rt")) != 1 {
		t.Errorf("a pass with the same count wrote again (events %q)", f.events("rt"))
	}

	// One more lands (a decision made before the scheduler saw the removal).
	f.hosted = map[string]int{"ws-a": 1, "ws-b": 2}
	f.now = f.now.Add(DefaultGuardInterval)
	f.reconcile("rt")
	want = "being removed: hosts 3 capabilities (2 in workspace ws-b, 1 in workspace ws-a); it is removed once they are deleted"
	if cond := meta.FindStatusCondition(f.get("rt").Status.Conditions, platformv1alpha1.ConditionRemoval); cond == nil || cond.Message != want {
		t.Errorf("Removal condition %+v, want %q", cond, want)
	}
	if got := f.events("rt"); len(got) != 2 {
		t.Errorf("events %q, want a second one for the new count", got)
	}

	// The count is not synced: 0 means nothing yet.
	f.hosted, f.synced = nil, false
	if res := f.reconcile("rt"); res.RequeueAfter <= 0 || f.get("rt") == nil {
		t.Fatalf("let a runtime go on a count that is not synced (result %+v)", res)
	}

	// They are deleted: it goes.
	f.synced = true
	f.reconcile("rt")
	if rt := f.get("rt"); rt != nil {
		t.Errorf("a runtime that hosts nothing is still there: finalizers %v", rt.Finalizers)
	}
	if res := f.reconcile("rt"); res != (reconcile.Result{}) {
		t.Errorf("a runtime that is gone: %+v", res)
	}
}

// Right after the coordinator starts, the tenant workspaces are still being counted: an
// empty count does not let a runtime go until the startup grace has passed. Another
// owner's finalizer stays.
func TestRuntimeGuardWaitsForTheStartupGrace(t *testing.T) {
	const procurement = "platform.msp.dev/procurement"
	f := newGuardFixture(t, twinNamed("rt", procurement, platformv1alpha1.FinalizerHostedCapabilities))
	f.delete("rt")
	f.now = f.now.Add(3 * time.Second)
	res := f.reconcile("rt")
	if rt := f.get("rt"); !controllerutil.ContainsFinalizer(rt, platformv1alpha1.FinalizerHostedCapabilities) {
		t.Fatal("let a runtime go within the startup grace")
	}
	if res.RequeueAfter != DefaultStartupGrace-3*time.Second {
		t.Errorf("within the grace: result %+v, want to look again when it ends", res)
	}
	f.now = f.now.Add(DefaultStartupGrace)
	f.reconcile("rt")
	rt := f.get("rt")
	if rt == nil || controllerutil.ContainsFinalizer(rt, platformv1alpha1.FinalizerHostedCapabilities) || !controllerutil.ContainsFinalizer(rt, procurement) {
		t.Errorf("after the grace: %+v, want only the runtime manager's finalizer left", rt)
	}
	if got := f.events("rt"); len(got) != 0 {
		t.Errorf("an empty runtime got events: %q", got)
	}
}

func TestHeldMessageNamesAFewWorkspaces(t *testing.T) {
	hosted := map[string]int{}
	for i := range 7 {
		hosted[fmt.Sprintf("ws-%d", i)] = 1
	}
	hosted["ws-big"] = 4
	got := HeldMessage(hosted)
	for _, want := range []string{"hosts 11 capabilities", "(4 in workspace ws-big, 1 in workspace ws-0,", "and 3 more workspaces)", "once they are deleted"} {
		if !strings.Contains(got, want) {
			t.Errorf("HeldMessage = %q, want it to contain %q", got, want)
		}
	}
}
