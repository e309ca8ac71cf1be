package runtimemanager

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
)

// The clock at a test's first pass, whole seconds (the API keeps seconds only).
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

var errBoom = errors.New("boom")

// fakeScheduler is what the manager sees of the scheduler: fixed pending capabilities
// and loads, and a record of what it is told.
type fakeScheduler struct {
	pending []scheduler.Pending
	load    map[string]int

	reasons map[string]scheduler.WaitReason
	wakes   int
}

func (f *fakeScheduler) Pending() []scheduler.Pending { return f.pending }

func (f *fakeScheduler) Snapshot(runtimes []*platformv1alpha1.ServiceRuntime) []*framework.RuntimeInfo {
	var out []*framework.RuntimeInfo
	for _, rt := range runtimes {
		n := f.load[rt.Name]
		out = append(out, &framework.RuntimeInfo{Runtime: rt, Count: n, PerTenant: map[string]int{},
			Allocated: corev1.ResourceList{platformv1alpha1.ResourceCapabilities: *resource.NewQuantity(int64(n), resource.DecimalSI)}})
	}
	return out
}

func (f *fakeScheduler) RuntimeLoad(runtime string) int { return f.load[runtime] }

func (f *fakeScheduler) SetWaitReasons(reasons map[string]scheduler.WaitReason) { f.reasons = reasons }

func (f *fakeScheduler) WakeWaiting() { f.wakes++ }

// recordingProcurer logs its calls as "driver: Order runtime class" and
// "driver: Release runtime".
type recordingProcurer struct {
	driver               string
	log                  *[]string
	orderErr, releaseErr error
	// releasing is how many Release calls report that something is left.
	releasing int
	releases  int
}

func (p *recordingProcurer) Order(_ context.Context, rt *platformv1alpha1.ServiceRuntime, class *platformv1alpha1.ServiceRuntimeClass) error {
	*p.log = append(*p.log, fmt.Sprintf("%s: Order %s %s", p.driver, rt.Name, class.Name))
	return p.orderErr
}

func (p *recordingProcurer) Release(_ context.Context, rt *platformv1alpha1.ServiceRuntime) (bool, error) {
	*p.log = append(*p.log, fmt.Sprintf("%s: Release %s", p.driver, rt.Name))
	if p.releaseErr != nil {
		return false, p.releaseErr
	}
	p.releases++
	return p.releases > p.releasing, nil
}

// managedRuntime is a Ready runtime of class at loc, as this manager orders them.
func managedRuntime(name string, c *platformv1alpha1.ServiceRuntimeClass, loc platformv1alpha1.Location, mutate ...func(*platformv1alpha1.ServiceRuntime)) *platformv1alpha1.ServiceRuntime {
	rt := &platformv1alpha1.ServiceRuntime{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelClass: c.Name},
			Annotations: driverAnnotations(c.Spec.Driver), Finalizers: []string{Finalizer}},
		Spec: Spec(c, loc),
		Status: platformv1alpha1.ServiceRuntimeStatus{
			Conditions: []metav1.Condition{{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready",
				LastTransitionTime: metav1.Time{Time: t0}}},
		},
	}
	for _, m := range mutate {
		m(rt)
	}
	return rt
}

func cordoned(rt *platformv1alpha1.ServiceRuntime) {
	rt.Spec.Unschedulable = true
	rt.Annotations[annotationCordoned] = "true"
}

func deleting(rt *platformv1alpha1.ServiceRuntime) {
	rt.DeletionTimestamp = &metav1.Time{Time: t0.Add(-time.Minute)}
}

func notReadyRuntime(rt *platformv1alpha1.ServiceRuntime) {
	rt.Status.Conditions[0].Status = metav1.ConditionFalse
}

// runtimeState is what a test looks at of a ServiceRuntime.
type runtimeState struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Finalizers  []string
	Spec        platformv1alpha1.ServiceRuntimeSpec
	Deleting    bool
}

