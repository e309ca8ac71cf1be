package scheduler

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

var (
	pgKind    = schema.GroupKind{Group: "postgres.msp.dev", Kind: "PostgresDatabase"}
	otherKind = schema.GroupKind{Group: "redis.msp.dev", Kind: "RedisCache"}
)

func hosting(name string, gk schema.GroupKind, loc platformv1alpha1.Location) *platformv1alpha1.ServiceRuntime {
	return &platformv1alpha1.ServiceRuntime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: platformv1alpha1.ServiceRuntimeSpec{
			Location:     loc,
			Capabilities: []platformv1alpha1.CapabilityKind{{Group: gk.Group, Kind: gk.Kind}},
		},
	}
}

func class(name string, gk schema.GroupKind, locs ...platformv1alpha1.Location) *platformv1alpha1.ServiceRuntimeClass {
	return &platformv1alpha1.ServiceRuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: platformv1alpha1.ServiceRuntimeClassSpec{
			Capabilities: []platformv1alpha1.CapabilityKind{{Group: gk.Group, Kind: gk.Kind}},
			Locations:    locs,
		},
	}
}

func TestLocationHint(t *testing.T) {
	de := platformv1alpha1.Location{Region: "eu-de", Country: "DE", Zone: "eu-de-1", Cloud: "aws"}
	de2 := platformv1alpha1.Location{Region: "eu-de", Country: "DE", Zone: "eu-de-2", Cloud: "aws"}
	fr := platformv1alpha1.Location{Region: "eu-fr", Country: "FR", Zone: "eu-fr-1", Cloud: "gcp"}
	us := platformv1alpha1.Location{Region: "us-east", Country: "US"}
	deleting := hosting("going", pgKind, platformv1alpha1.Location{Region: "ap-jp", Country: "JP"})
	deleting.DeletionTimestamp = &metav1.Time{}
	runtimes := []*platformv1alpha1.ServiceRuntime{
		hosting("de-1", pgKind, de), hosting("de-2", pgKind, de2), hosting("fr-1", pgKind, fr),
		hosting("redis-ch", otherKind, platformv1alpha1.Location{Region: "eu-ch", Country: "CH"}),
		deleting,
	}
	classes := []*platformv1alpha1.ServiceRuntimeClass{
		class("pg", pgKind, us),
		class("redis", otherKind, platformv1alpha1.Location{Region: "eu-at", Country: "AT"}),
	}
	unfit := func(reasons map[string]int) *framework.Result {
		n := 0
		for _, c := range reasons {
			n += c
		}
		return &framework.Result{Evaluated: n, Reasons: reasons}
	}
	tests := []struct {
		name      string
		res       *framework.Result
		placement platformv1alpha1.Placement
		runtimes  []*platformv1alpha1.ServiceRuntime
		classes   []*platformv1alpha1.ServiceRuntimeClass
		want      string
	}{
		{
			name:      "country not offered: regions and countries of runtimes and classes of the kind",
			res:       unfit(map[string]int{"country not allowed": 3}),
			placement: platformv1alpha1.Placement{Countries: []string{"CH"}},
			runtimes:  runtimes, classes: classes,
			want: "this provider offers regions eu-de, eu-fr, us-east and countries DE, FR, US",
		},
		{
			name:      "region not offered: regions only",
			res:       unfit(map[string]int{"region not allowed": 3}),
			placement: platformv1alpha1.Placement{Regions: []string{"eu-ch"}},
			runtimes:  runtimes, classes: classes,
			want: "this provider offers regions eu-de, eu-fr, us-east",
		},
		{
			name:      "zones and clouds when asked for; empty values left out",
			res:       unfit(map[string]int{"zone not allowed": 2, "cloud not allowed": 1}),
			placement: platformv1alpha1.Placement{Zones: []string{"eu-de-9"}, Clouds: []string{"aws"}},
			runtimes:  runtimes, classes: classes,
			want: "this provider offers regions eu-de, eu-fr, us-east and zones eu-de-1, eu-de-2, eu-fr-1 and clouds aws, gcp",
		},
		{
			name:      "a dimension nobody offers",
			res:       unfit(map[string]int{"cloud not allowed": 1}),
			placement: platformv1alpha1.Placement{Clouds: []string{"aws"}},
			runtimes:  []*platformv1alpha1.ServiceRuntime{hosting("us-1", pgKind, us)},
			want:      "this provider offers regions us-east and no clouds",
		},
		{
			name:      "classes alone",
			res:       unfit(map[string]int{"country not allowed": 1}),
			placement: platformv1alpha1.Placement{Countries: []string{"CH"}},
			runtimes:  []*platformv1alpha1.ServiceRuntime{hosting("redis-ch", otherKind, platformv1alpha1.Location{Region: "eu-ch", Country: "CH"})},
			classes:   classes,
			want:      "this provider offers regions us-east and countries US",
		},
		{
			name:      "a class whose driver the runtime manager does not run: left out",
			res:       unfit(map[string]int{"country not allowed": 1}),
			placement: platformv1alpha1.Placement{Countries: []string{"CH"}},
			runtimes:  []*platformv1alpha1.ServiceRuntime{hosting("de-1", pgKind, de)},
			classes: func() []*platformv1alpha1.ServiceRuntimeClass {
				c := class("pg", pgKind, us)
				c.Status.Conditions = []metav1.Condition{{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: platformv1alpha1.ReasonDriverUnavailable}}
				return []*platformv1alpha1.ServiceRuntimeClass{c}
			}(),
			want: "this provider offers regions eu-de and countries DE",
		},
		{
			name:      "location among other reasons",
			res:       unfit(map[string]int{"insufficient capacity": 2, "region not allowed": 1}),
			placement: platformv1alpha1.Placement{Regions: []string{"eu-de", "eu-fr"}},
			runtimes:  runtimes,
			want:      "this provider offers regions eu-de, eu-fr",
		},
		{
			name:      "no location reason, no hint",
			res:       unfit(map[string]int{"insufficient capacity": 3, "not ready": 1}),
			placement: platformv1alpha1.Placement{Countries: []string{"DE"}},
			runtimes:  runtimes, classes: classes,
		},
		{
			name:     "nothing registered, no hint",
			res:      &framework.Result{Reasons: map[string]int{}},
			runtimes: nil, classes: classes,
		},
		{
			name:      "a chosen runtime, no hint",
			res:       &framework.Result{Chosen: &framework.RuntimeInfo{Runtime: runtimes[0]}, Evaluated: 3, Feasible: 1, Reasons: map[string]int{"country not allowed": 2}},
			placement: platformv1alpha1.Placement{Countries: []string{"DE"}},
			runtimes:  runtimes,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &framework.Capability{GroupKind: pgKind, Spec: platformv1alpha1.CapabilitySpec{Placement: tt.placement}}
			if got := LocationHint(tt.res, c, tt.runtimes, tt.classes); got != tt.want {
				t.Errorf("LocationHint() = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLocationHintIsBounded(t *testing.T) {
	var rts []*platformv1alpha1.ServiceRuntime
	for i := range 25 {
		rts = append(rts, hosting(fmt.Sprint(i), pgKind, platformv1alpha1.Location{Region: fmt.Sprintf("r-%02d", i)}))
	}
	res := &framework.Result{Evaluated: 25, Reasons: map[string]int{"region not allowed": 25}}
	got := LocationHint(res, &framework.Capability{GroupKind: pgKind}, rts, nil)
	want := "this provider offers regions r-00, r-01, r-02, r-03, r-04, r-05, r-06, r-07, r-08, r-09, r-10, r-11, r-12, r-13, r-14, r-15, r-16, r-17, r-18, r-19 and 5 more"
	if got != want {
		t.Errorf("LocationHint() = %q\nwant %q", got, want)
	}
}
