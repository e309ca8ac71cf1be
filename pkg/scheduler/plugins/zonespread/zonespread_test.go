package zonespread

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

// runtime is a runtime in zone that hosts n capabilities of tenant-a's Kind, plus one of
// another tenant and one of another kind, which never count.
func runtime(name, zone string, n int) *framework.RuntimeInfo {
	r := tu.Info(tu.Runtime(name, tu.WithLocation(platformv1alpha1.Location{Region: "eu-de", Zone: zone})))
	r.PerTenant[framework.TenantKey("tenant-a", tu.Kind)] = n
	r.PerTenant[framework.TenantKey("tenant-b", tu.Kind)] = 7
	r.PerTenant[framework.TenantKey("tenant-a", schema.GroupKind{Group: "redis.msp.dev", Kind: "RedisCache"})] = 7
	r.Count = n + 14
	return r
}

func TestScore(t *testing.T) {
	tests := []struct {
		name     string
		spread   bool
		feasible []*framework.RuntimeInfo
		want     map[string]int64
	}{
		{
			name:     "no spread asked",
			feasible: []*framework.RuntimeInfo{runtime("a", "z1", 3), runtime("b", "z2", 0)},
			want:     map[string]int64{"a": 0, "b": 0},
		},
		{
			name:     "none of the tenant's yet",
			spread:   true,
			feasible: []*framework.RuntimeInfo{runtime("a", "z1", 0), runtime("b", "z2", 0)},
			want:     map[string]int64{"a": 100, "b": 100},
		},
		{
			name:     "emptiest zone wins",
			spread:   true,
			feasible: []*framework.RuntimeInfo{runtime("a", "z1", 4), runtime("b", "z2", 1), runtime("c", "z3", 0)},
			want:     map[string]int64{"a": 0, "b": 75, "c": 100},
		},
		{
			name:   "runtimes of a zone add up",
			spread: true,
			feasible: []*framework.RuntimeInfo{
				runtime("a1", "z1", 1), runtime("a2", "z1", 1), runtime("a3", "z1", 0),
				runtime("b", "z2", 3),
			},
			want: map[string]int64{"a1": 33, "a2": 33, "a3": 33, "b": 0},
		},
		{
			name:     "no zone is a zone of its own",
			spread:   true,
			feasible: []*framework.RuntimeInfo{runtime("a", "", 2), runtime("b", "", 2), runtime("c", "z1", 2)},
			want:     map[string]int64{"a": 0, "b": 0, "c": 50},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, state := New(), framework.NewCycleState()
			c := tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{SpreadAcrossZones: tt.spread}))
			if st := p.PreScore(context.Background(), state, c, tt.feasible); st != nil {
				t.Fatalf("PreScore() = %v", st)
			}
			got := map[string]int64{}
			for _, r := range tt.feasible {
				s, st := p.Score(context.Background(), state, c, r)
				if st != nil {
					t.Fatalf("Score(%s) status = %v", r.Name(), st)
				}
				got[r.Name()] = s
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScoreWithoutPreScore(t *testing.T) {
	c := tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{SpreadAcrossZones: true}))
	_, st := New().Score(context.Background(), framework.NewCycleState(), c, runtime("a", "z1", 0))
	if st == nil || st.Code != framework.Error {
		t.Errorf("Score() status = %v, want an error", st)
	}
}
