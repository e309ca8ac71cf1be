package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/conditions"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/sdk/capability"
)

// The clock of every reconcile test, whole seconds (conditions keep seconds only).
var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

var (
	pgGVK     = pgKind.WithVersion("v1alpha1")
	pgGR      = schema.GroupResource{Group: pgKind.Group, Resource: "postgresdatabases"}
	tenant    = multicluster.ClusterName("tenant-a")
	capName   = types.NamespacedName{Namespace: "default", Name: "db"}
	capKey    = capabilityKey(tenant.String(), pgKind, capName.Namespace, capName.Name)
	deLoc     = platformv1alpha1.Location{Region: "eu-de", Country: "DE"}
	frLoc     = platformv1alpha1.Location{Region: "eu-fr", Country: "FR"}
	errBoom   = errors.New("boom")
	conflict  = apierrors.NewConflict(pgGR, capName.Name, errors.New("the object has been modified"))
	notFound  = apierrors.NewNotFound(pgGR, capName.Name)
	invalid   = apierrors.NewInvalid(pgKind, capName.Name, field.ErrorList{field.Forbidden(field.NewPath("spec", "runtimeName"), "cannot be changed")})
	scheduled = platformv1alpha1.ConditionScheduled
)

// fakeRuntimes is a RuntimeLister over a fixed list.
type fakeRuntimes struct {
	items     []*platformv1alpha1.ServiceRuntime
	notSynced bool
	err       error
}

func (f *fakeRuntimes) List(context.Context) ([]*platformv1alpha1.ServiceRuntime, error) {
	return f.items, f.err
}
func (f *fakeRuntimes) Synced() bool { return !f.notSynced }

// fakeClasses is a ClassLister over a fixed list.
type fakeClasses []*platformv1alpha1.ServiceRuntimeClass

func (f fakeClasses) List(context.Context) ([]*platformv1alpha1.ServiceRuntimeClass, error) {
	return f, nil
}

// fakeWorkspaces holds one capabilityStore per workspace.
type fakeWorkspaces map[multicluster.ClusterName]*fakeStore

func (f fakeWorkspaces) Workspace(_ context.Context, name multicluster.ClusterName) (capabilityStore, error) {
	st, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("workspace %s is not engaged", name)
	}
	return st, nil
}

// fakeStore is one workspace holding at most one capability, both the cache and the
// server. It records every write and applies the successful ones, as the server would:
// a merge patch guarded by its resourceVersion (the generation grows with the spec), and
// the scheduler's status (its conditions merged by type).
type fakeStore struct {
	obj *unstructured.Unstructured // nil: not found

	getErr, patchErr, applyErr error
	// statusNotCached keeps the status applies out of what Get returns, as a cache
	// that has not caught up with them yet.
	statusNotCached bool
	// cached, when set, is what Get returns instead: a cache behind every write.
	cached *unstructured.Unstructured

	patches []string
	applied []platformv1alpha1.CapabilityStatus
	events  []string
}

func (f *fakeStore) Get(_ context.Context, key types.NamespacedName, obj *unstructured.Unstructured) error {
	if f.getErr != nil {
		return f.getErr
	}
	src := f.obj
	if f.cached != nil {
		src = f.cached
	}
	if src == nil || key.Name != src.GetName() || key.Namespace != src.GetNamespace() {
		return notFound
	}
	obj.Object = src.DeepCopy().Object
	return nil
}

func (f *fakeStore) Patch(_ context.Context, obj *unstructured.Unstructured, raw []byte) error {
	f.patches = append(f.patches, string(raw))
	if f.patchErr != nil {
		return f.patchErr
	}
	if f.obj == nil {
		return notFound
	}
	var patch map[string]any
	if err := json.Unmarshal(raw, &patch); err != nil {
		return err
	}
	if rv, ok, _ := unstructured.NestedString(patch, "metadata", "resourceVersion"); ok && rv != f.obj.GetResourceVersion() {
		return conflict
	}
	spec := runtime.DeepCopyJSONValue(f.obj.Object["spec"])
	mergeJSON(f.obj.Object, patch)
	if !reflect.DeepEqual(spec, f.obj.Object["spec"]) {
		f.obj.SetGeneration(f.obj.GetGeneration() + 1)
	}
	f.bump()
	obj.Object = f.obj.DeepCopy().Object
	return nil
}

