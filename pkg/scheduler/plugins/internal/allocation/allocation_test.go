package allocation

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestUsedFractions(t *testing.T) {
	tests := []struct {
		name      string
		capacity  []string
		allocated corev1.ResourceList
		requests  corev1.ResourceList
		want      []float64
	}{
		{name: "no capacity", requests: tu.Resources("capabilities", "1"), want: []float64{}},
		{name: "listed but not requested", capacity: []string{"storage", "10Gi"}, requests: tu.Resources("capabilities", "1"), want: []float64{}},
		{name: "empty runtime", capacity: []string{"capabilities", "4"}, requests: tu.Resources("capabilities", "1"), want: []float64{0.25}},
		{
			name:      "in name order",
			capacity:  []string{"storage", "100Gi", "capabilities", "10", "cpu", "4"},
			allocated: tu.Resources("capabilities", "4", "storage", "40Gi", "cpu", "1"),
			requests:  tu.Resources("storage", "10Gi", "capabilities", "1", "cpu", "1"),
			want:      []float64{0.5, 0.5, 0.5},
		},
		{name: "over-allocated counts as full", capacity: []string{"capabilities", "2"}, allocated: tu.Resources("capabilities", "5"), requests: tu.Resources("capabilities", "1"), want: []float64{1}},
		{name: "zero capacity counts as full", capacity: []string{"capabilities", "0"}, requests: tu.Resources("capabilities", "1"), want: []float64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithCapacity(tt.capacity...)))
			if tt.allocated != nil {
				r.Allocated = tt.allocated
			}
			c := tu.Capability(func(c *framework.Capability) { c.Requests = tt.requests })
			if diff := cmp.Diff(tt.want, UsedFractions(c, r)); diff != "" {
				t.Errorf("UsedFractions() (-want +got):\n%s", diff)
			}
		})
	}
}
