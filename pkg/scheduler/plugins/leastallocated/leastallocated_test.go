package leastallocated

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name      string
		capacity  []string
		allocated corev1.ResourceList
		requests  corev1.ResourceList
		want      int64
	}{
		{name: "no capacity is neutral", requests: tu.Resources("capabilities", "1"), want: 50},
		{name: "capacity of other resources is neutral", capacity: []string{"storage", "10Gi"}, requests: tu.Resources("capabilities", "1"), want: 50},
		{name: "empty runtime", capacity: []string{"capabilities", "10"}, requests: tu.Resources("capabilities", "1"), want: 90},
		{name: "half full", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "4"), requests: tu.Resources("capabilities", "1"), want: 50},
		{name: "full after placing", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "9"), requests: tu.Resources("capabilities", "1"), want: 0},
		{name: "over-allocated is clamped", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "20"), requests: tu.Resources("capabilities", "1"), want: 0},
		{
			name:      "average over resources",
			capacity:  []string{"capabilities", "10", "storage", "100Gi"},
			allocated: tu.Resources("capabilities", "1", "storage", "10Gi"),
			requests:  tu.Resources("capabilities", "1", "storage", "50Gi"),
			want:      60, // (0.8 + 0.4) / 2
		},
		{name: "rounds", capacity: []string{"capabilities", "3"}, requests: tu.Resources("capabilities", "1"), want: 67},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithCapacity(tt.capacity...)))
			if tt.allocated != nil {
				r.Allocated = tt.allocated
			}
			c := tu.Capability(func(c *framework.Capability) { c.Requests = tt.requests })
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