func (f *fakeStore) ApplyStatus(_ context.Context, obj *unstructured.Unstructured) error {
	var st platformv1alpha1.CapabilityStatus
	raw, _, _ := unstructured.NestedMap(obj.Object, "status")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st); err != nil {
		return err
	}
	f.applied = append(f.applied, st)
	if f.applyErr != nil {
		return f.applyErr
	}
	if f.obj == nil {
		return notFound
	}
	if f.statusNotCached {
		return nil
	}
	var doc document
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(f.obj.Object, &doc); err != nil {
		return err
	}
	for _, c := range st.Conditions {
		replaced := false
		for i := range doc.Status.Conditions {
			if doc.Status.Conditions[i].Type == c.Type {
				doc.Status.Conditions[i], replaced = c, true
			}
		}
		if !replaced {
			doc.Status.Conditions = append(doc.Status.Conditions, c)
		}
	}
	if st.Location != nil {
		doc.Status.Location = st.Location
	}
	if st.Scheduling != nil {
		doc.Status.Scheduling = st.Scheduling
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&doc.Status)
	if err != nil {
		return err
	}
	f.obj.Object["status"] = status
	f.bump()
	return nil
}

func (f *fakeStore) Event(_ context.Context, _ *unstructured.Unstructured, eventtype, reason, message string) {
	f.events = append(f.events, eventtype+" "+reason+": "+message)
}

func (f *fakeStore) bump() {
	rv, _ := strconv.Atoi(f.obj.GetResourceVersion())
	f.obj.SetResourceVersion(strconv.Itoa(rv + 1))
}

func (f *fakeStore) forgetWrites() { f.patches, f.applied, f.events = nil, nil, nil }

// mergeJSON applies a JSON merge patch (RFC 7386) to dst.
func mergeJSON(dst, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			sub, ok := dst[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dst[k] = sub
			}
			mergeJSON(sub, v)
		default:
			dst[k] = v
		}
	}
}

// readyRuntime is a Ready runtime with a fresh heartbeat that hosts PostgresDatabases,
// with room for capacity of them.
func readyRuntime(name string, loc platformv1alpha1.Location, capacity int64, mutate ...func(*platformv1alpha1.ServiceRuntime)) *platformv1alpha1.ServiceRuntime {
	rt := &platformv1alpha1.ServiceRuntime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: platformv1alpha1.ServiceRuntimeSpec{
			Location:     loc,
			Capabilities: []platformv1alpha1.CapabilityKind{{Group: pgKind.Group, Kind: pgKind.Kind}},
			Capacity:     corev1.ResourceList{platformv1alpha1.ResourceCapabilities: *resource.NewQuantity(capacity, resource.DecimalSI)},
		},
		Status: platformv1alpha1.ServiceRuntimeStatus{
			Conditions:        []metav1.Condition{{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready"}},
			LastHeartbeatTime: &metav1.Time{Time: testNow},
		},
	}
	for _, m := range mutate {
		m(rt)
	}
	return rt
}

func notReady(rt *platformv1alpha1.ServiceRuntime) {
	rt.Status.Conditions[0].Status = metav1.ConditionFalse
}

// capabilityDoc is a PostgresDatabase named db in tenant-a, generation 1.
func capabilityDoc(mutate ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": pgGVK.GroupVersion().String(),
		"kind":       pgGVK.Kind,
		"metadata": map[string]any{
			"name": capName.Name, "namespace": capName.Namespace, "resourceVersion": "1", "generation": int64(1),
			"creationTimestamp": testNow.Add(-time.Minute).Format(time.RFC3339),
		},
		"spec": map[string]any{},
	}}
	for _, m := range mutate {
		m(u)
	}
	return u
}

func withRuntimeName(name string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, name, "spec", "runtimeName")
	}
}

func withRuntimeLabel(name string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		u.SetLabels(map[string]string{platformv1alpha1.LabelRuntime: name})
	}
}

