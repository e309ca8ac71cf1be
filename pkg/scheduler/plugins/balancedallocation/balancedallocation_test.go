package balancedallocation

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
		{name: "no capacity", requests: tu.Resources("capabilities", "1"), want: 100},
		{name: "one resource", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "8"), requests: tu.Resources("capabilities", "1"), want: 100},
		{
			name:     "one resource requested of two listed",
			capacity: []string{"capabilities", "10", "storage", "100Gi"},
			requests: tu.Resources("capabilities", "1"),
			want:     100,
		},
		{
			name:      "evenly used",
			capacity:  []string{"capabilities", "10", "storage", "100Gi"},
			allocated: tu.Resources("capabilities", "4", "storage", "40Gi"),
			requests:  tu.Resources("capabilities", "1", "storage", "10Gi"),
			want:      100,
		},
		{
			name:      "unevenly used",
			capacity:  []string{"capabilities", "10", "storage", "100Gi"},
			allocated: tu.Resources("capabilities", "1", "storage", "70Gi"),
			requests:  tu.Resources("capabilities", "1", "storage", "10Gi"),
			want:      40, // 1 - (0.8 - 0.2)
		},
		{
			name:      "max and min of three",
			capacity:  []string{"capabilities", "10", "storage", "100Gi", "cpu", "10"},
			allocated: tu.Resources("capabilities", "2", "storage", "50Gi", "cpu", "6"),
			requests:  tu.Resources("capabilities", "1", "storage", "10Gi", "cpu", "1"),
			want:      60, // 1 - (0.7 - 0.3)
		},
		{
			name:     "one full, one empty",
			capacity: []string{"capabilities", "1", "storage", "100Ti"},
			requests: tu.Resources("capabilities", "1", "storage", "1"),
			want:     0,
		},
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
