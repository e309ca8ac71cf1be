package framework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// fakeFilter fails the runtimes named in its map with their status.
type fakeFilter struct {
	name  string
	fails map[string]*Status
}

func (f *fakeFilter) Name() string { return f.name }

func (f *fakeFilter) Filter(_ context.Context, _ *CycleState, _ *Capability, r *RuntimeInfo) *Status {
	return f.fails[r.Name()]
}

// reasons is a fakeFilter that fails runtimes, by name, as Unschedulable with a reason.
func reasons(name string, byRuntime map[string]string) *fakeFilter {
	f := &fakeFilter{name: name, fails: map[string]*Status{}}
	for rt, reason := range byRuntime {
		f.fails[rt] = NewUnschedulable(reason)
	}
	return f
}

// fakeScore scores runtimes from its map; runtimes not in it score 0.
type fakeScore struct {
	name   string
	scores map[string]int64
	fail   *Status
}

func (f *fakeScore) Name() string { return f.name }

func (f *fakeScore) Score(_ context.Context, _ *CycleState, _ *Capability, r *RuntimeInfo) (int64, *Status) {
	return f.scores[r.Name()], f.fail
}

// fakePreScore remembers which runtimes PreScore saw and hands that to Score through the
// cycle state: each runtime PreScore saw scores 10.
type fakePreScore struct {
	fakeScore
	calls   int
	preFail *Status
}

func (f *fakePreScore) PreScore(_ context.Context, state *CycleState, _ *Capability, feasible []*RuntimeInfo) *Status {
	f.calls++
	names := make([]string, 0, len(feasible))
	for _, r := range feasible {
		names = append(names, r.Name())
	}
	state.Write(f.name, names)
	return f.preFail
}

func (f *fakePreScore) Score(_ context.Context, state *CycleState, _ *Capability, r *RuntimeInfo) (int64, *Status) {
	v, ok := state.Read(f.name)
	if !ok {
		return 0, AsError(errors.New("PreScore did not run"))
	}
	if slices.Contains(v.([]string), r.Name()) {
		return 10, nil
	}
	return 0, nil
}

func runtime(name string, count int) *RuntimeInfo {
	return &RuntimeInfo{
		Runtime: &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: name}},
		Count:   count,
	}
}

func runtimes(names ...string) []*RuntimeInfo {
	out := make([]*RuntimeInfo, 0, len(names))
	for _, n := range names {
		out = append(out, runtime(n, 0))
	}
	return out
}

// outcome is a Result reduced to names and numbers.
type outcome struct {
	Chosen              string
	Candidates          []string // name=score, best first
	Evaluated, Feasible int
	Reasons             map[string]int
	Message             string
}