func withCountries(countries ...any) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedSlice(u.Object, countries, "spec", "placement", "countries")
	}
}

func withCondition(c metav1.Condition) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		_ = unstructured.SetNestedSlice(u.Object, append(conds, conditions.Unstructured(c)), "status", "conditions")
	}
}

func withScheduling(rep platformv1alpha1.SchedulingStatus) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&rep)
		if err != nil {
			panic(err)
		}
		_ = unstructured.SetNestedMap(u.Object, raw, "status", "scheduling")
	}
}

func beingDeleted(u *unstructured.Unstructured) {
	u.SetDeletionTimestamp(&metav1.Time{Time: testNow})
	u.SetFinalizers([]string{"servicelet.msp.dev/cleanup"})
}

func scheduledCond(status metav1.ConditionStatus, reason, msg string, generation int64) metav1.Condition {
	return metav1.Condition{Type: scheduled, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation,
		LastTransitionTime: metav1.Time{Time: testNow}}
}

func report(evaluated, feasible int32, candidates ...string) *platformv1alpha1.SchedulingStatus {
	rep := &platformv1alpha1.SchedulingStatus{LastUpdateTime: &metav1.Time{Time: testNow}, Evaluated: evaluated, Feasible: feasible}
	for i := 0; i+1 < len(candidates); i += 2 {
		rep.Candidates = append(rep.Candidates, platformv1alpha1.SchedulingCandidate{Runtime: candidates[i], Region: candidates[i+1]})
	}
	return rep
}

// assignPatch is the merge patch that assigns the capability at resourceVersion rv.
func assignPatch(runtime, rv string) string {
	return fmt.Sprintf(`{"metadata":{"finalizers":["platform.msp.dev/servicelet"],"labels":{"platform.msp.dev/runtime":%q},"resourceVersion":%q},"spec":{"runtimeName":%q}}`, runtime, rv, runtime)
}

// labelPatch is the merge patch that labels a capability a consumer assigned.
func labelPatch(runtime, rv string) string {
	return fmt.Sprintf(`{"metadata":{"finalizers":["platform.msp.dev/servicelet"],"labels":{"platform.msp.dev/runtime":%q},"resourceVersion":%q}}`, runtime, rv)
}

// outcome is what one reconcile did.
type outcome struct {
	Result reconcile.Result
	Err    string
	// Patches are the merge patches written, Applied the statuses applied, Events the
	// events recorded: of the last pass only.
	Patches []string
	Applied []platformv1alpha1.CapabilityStatus
	Events  []string
	// CountedOn is the runtime the accounting counts the capability on afterwards.
	CountedOn string
	// Waiting is the reason the capability waits for, as the waiting set holds it.
	Waiting string
	// Written is the runtime the scheduler remembers having completed an assignment to.
	Written string
}