// classState is what a test looks at of a class's status.
type classState struct {
	Runtimes      int32
	LastScaleTime *metav1.Time
	// Unready is the reason of the Ready condition when it is not True.
	Unready string
}

// passOutcome is the state after a test's passes.
type passOutcome struct {
	// Err is the last pass's error.
	Err      string
	Runtimes []runtimeState
	Classes  map[string]classState
	// Calls are the procurers' calls over all passes.
	Calls []string
	// Waiting is what the manager told the scheduler last; Wakes how often it woke it.
	Waiting map[string]scheduler.WaitReason
	Wakes   int
}

// newName matches the name of a runtime the manager ordered: its class and six random
// hex digits. The tests' own runtimes are named otherwise.
var newName = regexp.MustCompile(`\b([a-z]+)-[0-9a-f]{6}\b`)

func anonymize(s string) string { return newName.ReplaceAllString(s, "$1-new") }

func stateOf(rt *platformv1alpha1.ServiceRuntime) runtimeState {
	return runtimeState{Name: anonymize(rt.Name), Labels: rt.Labels, Annotations: rt.Annotations, Finalizers: rt.Finalizers,
		Spec: rt.Spec, Deleting: rt.DeletionTimestamp != nil}
}

func TestPass(t *testing.T) {
	fw, err := plugins.NewFramework(plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	params := &runtime.RawExtension{Raw: []byte(`{"image":"pg:17"}`)}
	small := func(mutate ...func(*platformv1alpha1.ServiceRuntimeClass)) *platformv1alpha1.ServiceRuntimeClass {
		c := class("small", 2, 3, de, fr)
		c.Spec.ScaleDownAfter = metav1.Duration{Duration: 10 * time.Minute}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
	withParams := func(c *platformv1alpha1.ServiceRuntimeClass) {
		c.Spec.Driver.Parameters = params
		c.Spec.Labels = map[string]string{"tier": "gold"}
	}
	withMin := func(n int32) func(*platformv1alpha1.ServiceRuntimeClass) {
		return func(c *platformv1alpha1.ServiceRuntimeClass) { c.Spec.MinRuntimes = n }
	}
	withMax := func(n int32) func(*platformv1alpha1.ServiceRuntimeClass) {
		return func(c *platformv1alpha1.ServiceRuntimeClass) { c.Spec.MaxRuntimes = n }
	}
	withDriver := func(name string) func(*platformv1alpha1.ServiceRuntimeClass) {
		return func(c *platformv1alpha1.ServiceRuntimeClass) { c.Spec.Driver.Name = name }
	}
	one := pending(1, platformv1alpha1.Placement{})
	key := one[0].Key
	// ordered is the state of a runtime the manager ordered of class c at loc.
	ordered := func(c *platformv1alpha1.ServiceRuntimeClass, loc platformv1alpha1.Location) runtimeState {
		labels := map[string]string{LabelClass: c.Name}
		for k, v := range c.Spec.Labels {
			labels[k] = v
		}
		return runtimeState{Name: c.Name + "-new", Labels: labels, Annotations: driverAnnotations(c.Spec.Driver),
			Finalizers: []string{Finalizer}, Spec: Spec(c, loc)}
	}
	// existing is the state of a runtime the test starts with.
	existing := func(rt *platformv1alpha1.ServiceRuntime, mutate ...func(*runtimeState)) runtimeState {
		st := stateOf(rt)
		for _, m := range mutate {
			m(&st)
		}
		return st
	}
	asCordoned := func(st *runtimeState) {
		st.Spec.Unschedulable = true
		st.Annotations = map[string]string{annotationDriver: "local", annotationCordoned: "true"}
	}
	asUncordoned := func(st *runtimeState) {
		st.Spec.Unschedulable = false
		st.Annotations = map[string]string{annotationDriver: "local"}
	}
	asDeleting := func(st *runtimeState) { st.Deleting = true }
	scaled := func(n int32, at time.Duration) classState {
		return classState{Runtimes: n, LastScaleTime: &metav1.Time{Time: t0.Add(at)}}
	}
	untouched := classState{}
	// counted is a class whose status counts n runtimes and that never scaled.
	counted := func(n int32) classState { return classState{Runtimes: n} }
	notOurs := func(rt *platformv1alpha1.ServiceRuntime) { rt.Finalizers = nil }

	tests := []struct {
		name     string
		classes  []*platformv1alpha1.ServiceRuntimeClass
		runtimes []*platformv1alpha1.ServiceRuntime
		pending  []scheduler.Pending
		load     map[string]int
		// local configures the "local" procurer; "cascading" is there too.
		local recordingProcurer
		// listErr fails the listing of the classes.
		listErr bool
		// stale lists the runtimes as they were before the passes, as a lagging cache.
		stale bool
		// passes are the clock offsets from t0 of the passes (default one at t0).
		passes []time.Duration
		want   passOutcome
	}{
		{
			name:    "an unschedulable capability and a class that fits: a runtime ordered for it",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small(withParams)},
			pending: one,
			want: passOutcome{
				Runtimes: []runtimeState{ordered(small(withParams), de)},
				Classes:  map[string]classState{"small": scaled(1, 0)},
				Calls:    []string{"local: Order small-new small"},
				Waiting: map[string]scheduler.WaitReason{key: {Reason: platformv1alpha1.ReasonWaitingForRuntime,
					Message: "waiting for runtime small-new of class small, ordered for it"}},
				Wakes: 1,
			},
		},
		{
			name:    "a class without driver parameters: no parameters annotation",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small()},
			pending: one,
			want: passOutcome{
				Runtimes: []runtimeState{ordered(small(), de)},
				Classes:  map[string]classState{"small": scaled(1, 0)},
				Calls:    []string{"local: Order small-new small"},
				Waiting: map[string]scheduler.WaitReason{key: {Reason: platformv1alpha1.ReasonWaitingForRuntime,
					Message: "waiting for runtime small-new of class small, ordered for it"}},
				Wakes: 1,
			},
		},
		{
			name:    "a second pass while the ordered runtime provisions: no second order, the capability waits for it",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small()},
			pending: one,
			passes:  []time.Duration{0, time.Second},
			want: passOutcome{
				Runtimes: []runtimeState{ordered(small(), de)},
				Classes:  map[string]classState{"small": scaled(1, 0)},
				Calls:    []string{"local: Order small-new small", "local: Order small-new small"},
				Waiting: map[string]scheduler.WaitReason{key: {Reason: platformv1alpha1.ReasonWaitingForRuntime,
					Message: "waiting for runtime small-new of class small to become ready"}},
				Wakes: 2,
			},
		},
		{
			name:     "the class at maxRuntimes: no order, the wait reason says the maximum",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small(withMax(1))},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de)},
			load:     map[string]int{"small-1": 2},
			pending:  one,
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de))},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small"},
				Waiting: map[string]scheduler.WaitReason{key: {Reason: platformv1alpha1.ReasonUnschedulable,
					Message: "runtime class small has reached its maximum of 1 runtimes"}},
				Wakes: 1,
			},
		},
		{
			name:    "minRuntimes: kept without anything waiting, across the class's locations",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small(withMin(2))},
			want: passOutcome{
				Runtimes: []runtimeState{ordered(small(withMin(2)), de), ordered(small(withMin(2)), fr)},
				Classes:  map[string]classState{"small": scaled(2, 0)},
				Calls:    []string{"local: Order small-new small", "local: Order small-new small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "minRuntimes met: nothing ordered",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small(withMin(1))},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de)},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de))},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "an empty runtime within scaleDownAfter: kept",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de)},
			passes:   []time.Duration{0, 9 * time.Minute},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de))},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small", "local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "an empty runtime past scaleDownAfter: cordoned first",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de)},
			passes:   []time.Duration{0, 10 * time.Minute},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de), asCordoned)},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small", "local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "cordoned and still empty on the next pass: removed",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de)},
			passes:   []time.Duration{0, 10 * time.Minute, 10*time.Minute + time.Second},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de), asCordoned, asDeleting)},
				Classes:  map[string]classState{"small": scaled(0, 10*time.Minute+time.Second)},
				Calls:    []string{"local: Order small-1 small", "local: Order small-1 small", "local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "removed: released by its driver on the next pass, then its finalizer dropped",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de)},
			passes:   []time.Duration{0, 10 * time.Minute, 10*time.Minute + time.Second, 10*time.Minute + 2*time.Second},
			want: passOutcome{
				Classes: map[string]classState{"small": scaled(0, 10*time.Minute+time.Second)},
				Calls: []string{"local: Order small-1 small", "local: Order small-1 small", "local: Order small-1 small",
					"local: Release small-1"},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "a capability assigned meanwhile: the cordoned runtime is cordoned no longer",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, cordoned)},
			load:     map[string]int{"small-1": 1},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de), asUncordoned)},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "cordoned for removal, then not ready: cordoned no longer, not removed",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, cordoned, notReadyRuntime)},
			passes:   []time.Duration{0, 20 * time.Minute},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de), asUncordoned)},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small", "local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "cordoned by hand (no annotation), with capabilities: left cordoned",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, func(rt *platformv1alpha1.ServiceRuntime) { rt.Spec.Unschedulable = true })},
			load:     map[string]int{"small-1": 1},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de, func(rt *platformv1alpha1.ServiceRuntime) { rt.Spec.Unschedulable = true }))},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "an empty runtime at minRuntimes: kept",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small(withMin(1))},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de)},
			passes:   []time.Duration{0, 10 * time.Minute, 20 * time.Minute},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de))},
				Classes:  map[string]classState{"small": counted(1)},
				Calls:    []string{"local: Order small-1 small", "local: Order small-1 small", "local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "a runtime the manager did not order (no finalizer): neither procured nor removed",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, notOurs)},
			passes:   []time.Duration{0, 10 * time.Minute, 10*time.Minute + time.Second},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de, notOurs))},
				Classes:  map[string]classState{"small": counted(1)},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:    "two empty runtimes: the second removed only after the cooldown",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{
				managedRuntime("small-1", small(), de), managedRuntime("small-2", small(), de)},
			passes: []time.Duration{0, 10 * time.Minute, 10*time.Minute + time.Second, 10*time.Minute + 29*time.Second},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-2", small(), de), asCordoned)},
				Classes:  map[string]classState{"small": scaled(1, 10*time.Minute+time.Second)},
				Calls: []string{
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Release small-1", "local: Order small-2 small",
				},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:    "two empty runtimes: the second removed once the cooldown is over",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{
				managedRuntime("small-1", small(), de), managedRuntime("small-2", small(), de)},
			passes: []time.Duration{0, 10 * time.Minute, 10*time.Minute + time.Second, 10*time.Minute + 31*time.Second},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-2", small(), de), asCordoned, asDeleting)},
				Classes:  map[string]classState{"small": scaled(0, 10*time.Minute+31*time.Second)},
				Calls: []string{
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Release small-1", "local: Order small-2 small",
				},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:    "two empty runtimes at minRuntimes 1: the one kept is not left cordoned",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small(withMin(1))},
			runtimes: []*platformv1alpha1.ServiceRuntime{
				managedRuntime("small-1", small(), de), managedRuntime("small-2", small(), de)},
			passes: []time.Duration{0, 10 * time.Minute, 10*time.Minute + time.Second, 10*time.Minute + 2*time.Second, time.Hour},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-2", small(), de))},
				Classes:  map[string]classState{"small": scaled(1, 10*time.Minute+time.Second)},
				Calls: []string{
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Order small-1 small", "local: Order small-2 small",
					"local: Release small-1", "local: Order small-2 small",
					"local: Order small-2 small",
				},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "deletion: Release called again while it reports something left, the finalizer kept",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, deleting)},
			local:    recordingProcurer{releasing: 2},
			passes:   []time.Duration{0, time.Second},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de, deleting))},
				Classes:  map[string]classState{"small": untouched},
				Calls:    []string{"local: Release small-1", "local: Release small-1"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "deletion by hand while it hosts capabilities: kept running, not released",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, deleting)},
			load:     map[string]int{"small-1": 1},
			passes:   []time.Duration{0, time.Second},
			want: passOutcome{
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de, deleting))},
				Classes:  map[string]classState{"small": untouched},
				Calls:    []string{"local: Order small-1 small", "local: Order small-1 small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "deletion: once Release returns true, the finalizer removed",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, deleting)},
			local:    recordingProcurer{releasing: 2},
			passes:   []time.Duration{0, time.Second, 2 * time.Second},
			want: passOutcome{
				Classes: map[string]classState{"small": untouched},
				Calls:   []string{"local: Release small-1", "local: Release small-1", "local: Release small-1"},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "deletion: Release fails, an error and the finalizer kept",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small()},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, deleting)},
			local:    recordingProcurer{releaseErr: errBoom},
			want: passOutcome{
				Err:      "failed to release runtime small-1: boom",
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(), de, deleting))},
				Classes:  map[string]classState{"small": untouched},
				Calls:    []string{"local: Release small-1"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "deletion after the class's driver changed: released by the driver it was ordered with",
			classes:  []*platformv1alpha1.ServiceRuntimeClass{small(withDriver("cascading"))},
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, deleting)},
			want: passOutcome{
				Classes: map[string]classState{"small": untouched},
				Calls:   []string{"local: Release small-1"},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "deletion after the class went: released by the driver it was ordered with",
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(), de, deleting)},
			want: passOutcome{
				Calls:   []string{"local: Release small-1"},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:     "deletion of a runtime whose driver is not configured: an error that says so, the finalizer kept",
			runtimes: []*platformv1alpha1.ServiceRuntime{managedRuntime("small-1", small(withDriver("cloudy")), de, deleting)},
			want: passOutcome{
				Err: `runtime small-1 is being removed, but it was ordered with the procurement driver "cloudy", which this coordinator does not run (it runs: cascading, local): it is kept until one that runs it releases it`,
				Runtimes: []runtimeState{existing(managedRuntime("small-1", small(withDriver("cloudy")), de), asDeleting,
					func(st *runtimeState) { st.Annotations = map[string]string{annotationDriver: "cloudy"} })},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:    "a class whose driver is not configured: nothing ordered, the class not Ready with the reason",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small(withDriver("cloudy"), withMin(1))},
			pending: one,
			want: passOutcome{
				Classes: map[string]classState{"small": {Unready: platformv1alpha1.ReasonDriverUnavailable}},
				Waiting: map[string]scheduler.WaitReason{},
			},
		},
		{
			name:    "the driver fails to provision: an error, the runtime stays ordered",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small()},
			pending: one,
			local:   recordingProcurer{orderErr: errBoom},
			want: passOutcome{
				Err:      "failed to provision runtime small-new: boom",
				Runtimes: []runtimeState{ordered(small(), de)},
				Classes:  map[string]classState{"small": scaled(1, 0)},
				Calls:    []string{"local: Order small-new small"},
				Waiting: map[string]scheduler.WaitReason{key: {Reason: platformv1alpha1.ReasonWaitingForRuntime,
					Message: "waiting for a new runtime of class small in eu-de"}},
				Wakes: 1,
			},
		},
		{
			name:    "a cache that does not show the runtime ordered yet: the class counts it",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small(withMin(1))},
			stale:   true,
			want: passOutcome{
				Runtimes: []runtimeState{ordered(small(withMin(1)), de)},
				Classes:  map[string]classState{"small": scaled(1, 0)},
				Calls:    []string{"local: Order small-new small"},
				Waiting:  map[string]scheduler.WaitReason{},
			},
		},
		{
			name:    "listing the classes fails: an error, nothing done",
			classes: []*platformv1alpha1.ServiceRuntimeClass{small(withMin(1))},
			pending: one,
			listErr: true,
			want: passOutcome{
				Err:     "failed to list ServiceRuntimeClasses: boom",
				Classes: map[string]classState{"small": untouched},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			scheme := runtime.NewScheme()
			if err := platformv1alpha1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			b := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&platformv1alpha1.ServiceRuntimeClass{})
			for _, c := range tt.classes {
				b = b.WithObjects(c)
			}
			for _, rt := range tt.runtimes {
				b = b.WithObjects(rt)
			}
			failList := tt.listErr
			if tt.stale {
				initial := tt.runtimes
				b = b.WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
					if l, ok := list.(*platformv1alpha1.ServiceRuntimeList); ok && failList {
						l.Items = nil
						for _, rt := range initial {
							l.Items = append(l.Items, *rt.DeepCopy())
						}
						return nil
					}
					return c.List(ctx, list, opts...)
				}})
				failList = true // until the outcome is read
			}
			if tt.listErr {
				b = b.WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
					if _, ok := list.(*platformv1alpha1.ServiceRuntimeClassList); ok && failList {
						return errBoom
					}
					return c.List(ctx, list, opts...)
				}})
			}
			cl := b.Build()
			var calls []string
			local := tt.local
			local.driver, local.log = "local", &calls
			sched := &fakeScheduler{pending: tt.pending, load: tt.load}
			now := t0
			m, err := New(Options{
				Client: cl, Scheduler: sched, Framework: fw, Now: func() time.Time { return now },
				Procurers: map[string]Procurer{"local": &local, "cascading": &recordingProcurer{driver: "cascading", log: &calls}},
			})
			if err != nil {
				t.Fatal(err)
			}
			passes := tt.passes
			if len(passes) == 0 {
				passes = []time.Duration{0}
			}
			var got passOutcome
			for _, at := range passes {
				now = t0.Add(at)
				got.Err = ""
				if err := m.Pass(ctx); err != nil {
					got.Err = anonymize(err.Error())
				}
			}
			failList = false

			var rts platformv1alpha1.ServiceRuntimeList
			if err := cl.List(ctx, &rts); err != nil {
				t.Fatal(err)
			}
			for i := range rts.Items {
				got.Runtimes = append(got.Runtimes, stateOf(&rts.Items[i]))
			}
			sort.SliceStable(got.Runtimes, func(i, j int) bool {
				if got.Runtimes[i].Name != got.Runtimes[j].Name {
					return got.Runtimes[i].Name < got.Runtimes[j].Name
				}
				return got.Runtimes[i].Spec.Location.Region < got.Runtimes[j].Spec.Location.Region
			})
			var classes platformv1alpha1.ServiceRuntimeClassList
			if err := cl.List(ctx, &classes); err != nil {
				t.Fatal(err)
			}
			for _, c := range classes.Items {
				if got.Classes == nil {
					got.Classes = map[string]classState{}
				}
				st := classState{Runtimes: c.Status.Runtimes, LastScaleTime: c.Status.LastScaleTime}
				ready := meta.FindStatusCondition(c.Status.Conditions, platformv1alpha1.ConditionReady)
				switch {
				case ready == nil && !tt.listErr:
					t.Errorf("class %s has no Ready condition", c.Name)
				case ready != nil && ready.Status != metav1.ConditionTrue:
					st.Unready = ready.Reason
				}
				got.Classes[c.Name] = st
			}
			for _, c := range calls {
				got.Calls = append(got.Calls, anonymize(c))
			}
			if sched.reasons != nil {
				got.Waiting = map[string]scheduler.WaitReason{}
				for k, w := range sched.reasons {
					got.Waiting[k] = scheduler.WaitReason{Reason: w.Reason, Message: anonymize(w.Message)}
				}
			}
			got.Wakes = sched.wakes
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("after the passes (-want +got):\n%s", diff)
			}
		})
	}
}