func outcomeOf(r *Result) outcome {
	o := outcome{Evaluated: r.Evaluated, Feasible: r.Feasible, Reasons: r.Reasons, Message: r.Message()}
	if r.Chosen != nil {
		o.Chosen = r.Chosen.Name()
	}
	for _, c := range r.Candidates {
		o.Candidates = append(o.Candidates, fmt.Sprintf("%s=%d", c.Runtime.Name(), c.Score))
	}
	return o
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name          string
		filters       []FilterPlugin
		scores        []WeightedScorePlugin
		maxCandidates int
		runtimes      []*RuntimeInfo
		want          outcome
	}{
		{
			name: "highest weighted score wins",
			scores: []WeightedScorePlugin{
				{Plugin: &fakeScore{name: "s1", scores: map[string]int64{"a": 10, "b": 90, "c": 20}}, Weight: 1},
				{Plugin: &fakeScore{name: "s2", scores: map[string]int64{"a": 50, "b": 0, "c": 20}}, Weight: 2},
			},
			runtimes: runtimes("a", "b", "c"),
			want: outcome{
				Chosen: "a", Candidates: []string{"a=110", "b=90", "c=60"},
				Evaluated: 3, Feasible: 3, Reasons: map[string]int{}, Message: "3/3 runtimes fit",
			},
		},
		{
			name: "scores are clamped to 0..MaxScore",
			scores: []WeightedScorePlugin{
				{Plugin: &fakeScore{name: "s", scores: map[string]int64{"a": 500, "b": -50, "c": 99}}, Weight: 1},
			},
			runtimes: runtimes("a", "b", "c"),
			want: outcome{
				Chosen: "a", Candidates: []string{"a=100", "c=99", "b=0"},
				Evaluated: 3, Feasible: 3, Reasons: map[string]int{}, Message: "3/3 runtimes fit",
			},
		},
		{
			name:     "a tie goes to the runtime with fewer capabilities",
			scores:   []WeightedScorePlugin{{Plugin: &fakeScore{name: "s", scores: map[string]int64{"a": 50, "b": 50, "c": 50}}, Weight: 1}},
			runtimes: []*RuntimeInfo{runtime("a", 3), runtime("b", 1), runtime("c", 2)},
			want: outcome{
				Chosen: "b", Candidates: []string{"b=50", "c=50", "a=50"},
				Evaluated: 3, Feasible: 3, Reasons: map[string]int{}, Message: "3/3 runtimes fit",
			},
		},
		{
			name:     "a tie with as many capabilities goes by name",
			scores:   []WeightedScorePlugin{{Plugin: &fakeScore{name: "s", scores: map[string]int64{}}, Weight: 1}},
			runtimes: []*RuntimeInfo{runtime("c", 1), runtime("a", 1), runtime("b", 1)},
			want: outcome{
				Chosen: "a", Candidates: []string{"a=0", "b=0", "c=0"},
				Evaluated: 3, Feasible: 3, Reasons: map[string]int{}, Message: "3/3 runtimes fit",
			},
		},
		{
			name:     "no score plugins",
			runtimes: []*RuntimeInfo{runtime("b", 0), runtime("a", 0)},
			want: outcome{
				Chosen: "a", Candidates: []string{"a=0", "b=0"},
				Evaluated: 2, Feasible: 2, Reasons: map[string]int{}, Message: "2/2 runtimes fit",
			},
		},
		{
			name: "reasons are counted, most frequent first",
			filters: []FilterPlugin{
				reasons("ready", map[string]string{"c": "not ready"}),
				reasons("location", map[string]string{"a": "region not allowed", "b": "region not allowed"}),
			},
			runtimes: runtimes("a", "b", "c"),
			want: outcome{
				Evaluated: 3, Reasons: map[string]int{"region not allowed": 2, "not ready": 1},
				Message: "0/3 runtimes fit: 2 region not allowed, 1 not ready",
			},
		},
		{
			name: "equally frequent reasons go by reason",
			filters: []FilterPlugin{
				reasons("f", map[string]string{"a": "zone not allowed", "b": "cordoned", "c": "not ready"}),
			},
			runtimes: runtimes("a", "b", "c", "d"),
			want: outcome{
				Chosen: "d", Candidates: []string{"d=0"},
				Evaluated: 4, Feasible: 1, Reasons: map[string]int{"cordoned": 1, "not ready": 1, "zone not allowed": 1},
				Message: "1/4 runtimes fit: 1 cordoned, 1 not ready, 1 zone not allowed",
			},
		},
		{
			name: "a runtime's first failing filter is its reason",
			filters: []FilterPlugin{
				reasons("first", map[string]string{"a": "cordoned"}),
				reasons("second", map[string]string{"a": "region not allowed", "b": "region not allowed"}),
			},
			runtimes: runtimes("a", "b"),
			want: outcome{
				Evaluated: 2, Reasons: map[string]int{"cordoned": 1, "region not allowed": 1},
				Message: "0/2 runtimes fit: 1 cordoned, 1 region not allowed",
			},
		},
		{
			name:     "infeasible runtimes are not scored",
			filters:  []FilterPlugin{reasons("f", map[string]string{"a": "not ready"})},
			scores:   []WeightedScorePlugin{{Plugin: &fakeScore{name: "s", scores: map[string]int64{"a": 100, "b": 1}}, Weight: 1}},
			runtimes: runtimes("a", "b"),
			want: outcome{
				Chosen: "b", Candidates: []string{"b=1"},
				Evaluated: 2, Feasible: 1, Reasons: map[string]int{"not ready": 1}, Message: "1/2 runtimes fit: 1 not ready",
			},
		},
		{
			name: "no runtimes",
			want: outcome{Reasons: map[string]int{}, Message: "0/0 runtimes fit: no runtime is registered for this kind"},
		},
		{
			name:          "candidates are limited to MaxCandidates",
			scores:        []WeightedScorePlugin{{Plugin: &fakeScore{name: "s", scores: map[string]int64{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}}, Weight: 1}},
			maxCandidates: 2,
			runtimes:      runtimes("a", "b", "c", "d", "e"),
			want: outcome{
				Chosen: "e", Candidates: []string{"e=5", "d=4"},
				Evaluated: 5, Feasible: 5, Reasons: map[string]int{}, Message: "5/5 runtimes fit",
			},
		},
		{
			name:     "three candidates by default",
			scores:   []WeightedScorePlugin{{Plugin: &fakeScore{name: "s", scores: map[string]int64{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}}, Weight: 1}},
			runtimes: runtimes("a", "b", "c", "d", "e"),
			want: outcome{
				Chosen: "e", Candidates: []string{"e=5", "d=4", "c=3"},
				Evaluated: 5, Feasible: 5, Reasons: map[string]int{}, Message: "5/5 runtimes fit",
			},
		},
		{
			name:    "PreScore sees the feasible runtimes and shares state with Score",
			filters: []FilterPlugin{reasons("f", map[string]string{"b": "not ready"})},
			scores: []WeightedScorePlugin{
				{Plugin: &fakePreScore{fakeScore: fakeScore{name: "pre"}}, Weight: 3},
				{Plugin: &fakeScore{name: "s", scores: map[string]int64{"a": 1, "c": 2}}, Weight: 1},
			},
			runtimes: runtimes("a", "b", "c"),
			want: outcome{
				Chosen: "c", Candidates: []string{"c=32", "a=31"},
				Evaluated: 3, Feasible: 2, Reasons: map[string]int{"not ready": 1}, Message: "2/3 runtimes fit: 1 not ready",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(tt.filters, tt.scores)
			if tt.maxCandidates > 0 {
				f.MaxCandidates = tt.maxCandidates
			}
			res, err := f.Schedule(context.Background(), &Capability{Name: "db"}, &Snapshot{Runtimes: tt.runtimes})
			if err != nil {
				t.Fatalf("Schedule() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, outcomeOf(res)); diff != "" {
				t.Errorf("Schedule() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSchedulePreScoreCalls(t *testing.T) {
	pre := &fakePreScore{fakeScore: fakeScore{name: "pre"}}
	f := New(nil, []WeightedScorePlugin{{Plugin: pre, Weight: 1}, {Plugin: &fakeScore{name: "s"}, Weight: 1}})
	snap := &Snapshot{Runtimes: runtimes("a", "b")}
	for i := 1; i <= 2; i++ {
		if _, err := f.Schedule(context.Background(), &Capability{}, snap); err != nil {
			t.Fatalf("Schedule() error = %v", err)
		}
		if pre.calls != i {
			t.Errorf("after %d cycles PreScore was called %d times", i, pre.calls)
		}
	}

	// Nothing to score, nothing to prepare.
	f = New([]FilterPlugin{reasons("f", map[string]string{"a": "x", "b": "x"})}, []WeightedScorePlugin{{Plugin: pre, Weight: 1}})
	if _, err := f.Schedule(context.Background(), &Capability{}, snap); err != nil {
		t.Fatalf("Schedule() error = %v", err)
	}
	if pre.calls != 2 {
		t.Errorf("PreScore was called without feasible runtimes")
	}
}

func TestScheduleErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		filters []FilterPlugin
		scores  []WeightedScorePlugin
		wantIs  error
	}{
		{
			name:    "a filter error aborts",
			filters: []FilterPlugin{&fakeFilter{name: "f", fails: map[string]*Status{"b": AsError(boom)}}},
			wantIs:  boom,
		},
		{
			name:   "a score error aborts",
			scores: []WeightedScorePlugin{{Plugin: &fakeScore{name: "s", fail: AsError(boom)}, Weight: 1}},
		},
		{
			name:   "a score that says unschedulable aborts",
			scores: []WeightedScorePlugin{{Plugin: &fakeScore{name: "s", fail: NewUnschedulable("nope")}, Weight: 1}},
		},
		{
			name:   "a PreScore error aborts",
			scores: []WeightedScorePlugin{{Plugin: &fakePreScore{fakeScore: fakeScore{name: "pre"}, preFail: AsError(boom)}, Weight: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(tt.filters, tt.scores)
			res, err := f.Schedule(context.Background(), &Capability{}, &Snapshot{Runtimes: runtimes("a", "b", "c")})
			if err == nil {
				t.Fatalf("Schedule() = %+v, want an error", outcomeOf(res))
			}
			if res != nil {
				t.Errorf("Schedule() result = %+v, want nil with an error", outcomeOf(res))
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Schedule() error = %v, want it to wrap %v", err, tt.wantIs)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	boom := errors.New("boom")
	f := New([]FilterPlugin{
		reasons("first", map[string]string{"cordoned": "cordoned", "both": "cordoned"}),
		reasons("second", map[string]string{"far": "region not allowed", "both": "region not allowed"}),
		&fakeFilter{name: "third", fails: map[string]*Status{"broken": AsError(boom)}},
	}, nil)
	tests := []struct {
		runtime string
		want    *Status
	}{
		{runtime: "fits"},
		{runtime: "cordoned", want: NewUnschedulable("cordoned")},
		{runtime: "far", want: NewUnschedulable("region not allowed")},
		{runtime: "both", want: NewUnschedulable("cordoned")},
		{runtime: "broken", want: AsError(boom)},
	}
	for _, tt := range tests {
		t.Run(tt.runtime, func(t *testing.T) {
			got := f.Check(context.Background(), &Capability{}, runtime(tt.runtime, 0))
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) })); diff != "" {
				t.Errorf("Check() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestsOf(t *testing.T) {
	list := func(pairs ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(pairs); i += 2 {
			out[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
		}
		return out
	}
	tests := []struct {
		name      string
		resources corev1.ResourceList
		extra     corev1.ResourceList
		want      corev1.ResourceList
	}{
		{name: "nothing asked", want: list("capabilities", "1")},
		{name: "spec.resources are kept", resources: list("storage", "10Gi", "cpu", "500m"), want: list("capabilities", "1", "storage", "10Gi", "cpu", "500m")},
		{name: "a capabilities entry in spec.resources is ignored", resources: list("capabilities", "5", "storage", "1Gi"), want: list("capabilities", "1", "storage", "1Gi")},
		{name: "extra is added", extra: list("storage", "20Gi"), want: list("capabilities", "1", "storage", "20Gi")},
		{
			// A 1Ti database cannot be made to count as 1Mi.
			name:      "the kind's own request is a floor",
			resources: list("storage", "1Mi"),
			extra:     list("storage", "1Ti", "memory", "1Gi"),
			want:      list("capabilities", "1", "storage", "1Ti", "memory", "1Gi"),
		},
		{
			name:      "spec.resources may ask for more than the kind's own request",
			resources: list("storage", "2Ti"),
			extra:     list("storage", "1Ti"),
			want:      list("capabilities", "1", "storage", "2Ti"),
		},
		{
			name:      "equal quantities in other units",
			resources: list("storage", "1024Mi"),
			extra:     list("storage", "1Gi"),
			want:      list("capabilities", "1", "storage", "1Gi"),
		},
		{
			name:      "a negative spec.resources entry lowers nothing",
			resources: list("storage", "-1Ti", "memory", "-1Gi"),
			extra:     list("storage", "10Gi"),
			want:      list("capabilities", "1", "storage", "10Gi"),
		},
		{
			name:      "zero spec.resources entries are left out",
			resources: list("storage", "0", "cpu", "0m"),
			want:      list("capabilities", "1"),
		},
		{
			name:  "non-positive kind requests are left out",
			extra: list("storage", "-5Gi", "memory", "0"),
			want:  list("capabilities", "1"),
		},
		{
			name:      "a zero or negative capabilities entry does not lower the one",
			resources: list("capabilities", "-3"),
			extra:     list("capabilities", "0"),
			want:      list("capabilities", "1"),
		},
		{
			name:  "a capabilities entry in the kind's requests is ignored too",
			extra: list("capabilities", "7"),
			want:  list("capabilities", "1"),
		},
	}
	sameQuantity := cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &platformv1alpha1.CapabilitySpec{Resources: tt.resources}
			before := spec.DeepCopy()
			got := RequestsOf(spec, tt.extra)
			if diff := cmp.Diff(tt.want, got, sameQuantity); diff != "" {
				t.Errorf("RequestsOf() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, spec, sameQuantity); diff != "" {
				t.Errorf("RequestsOf() changed the spec (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNamedResources(t *testing.T) {
	list := func(pairs ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(pairs); i += 2 {
			out[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
		}
		return out
	}
	tests := []struct {
		name      string
		resources corev1.ResourceList
		want      []corev1.ResourceName
	}{
		{name: "nothing named"},
		{name: "sorted", resources: list("storage", "1Gi", "cpu", "1", "memory", "1Gi"), want: []corev1.ResourceName{"cpu", "memory", "storage"}},
		{name: "capabilities is not named", resources: list("capabilities", "2", "gpu", "1"), want: []corev1.ResourceName{"gpu"}},
		{name: "non-positive quantities are not named", resources: list("gpu", "0", "cpu", "-1", "memory", "1Mi"), want: []corev1.ResourceName{"memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NamedResources(&platformv1alpha1.CapabilitySpec{Resources: tt.resources})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NamedResources() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMessageHint(t *testing.T) {
	chosen := &RuntimeInfo{Runtime: &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}
	tests := []struct {
		name string
		res  Result
		want string
	}{
		{
			name: "no hint",
			res:  Result{Evaluated: 2, Reasons: map[string]int{"country not allowed": 2}},
			want: "0/2 runtimes fit: 2 country not allowed",
		},
		{
			name: "hint appended when nothing fits",
			res:  Result{Evaluated: 2, Reasons: map[string]int{"country not allowed": 2}, Hint: "this provider offers regions eu-de"},
			want: "0/2 runtimes fit: 2 country not allowed; this provider offers regions eu-de",
		},
		{
			name: "hint left out when a runtime was chosen",
			res:  Result{Chosen: chosen, Evaluated: 2, Feasible: 1, Reasons: map[string]int{"country not allowed": 1}, Hint: "this provider offers regions eu-de"},
			want: "1/2 runtimes fit: 1 country not allowed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.Message(); got != tt.want {
				t.Errorf("Message() = %q, want %q", got, tt.want)
			}
		})
	}
}