func TestReconcile(t *testing.T) {
	fw, err := plugins.NewFramework(plugins.Options{Now: func() time.Time { return testNow }, HeartbeatTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	kind := capability.Kind{GVK: pgGVK, Resource: pgGR.Resource}
	two := []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2), readyRuntime("rt-b", frLoc, 2, notReady)}
	full := func(rt *platformv1alpha1.ServiceRuntime) {
		rt.Spec.Capacity[platformv1alpha1.ResourceCapabilities] = *resource.NewQuantity(0, resource.DecimalSI)
	}
	denyAll := func(context.Context, string, string) (bool, error) { return false, nil }
	permitAll := func(context.Context, string, string) (bool, error) { return true, nil }
	notPermitted := fmt.Sprintf("spec.runtimeName names runtime rt-a, which this workspace may not use: ask the provider to grant the verb use on serviceruntimes rt-a to %s, or delete and recreate the capability without runtimeName to let the scheduler choose",
		identity.TenantSubject(tenant.String()))
	const unfitMsg = "0/2 runtimes fit: 1 insufficient capabilities, 1 not ready"

	tests := []struct {
		name     string
		obj      *unstructured.Unstructured
		runtimes *fakeRuntimes
		classes  ClassLister
		permits  func(ctx context.Context, cluster, runtime string) (bool, error)
		// setup prepares the scheduler and the store before the first pass.
		setup func(s *Scheduler, st *fakeStore)
		// passes is how often to reconcile (default 1); the outcome is the last one's.
		passes int
		want   outcome
	}{
		{
			name:     "caches not synced: retried soon, nothing read or written",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two, notSynced: true},
			want:     outcome{Result: reconcile.Result{RequeueAfter: notSyncedRetry}},
		},
		{
			name:     "workspace not engaged: error",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(s *Scheduler, _ *fakeStore) { s.workspaces = fakeWorkspaces{} },
			want:     outcome{Err: "failed to get workspace tenant-a: workspace tenant-a is not engaged"},
		},
		{
			name:     "capability gone: forgotten",
			runtimes: &fakeRuntimes{items: two},
			setup: func(s *Scheduler, _ *fakeStore) {
				s.waiting.add(capKey, 0, mcreconcile.Request{}, platformv1alpha1.ReasonUnschedulable, "", nil)
				s.written.Store(capKey, "rt-a")
			},
			want: outcome{},
		},
		{
			name:     "cache read fails: error",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.getErr = errBoom },
			want:     outcome{Err: "failed to get capability: boom"},
		},
		{
			name:     "deletion in progress: skipped, no longer waiting",
			obj:      capabilityDoc(beingDeleted),
			runtimes: &fakeRuntimes{items: two},
			setup: func(s *Scheduler, _ *fakeStore) {
				s.waiting.add(capKey, 0, mcreconcile.Request{}, platformv1alpha1.ReasonUnschedulable, "", nil)
			},
			want: outcome{},
		},
		{
			name: "document that breaks the contract: error",
			obj: capabilityDoc(func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(u.Object, int64(7), "spec", "runtimeName")
			}),
			runtimes: &fakeRuntimes{items: two},
			want:     outcome{Err: "failed to read the capability contract of default/db: "},
		},
		{
			name:     "unassigned and a runtime fits: assigned, labelled, the servicelet's finalizer added, no status (the servicelet reports Scheduled)",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			want: outcome{
				Patches:   []string{assignPatch("rt-a", "1")},
				CountedOn: "rt-a",
				Written:   "rt-a",
			},
		},
		{
			name:     "waited before, now a runtime fits: assigned and Scheduled=True at once, with the report",
			obj:      capabilityDoc(withCondition(scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, "no runtime fits", 1))),
			runtimes: &fakeRuntimes{items: two},
			want: outcome{
				Patches: []string{assignPatch("rt-a", "1")},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, "assigned to runtime rt-a in region eu-de (1/2 runtimes fit)", 2)},
					Location:   &deLoc,
					Scheduling: report(2, 1, "rt-a", "eu-de"),
				}},
				CountedOn: "rt-a",
				Written:   "rt-a",
			},
		},
		{
			name:     "assigned by this scheduler, a second pass: nothing written",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			passes:   2,
			want:     outcome{CountedOn: "rt-a"},
		},
		{
			name:     "assigned by this scheduler, the cache does not show the assignment yet: nothing decided again",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.cached = capabilityDoc() },
			passes:   2,
			want:     outcome{Result: reconcile.Result{RequeueAfter: 200 * time.Millisecond}, CountedOn: "rt-a", Written: "rt-a"},
		},
		{
			name:     "nothing fits: Scheduled=False Unschedulable with the summary, no assignment",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2, full), readyRuntime("rt-b", frLoc, 2, notReady)}},
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, unfitMsg, 1)},
					Scheduling: report(2, 0),
				}},
				Events:  []string{"Warning FailedScheduling: " + unfitMsg},
				Waiting: platformv1alpha1.ReasonUnschedulable,
			},
		},
		{
			name:     "no runtime at all: Unschedulable, says none is registered",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{},
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, "0/0 runtimes fit: no runtime is registered for this kind", 1)},
					Scheduling: report(0, 0),
				}},
				Events:  []string{"Warning FailedScheduling: 0/0 runtimes fit: no runtime is registered for this kind"},
				Waiting: platformv1alpha1.ReasonUnschedulable,
			},
		},
		{
			name:     "nothing fits where it may run: the message offers the runtimes' and classes' locations",
			obj:      capabilityDoc(withCountries("CH")),
			runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2)}},
			classes:  fakeClasses{class("small", pgKind, frLoc)},
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable,
						"0/1 runtimes fit: 1 country not allowed; this provider offers regions eu-de, eu-fr and countries DE, FR", 1)},
					Scheduling: report(1, 0),
				}},
				Events:  []string{"Warning FailedScheduling: 0/1 runtimes fit: 1 country not allowed; this provider offers regions eu-de, eu-fr and countries DE, FR"},
				Waiting: platformv1alpha1.ReasonUnschedulable,
			},
		},
		{
			name:     "nothing fits, the runtime manager ordered one: its reason, the summary in brackets",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2, full), readyRuntime("rt-b", frLoc, 2, notReady)}},
			setup: func(s *Scheduler, _ *fakeStore) {
				s.SetWaitReasons(map[string]WaitReason{capKey: {Reason: platformv1alpha1.ReasonWaitingForRuntime, Message: "waiting for runtime small-1 of class small, ordered for it"}})
			},
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonWaitingForRuntime,
						"waiting for runtime small-1 of class small, ordered for it (now "+unfitMsg+")", 1)},
					Scheduling: report(2, 0),
				}},
				Events:  []string{"Warning FailedScheduling: waiting for runtime small-1 of class small, ordered for it (now " + unfitMsg + ")"},
				Waiting: platformv1alpha1.ReasonUnschedulable,
			},
		},
		{
			name:     "the runtime manager's reason for another capability: not used",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2, full), readyRuntime("rt-b", frLoc, 2, notReady)}},
			setup: func(s *Scheduler, _ *fakeStore) {
				s.SetWaitReasons(map[string]WaitReason{"other": {Reason: platformv1alpha1.ReasonWaitingForRuntime, Message: "waiting"}})
			},
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, unfitMsg, 1)},
					Scheduling: report(2, 0),
				}},
				Events:  []string{"Warning FailedScheduling: " + unfitMsg},
				Waiting: platformv1alpha1.ReasonUnschedulable,
			},
		},
		{
			name:     "the same verdict again: nothing written, no event, a longer backoff",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2, full), readyRuntime("rt-b", frLoc, 2, notReady)}},
			passes:   3,
			want:     outcome{Result: reconcile.Result{RequeueAfter: 4 * time.Second}, Waiting: platformv1alpha1.ReasonUnschedulable},
		},
		{
			name: "the same verdict a newer generation has not seen: rewritten, no event",
			obj: capabilityDoc(func(u *unstructured.Unstructured) { u.SetGeneration(2) },
				withCondition(scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, unfitMsg, 1)),
				withScheduling(*report(2, 0))),
			runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2, full), readyRuntime("rt-b", frLoc, 2, notReady)}},
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, unfitMsg, 2)},
					Scheduling: report(2, 0),
				}},
				Waiting: platformv1alpha1.ReasonUnschedulable,
			},
		},
		{
			name:     "listing the runtimes fails: error",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two, err: errBoom},
			want:     outcome{Err: "boom"},
		},
		{
			name:     "the assignment conflicts: looked at again, no assumption left",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.patchErr = conflict },
			want:     outcome{Result: reconcile.Result{Requeue: true}, Patches: []string{assignPatch("rt-a", "1")}},
		},
		{
			name:     "the capability went while assigning: looked at again",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.patchErr = notFound },
			want:     outcome{Result: reconcile.Result{Requeue: true}, Patches: []string{assignPatch("rt-a", "1")}},
		},
		{
			name:     "the assignment is rejected as invalid (someone set runtimeName first): looked at again",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.patchErr = invalid },
			want:     outcome{Result: reconcile.Result{Requeue: true}, Patches: []string{assignPatch("rt-a", "1")}},
		},
		{
			name:     "the assignment fails otherwise: error, no assumption left",
			obj:      capabilityDoc(),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.patchErr = errBoom },
			want:     outcome{Err: "failed to patch capability: boom", Patches: []string{assignPatch("rt-a", "1")}},
		},
		{
			name:     "assigned after a wait but the condition cannot be written: error, the assignment stands",
			obj:      capabilityDoc(withCondition(scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, "no runtime fits", 1))),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.applyErr = errBoom },
			want: outcome{
				Err:     "failed to write the Scheduled condition: boom",
				Patches: []string{assignPatch("rt-a", "1")},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, "assigned to runtime rt-a in region eu-de (1/2 runtimes fit)", 2)},
					Location:   &deLoc,
					Scheduling: report(2, 1, "rt-a", "eu-de"),
				}},
				CountedOn: "rt-a",
			},
		},
		{
			name:     "assigned after a wait, the capability went before its condition: done",
			obj:      capabilityDoc(withCondition(scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, "no runtime fits", 1))),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.applyErr = notFound },
			want: outcome{
				Patches: []string{assignPatch("rt-a", "1")},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, "assigned to runtime rt-a in region eu-de (1/2 runtimes fit)", 2)},
					Location:   &deLoc,
					Scheduling: report(2, 1, "rt-a", "eu-de"),
				}},
				CountedOn: "rt-a",
				Written:   "rt-a",
			},
		},
		{
			name:     "runtimeName of a ready runtime that fits: accepted, labelled with the finalizer, no status",
			obj:      capabilityDoc(withRuntimeName("rt-a")),
			runtimes: &fakeRuntimes{items: two},
			permits:  permitAll,
			want: outcome{
				Patches:   []string{labelPatch("rt-a", "1")},
				CountedOn: "rt-a",
				Written:   "rt-a",
			},
		},
		{
			name:     "runtimeName accepted, a second pass: nothing written",
			obj:      capabilityDoc(withRuntimeName("rt-a")),
			runtimes: &fakeRuntimes{items: two},
			passes:   2,
			want:     outcome{CountedOn: "rt-a"},
		},
		{
			name:     "runtimeName the workspace may not use: RuntimeNotPermitted, nothing about the runtime told",
			obj:      capabilityDoc(withRuntimeName("rt-a")),
			runtimes: &fakeRuntimes{items: two},
			permits:  denyAll,
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeNotPermitted, notPermitted, 1)},
				}},
				Events:  []string{"Warning FailedScheduling: " + notPermitted},
				Waiting: platformv1alpha1.ReasonRuntimeNotPermitted,
			},
		},
		{
			name:     "runtimeName of a missing runtime not permitted either: RuntimeNotPermitted first",
			obj:      capabilityDoc(withRuntimeName("rt-a")),
			runtimes: &fakeRuntimes{},
			permits:  denyAll,
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeNotPermitted, notPermitted, 1)},
				}},
				Events:  []string{"Warning FailedScheduling: " + notPermitted},
				Waiting: platformv1alpha1.ReasonRuntimeNotPermitted,
			},
		},
		{
			name:     "the permission check fails: error",
			obj:      capabilityDoc(withRuntimeName("rt-a")),
			runtimes: &fakeRuntimes{items: two},
			permits:  func(context.Context, string, string) (bool, error) { return false, errBoom },
			want:     outcome{Err: "failed to check whether runtime rt-a may be used: boom"},
		},
		{
			name:     "runtimeName of a runtime that does not exist: RuntimeNotFound",
			obj:      capabilityDoc(withRuntimeName("rt-x")),
			runtimes: &fakeRuntimes{items: two},
			permits:  permitAll,
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeNotFound,
						"runtime rt-x does not exist; the capability stays pending until it does (runtimeName cannot be changed, delete and recreate to choose another)", 1)},
				}},
				Events:  []string{"Warning FailedScheduling: runtime rt-x does not exist; the capability stays pending until it does (runtimeName cannot be changed, delete and recreate to choose another)"},
				Waiting: platformv1alpha1.ReasonRuntimeNotFound,
			},
		},
		{
			name:     "runtimeName of a runtime that does not fit: RuntimeDoesNotFit with the filter's reason",
			obj:      capabilityDoc(withRuntimeName("rt-b")),
			runtimes: &fakeRuntimes{items: two},
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeDoesNotFit,
						"runtime rt-b does not fit: not ready; the capability stays pending (runtimeName cannot be changed, delete and recreate to choose another)", 1)},
				}},
				Events:  []string{"Warning FailedScheduling: runtime rt-b does not fit: not ready; the capability stays pending (runtimeName cannot be changed, delete and recreate to choose another)"},
				Waiting: platformv1alpha1.ReasonRuntimeDoesNotFit,
			},
		},
		{
			name:     "runtimeName and label set by hand, the runtime is full: RuntimeDoesNotFit, Permits not asked",
			obj:      capabilityDoc(withRuntimeName("rt-a"), withRuntimeLabel("rt-a")),
			runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 2, full)}},
			permits:  func(context.Context, string, string) (bool, error) { panic("Permits asked of a labelled capability") },
			want: outcome{
				Result: reconcile.Result{RequeueAfter: time.Second},
				Applied: []platformv1alpha1.CapabilityStatus{{
					Conditions: []metav1.Condition{scheduledCond(metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeDoesNotFit,
						"runtime rt-a does not fit: insufficient capabilities; the capability stays pending (runtimeName cannot be changed, delete and recreate to choose another)", 1)},
				}},
				Events:  []string{"Warning FailedScheduling: runtime rt-a does not fit: insufficient capabilities; the capability stays pending (runtimeName cannot be changed, delete and recreate to choose another)"},
				Waiting: platformv1alpha1.ReasonRuntimeDoesNotFit,
			},
		},
		{
			name:     "runtimeName and label set without the finalizer (by hand, or an older scheduler), fits: approved with the finalizer, no status",
			obj:      capabilityDoc(withRuntimeName("rt-a"), withRuntimeLabel("rt-a")),
			runtimes: &fakeRuntimes{items: two},
			want: outcome{
				Patches:   []string{labelPatch("rt-a", "1")},
				CountedOn: "rt-a",
				Written:   "rt-a",
			},
		},
		{
			name: "already assigned and reported: nothing written, no longer waiting",
			obj: capabilityDoc(withRuntimeName("rt-a"), withRuntimeLabel("rt-a"),
				withCondition(scheduledCond(metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, "assigned to runtime rt-a in region eu-de", 1))),
			runtimes: &fakeRuntimes{items: two},
			setup: func(s *Scheduler, _ *fakeStore) {
				s.waiting.add(capKey, 0, mcreconcile.Request{}, platformv1alpha1.ReasonRuntimeNotFound, "", nil)
				s.written.Store(capKey, "rt-a")
			},
			want: outcome{},
		},
		{
			name: "approved (label and finalizer), the servicelet has not reported yet: nothing written, no longer waiting",
			obj: capabilityDoc(withRuntimeName("rt-a"), withRuntimeLabel("rt-a"), func(u *unstructured.Unstructured) {
				u.SetFinalizers([]string{platformv1alpha1.FinalizerServicelet})
			}),
			runtimes: &fakeRuntimes{items: two},
			permits:  func(context.Context, string, string) (bool, error) { panic("Permits asked of an approved capability") },
			setup: func(s *Scheduler, _ *fakeStore) {
				s.waiting.add(capKey, 0, mcreconcile.Request{}, platformv1alpha1.ReasonRuntimeNotFound, "", nil)
			},
			want: outcome{},
		},
		{
			name:     "a label for another runtime than runtimeName: checked and labelled anew",
			obj:      capabilityDoc(withRuntimeName("rt-a"), withRuntimeLabel("rt-b")),
			runtimes: &fakeRuntimes{items: two},
			permits:  permitAll,
			want: outcome{
				Patches:   []string{labelPatch("rt-a", "1")},
				CountedOn: "rt-a",
				Written:   "rt-a",
			},
		},
		{
			name:     "labelling conflicts: looked at again",
			obj:      capabilityDoc(withRuntimeName("rt-a")),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.patchErr = conflict },
			want:     outcome{Result: reconcile.Result{Requeue: true}, Patches: []string{labelPatch("rt-a", "1")}, CountedOn: "rt-a"},
		},
		{
			name:     "labelling fails otherwise: error",
			obj:      capabilityDoc(withRuntimeName("rt-a")),
			runtimes: &fakeRuntimes{items: two},
			setup:    func(_ *Scheduler, st *fakeStore) { st.patchErr = errBoom },
			want:     outcome{Err: "failed to patch capability: boom", Patches: []string{labelPatch("rt-a", "1")}, CountedOn: "rt-a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := &fakeStore{obj: tt.obj}
			s, err := newScheduler(Options{
				Kinds: []capability.Kind{kind}, Framework: fw, Runtimes: tt.runtimes, Classes: tt.classes,
				Now: func() time.Time { return testNow }, Permits: tt.permits,
			}, fakeWorkspaces{tenant: st})
			if err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(s, st)
			}
			r := &reconciler{s: s, kind: kind}
			request := mcreconcile.Request{Request: reconcile.Request{NamespacedName: capName}, ClusterName: tenant}
			passes := max(tt.passes, 1)
			var got outcome
			for i := range passes {
				if i == passes-1 {
					st.forgetWrites()
				}
				res, err := r.Reconcile(ctx, request)
				got = outcome{Result: res}
				if err != nil {
					got.Err = err.Error()
				}
			}
			got.Patches, got.Applied, got.Events = st.patches, st.applied, st.events
			got.CountedOn = s.acct.RuntimeOf(capKey)
			got.Waiting = s.waiting.snapshot()[capKey].reason
			if w, ok := s.written.Load(capKey); ok {
				got.Written = w.(string)
			}
			// An error from the converter is long; its beginning is what matters.
			if tt.want.Err != "" && len(got.Err) > len(tt.want.Err) && got.Err[:len(tt.want.Err)] == tt.want.Err {
				got.Err = tt.want.Err
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(platformv1alpha1.SchedulingCandidate{}, "Score")); diff != "" {
				t.Errorf("Reconcile() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReconcileStaleCacheKeepsAssumption reconciles a capability this scheduler has
// just assigned once more from a cache that does not show the assignment yet (a trigger
// queued while the first pass ran, say), then schedules a second capability before the
// observer has seen the first assignment. The stale pass must not decide again (its
// patch would conflict and forget the first decision's assumption): the runtime with
// room for one capability must not take the second one too.
func TestReconcileStaleCacheKeepsAssumption(t *testing.T) {
	ctx := context.Background()
	fw, err := plugins.NewFramework(plugins.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	kind := capability.Kind{GVK: pgGVK, Resource: pgGR.Resource}
	first, second := &fakeStore{obj: capabilityDoc()}, &fakeStore{obj: capabilityDoc()}
	s, err := newScheduler(Options{
		Kinds: []capability.Kind{kind}, Framework: fw, Now: func() time.Time { return testNow },
		Runtimes: &fakeRuntimes{items: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt-a", deLoc, 1)}},
	}, fakeWorkspaces{tenant: first, "tenant-b": second})
	if err != nil {
		t.Fatal(err)
	}
	r := &reconciler{s: s, kind: kind}
	reqFor := func(cluster multicluster.ClusterName) mcreconcile.Request {
		return mcreconcile.Request{Request: reconcile.Request{NamespacedName: capName}, ClusterName: cluster}
	}
	if _, err := r.Reconcile(ctx, reqFor(tenant)); err != nil {
		t.Fatal(err)
	}
	first.cached = capabilityDoc() // the cache has not seen the assignment
	if _, err := r.Reconcile(ctx, reqFor(tenant)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("rt-a", s.acct.RuntimeOf(capKey)); diff != "" {
		t.Errorf("the first capability counts on (-want +got):\n%s", diff)
	}
	if _, err := r.Reconcile(ctx, reqFor("tenant-b")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), second.patches); diff != "" {
		t.Errorf("the second capability's patches (-want +got):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		attempts int
		want     time.Duration
	}{
		{name: "first attempt: the initial backoff", attempts: 1, want: time.Second},
		{name: "doubles per attempt", attempts: 4, want: 8 * time.Second},
		{name: "capped at the maximum", attempts: 7, want: time.Minute},
		{name: "stays at the maximum", attempts: 100, want: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, backoff(tt.attempts, time.Second, time.Minute)); diff != "" {
				t.Errorf("backoff() (-want +got):\n%s", diff)
			}
		})
	}
}
