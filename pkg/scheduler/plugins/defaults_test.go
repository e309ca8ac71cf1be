package plugins

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestNewFramework(t *testing.T) {
	tests := []struct {
		name    string
		weights map[string]int64
		wantErr string
	}{
		{name: "default weights"},
		{name: "some weights", weights: map[string]int64{"leastallocated": 5, "zonespread": 0}},
		{name: "unknown plugin", weights: map[string]int64{"leastallocated": 1, "nodeaffinity": 1}, wantErr: `no score plugin "nodeaffinity"`},
		{name: "a filter is not a score plugin", weights: map[string]int64{"capacity": 1}, wantErr: `no score plugin "capacity"`},
		{name: "negative weight", weights: map[string]int64{"preferredregions": -1}, wantErr: `weight of score plugin "preferredregions" is -1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFramework(Options{Weights: tt.weights})
			if tt.wantErr == "" {
				if err != nil || f == nil {
					t.Fatalf("NewFramework() = %v, %v; want a framework", f, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewFramework() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultWeightsNameScorePlugins(t *testing.T) {
	f, err := NewFramework(Options{Weights: DefaultWeights})
	if err != nil || f == nil {
		t.Fatalf("NewFramework(DefaultWeights) = %v, %v", f, err)
	}
}

func TestParseWeights(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]int64
		wantErr string
	}{
		{name: "empty", in: "", want: map[string]int64{}},
		{name: "blank", in: "  ", want: map[string]int64{}},
		{name: "one", in: "zonespread=4", want: map[string]int64{"zonespread": 4}},
		{name: "two", in: "leastallocated=1,preferredregions=5", want: map[string]int64{"leastallocated": 1, "preferredregions": 5}},
		{name: "blanks and zero", in: " leastallocated = 0 , zonespread=2 ", want: map[string]int64{"leastallocated": 0, "zonespread": 2}},
		{name: "no weight", in: "leastallocated", wantErr: `score weight "leastallocated": want name=weight`},
		{name: "empty weight", in: "leastallocated=", wantErr: `score weight "leastallocated=": want name=weight`},
		{name: "empty name", in: "=1", wantErr: `score weight "=1": want name=weight`},
		{name: "empty entry", in: "leastallocated=1,", wantErr: `score weight "": want name=weight`},
		{name: "not a number", in: "leastallocated=high", wantErr: `score weight "leastallocated=high": weight must be a whole number`},
		{name: "fraction", in: "leastallocated=1.5", wantErr: `score weight "leastallocated=1.5": weight must be a whole number`},
		{name: "negative", in: "leastallocated=-1", wantErr: `score weight "leastallocated=-1": weight must be a whole number of 0 or more`},
		{name: "twice", in: "zonespread=1,zonespread=2", wantErr: `score weight for "zonespread" given twice`},
		{name: "unknown plugin", in: "fastest=1", wantErr: `no score plugin is called "fastest" (known: balancedallocation, leastallocated, preferredregions, tainttoleration, zonespread)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWeights(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseWeights(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWeights(%q) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseWeights(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// outcome is what a tenant would learn of a scheduling cycle.
type outcome struct {
	Chosen     string
	Candidates []string // name=score, best first
	Message    string
}

func TestSchedule(t *testing.T) {
	at := func(region, zone, country string) tu.RuntimeOption {
		return tu.WithLocation(platformv1alpha1.Location{Cloud: "aws", Region: region, Zone: zone, Country: country})
	}
	info := func(rt *platformv1alpha1.ServiceRuntime, allocated ...string) *framework.RuntimeInfo {
		r := tu.Info(rt)
		if len(allocated) > 0 {
			r.Allocated = tu.Resources(allocated...)
		}
		return r
	}
	hosting := func(r *framework.RuntimeInfo, n int) *framework.RuntimeInfo {
		r.PerTenant[framework.TenantKey("tenant-a", tu.Kind)] = n
		r.Count = n
		return r
	}
	gold := tu.WithLabels(map[string]string{"tier": "gold"})
	// A German runtime 8/10 full and an empty French one.
	busyDE := func() []*framework.RuntimeInfo {
		return []*framework.RuntimeInfo{
			info(tu.Runtime("de", at("eu-de", "eu-de-1", "DE"), tu.WithCapacity("capabilities", "10")), "capabilities", "8"),
			info(tu.Runtime("fr", at("eu-fr", "eu-fr-1", "FR"), tu.WithCapacity("capabilities", "10"))),
		}
	}

	tests := []struct {
		name     string
		opts     Options
		c        *framework.Capability
		runtimes []*framework.RuntimeInfo
		want     outcome
	}{
		{
			name: "data that must stay in France lands on the French runtime",
			c:    tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{Countries: []string{"FR"}})),
			runtimes: []*framework.RuntimeInfo{
				info(tu.Runtime("de", at("eu-de", "eu-de-1", "DE"))),
				info(tu.Runtime("fr", at("eu-fr", "eu-fr-1", "FR"))),
				info(tu.Runtime("us", at("us-east", "us-east-1", "US"))),
			},
			want: outcome{Chosen: "fr", Candidates: []string{"fr=250"}, Message: "1/3 runtimes fit: 2 country not allowed"},
		},
		{
			name: "a full runtime is skipped",
			c:    tu.Capability(),
			runtimes: []*framework.RuntimeInfo{
				info(tu.Runtime("a-full", tu.WithCapacity("capabilities", "2")), "capabilities", "2"),
				info(tu.Runtime("b", tu.WithCapacity("capabilities", "10")), "capabilities", "5"),
			},
			want: outcome{Chosen: "b", Candidates: []string{"b=240"}, Message: "1/2 runtimes fit: 1 insufficient capabilities"},
		},
		{
			name:     "without preferences the emptier runtime wins",
			c:        tu.Capability(),
			runtimes: busyDE(),
			want:     outcome{Chosen: "fr", Candidates: []string{"fr=290", "de=210"}, Message: "2/2 runtimes fit"},
		},
		{
			name:     "a preferred region beats an emptier runtime at default weights",
			c:        tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{PreferredRegions: []string{"eu-de"}})),
			runtimes: busyDE(),
			want:     outcome{Chosen: "de", Candidates: []string{"de=510", "fr=290"}, Message: "2/2 runtimes fit"},
		},
		{
			name:     "weights decide: preferred regions turned off",
			opts:     Options{Weights: map[string]int64{"preferredregions": 0}},
			c:        tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{PreferredRegions: []string{"eu-de"}})),
			runtimes: busyDE(),
			want:     outcome{Chosen: "fr", Candidates: []string{"fr=290", "de=210"}, Message: "2/2 runtimes fit"},
		},
		{
			name: "spread across zones goes to the zone with fewer of the tenant's",
			c:    tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{SpreadAcrossZones: true})),
			runtimes: []*framework.RuntimeInfo{
				hosting(info(tu.Runtime("a", at("eu-de", "eu-de-1", "DE"))), 2),
				hosting(info(tu.Runtime("b", at("eu-de", "eu-de-2", "DE"))), 0),
			},
			want: outcome{Chosen: "b", Candidates: []string{"b=450", "a=250"}, Message: "2/2 runtimes fit"},
		},
		{
			name: "a preferNoSchedule taint loses to an untainted runtime",
			c:    tu.Capability(),
			runtimes: []*framework.RuntimeInfo{
				info(tu.Runtime("a", tu.WithTaints(platformv1alpha1.Taint{Key: "msp.dev/old", Effect: platformv1alpha1.TaintEffectPreferNoSchedule}))),
				info(tu.Runtime("b")),
			},
			want: outcome{Chosen: "b", Candidates: []string{"b=250", "a=240"}, Message: "2/2 runtimes fit"},
		},
		{
			name: "every reason, each runtime counted once by its first failing filter",
			opts: Options{HeartbeatTimeout: time.Minute},
			c: tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{
				Regions:         []string{"eu-de"},
				RuntimeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}},
			})),
			runtimes: []*framework.RuntimeInfo{
				info(tu.Runtime("other-kind", tu.WithKinds(schema.GroupKind{Group: "redis.msp.dev", Kind: "RedisCache"}), at("us-east", "", "US"))),
				info(tu.Runtime("cordoned", tu.Cordoned(), at("us-east", "", "US"))),
				info(tu.Runtime("down", tu.WithReady(metav1.ConditionFalse), gold)),
				info(tu.Runtime("silent", tu.WithHeartbeat(tu.Now.Add(-2*time.Minute)), gold)),
				info(tu.Runtime("us-1", at("us-east", "", "US"), gold)),
				info(tu.Runtime("us-2", at("us-west", "", "US"), gold)),
				info(tu.Runtime("silver", tu.WithLabels(map[string]string{"tier": "silver"}))),
				info(tu.Runtime("dedicated", gold, tu.WithTaints(platformv1alpha1.Taint{Key: "msp.dev/dedicated", Value: "acme", Effect: platformv1alpha1.TaintEffectNoSchedule}))),
				info(tu.Runtime("full", gold, tu.WithCapacity("capabilities", "3")), "capabilities", "3"),
				info(tu.Runtime("ok", gold)),
			},
			want: outcome{
				Chosen:     "ok",
				Candidates: []string{"ok=250"},
				Message:    "1/10 runtimes fit: 2 region not allowed, 1 cordoned, 1 does not host this kind, 1 heartbeat too old, 1 insufficient capabilities, 1 labels do not match, 1 not ready, 1 untolerated taint",
			},
		},
		{
			name: "nothing fits",
			c:    tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{Regions: []string{"ap-south"}})),
			runtimes: []*framework.RuntimeInfo{
				info(tu.Runtime("de", at("eu-de", "eu-de-1", "DE"))),
				info(tu.Runtime("fr", at("eu-fr", "eu-fr-1", "FR"))),
			},
			want: outcome{Message: "0/2 runtimes fit: 2 region not allowed"},
		},
		{
			name: "no runtimes",
			c:    tu.Capability(),
			want: outcome{Message: "0/0 runtimes fit: no runtime is registered for this kind"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = tu.Clock
			f, err := NewFramework(tt.opts)
			if err != nil {
				t.Fatalf("NewFramework() error = %v", err)
			}
			snap := &framework.Snapshot{Runtimes: tt.runtimes, Now: tu.Now, HeartbeatTimeout: tt.opts.HeartbeatTimeout}
			res, err := f.Schedule(context.Background(), tt.c, snap)
			if err != nil {
				t.Fatalf("Schedule() error = %v", err)
			}
			got := outcome{Message: res.Message()}
			if res.Chosen != nil {
				got.Chosen = res.Chosen.Name()
			}
			for _, c := range res.Candidates {
				got.Candidates = append(got.Candidates, fmt.Sprintf("%s=%d", c.Runtime.Name(), c.Score))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Schedule() (-want +got):\n%s", diff)
			}
		})
	}
}
