package location

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestFilter(t *testing.T) {
	full := platformv1alpha1.Location{Cloud: "aws", Region: "eu-de", Zone: "eu-de-1", Country: "DE"}
	tests := []struct {
		name      string
		location  platformv1alpha1.Location
		placement platformv1alpha1.Placement
		shard     string
		want      *framework.Status
	}{
		{name: "in the region of the workspace's shard", location: full, shard: "eu-de"},
		{name: "outside the region of the workspace's shard", location: full, shard: "eu-fr", want: framework.NewUnschedulable("outside region eu-fr of the workspace's kcp shard")},
		{
			name: "the shard's region is reported before the placement", location: full, shard: "eu-fr",
			placement: platformv1alpha1.Placement{Regions: []string{"eu-fr"}}, want: framework.NewUnschedulable("outside region eu-fr of the workspace's kcp shard"),
		},
		{name: "no constraints", location: full},
		{name: "no constraints, bare location", location: platformv1alpha1.Location{Region: "eu-de"}},
		{
			name:     "every list matches",
			location: full,
			placement: platformv1alpha1.Placement{
				Regions: []string{"eu-fr", "eu-de"}, Countries: []string{"DE"}, Zones: []string{"eu-de-1"}, Clouds: []string{"gcp", "aws"},
			},
		},
		{name: "region not in list", location: full, placement: platformv1alpha1.Placement{Regions: []string{"eu-fr"}}, want: framework.NewUnschedulable("region not allowed")},
		{name: "country not in list", location: full, placement: platformv1alpha1.Placement{Countries: []string{"FR"}}, want: framework.NewUnschedulable("country not allowed")},
		{name: "zone not in list", location: full, placement: platformv1alpha1.Placement{Zones: []string{"eu-de-2"}}, want: framework.NewUnschedulable("zone not allowed")},
		{name: "cloud not in list", location: full, placement: platformv1alpha1.Placement{Clouds: []string{"gcp"}}, want: framework.NewUnschedulable("cloud not allowed")},
		{name: "empty country matches no countries list", location: platformv1alpha1.Location{Region: "eu-de"}, placement: platformv1alpha1.Placement{Countries: []string{"DE"}}, want: framework.NewUnschedulable("country not allowed")},
		{name: "empty zone matches no zones list", location: platformv1alpha1.Location{Region: "eu-de"}, placement: platformv1alpha1.Placement{Zones: []string{"eu-de-1"}}, want: framework.NewUnschedulable("zone not allowed")},
		{name: "empty cloud matches no clouds list", location: platformv1alpha1.Location{Region: "eu-de"}, placement: platformv1alpha1.Placement{Clouds: []string{"aws"}}, want: framework.NewUnschedulable("cloud not allowed")},
		{
			name:      "region is reported before country",
			location:  full,
			placement: platformv1alpha1.Placement{Regions: []string{"eu-fr"}, Countries: []string{"FR"}, Zones: []string{"x"}, Clouds: []string{"gcp"}},
			want:      framework.NewUnschedulable("region not allowed"),
		},
		{
			name:      "country is reported before zone",
			location:  full,
			placement: platformv1alpha1.Placement{Countries: []string{"FR"}, Zones: []string{"x"}, Clouds: []string{"gcp"}},
			want:      framework.NewUnschedulable("country not allowed"),
		},
		{
			name:      "zone is reported before cloud",
			location:  full,
			placement: platformv1alpha1.Placement{Zones: []string{"x"}, Clouds: []string{"gcp"}},
			want:      framework.NewUnschedulable("zone not allowed"),
		},
		{name: "preferred regions do not filter", location: full, placement: platformv1alpha1.Placement{PreferredRegions: []string{"eu-fr"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithLocation(tt.location)))
			c := tu.Capability(tu.WithPlacement(tt.placement))
			c.ShardRegion = tt.shard
			got := New().Filter(context.Background(), framework.NewCycleState(), c, r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
		})
	}
}
