package preferredregions

import (
	"context"
	"testing"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name      string
		preferred []string
		region    string
		want      int64
	}{
		{name: "no preferences", region: "eu-de", want: 0},
		{name: "only preference", preferred: []string{"eu-de"}, region: "eu-de", want: 100},
		{name: "first of three", preferred: []string{"eu-de", "eu-fr", "eu-nl"}, region: "eu-de", want: 100},
		{name: "second of three", preferred: []string{"eu-de", "eu-fr", "eu-nl"}, region: "eu-fr", want: 66},
		{name: "third of three", preferred: []string{"eu-de", "eu-fr", "eu-nl"}, region: "eu-nl", want: 33},
		{name: "second of two", preferred: []string{"eu-de", "eu-fr"}, region: "eu-fr", want: 50},
		{name: "not preferred", preferred: []string{"eu-de", "eu-fr"}, region: "us-east", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithLocation(platformv1alpha1.Location{Region: tt.region})))
			c := tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{PreferredRegions: tt.preferred}))
			got, st := New().Score(context.Background(), framework.NewCycleState(), c, r)
			if st != nil {
				t.Fatalf("Score() status = %v", st)
			}
			if got != tt.want {
				t.Errorf("Score() = %d, want %d", got, tt.want)
			}
		})
	}
}
