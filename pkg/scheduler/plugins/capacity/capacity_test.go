package capacity

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name      string
		capacity  []string
		allocated corev1.ResourceList
		requests  corev1.ResourceList
		want      *framework.Status
	}{
		{name: "no capacity listed is unlimited", allocated: tu.Resources("capabilities", "1000"), requests: tu.Resources("capabilities", "1", "storage", "1Ti")},
		{name: "room left", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "5"), requests: tu.Resources("capabilities", "1")},
		{name: "fills up exactly", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "9"), requests: tu.Resources("capabilities", "1")},
		{name: "full", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "10"), requests: tu.Resources("capabilities", "1"), want: framework.NewUnschedulable("insufficient capacity")},
		{name: "nothing allocated yet", capacity: []string{"storage", "10Gi"}, requests: tu.Resources("storage", "10Gi")},
		{name: "request larger than the runtime", capacity: []string{"storage", "10Gi"}, requests: tu.Resources("storage", "11Gi"), want: framework.NewUnschedulable("insufficient capacity")},
		{
			name:      "units mix",
			capacity:  []string{"storage", "1Gi"},
			allocated: tu.Resources("storage", "1000Mi"),
			requests:  tu.Resources("storage", "24Mi"),
		},
		{
			name:      "units mix, one byte over",
			capacity:  []string{"storage", "1Gi"},
			allocated: tu.Resources("storage", "1000Mi"),
			requests:  tu.Resources("storage", "25165825"),
			want:      framework.NewUnschedulable("insufficient capacity"),
		},
		{
			name:      "one of two resources short",
			capacity:  []string{"capabilities", "10", "storage", "100Gi"},
			allocated: tu.Resources("capabilities", "1", "storage", "95Gi"),
			requests:  tu.Resources("capabilities", "1", "storage", "10Gi"),
			want:      framework.NewUnschedulable("insufficient capacity"),
		},
		{
			name:      "unlisted resource is not limited",
			capacity:  []string{"capabilities", "10"},
			allocated: tu.Resources("storage", "100Ti"),
			requests:  tu.Resources("capabilities", "1", "storage", "100Ti"),
		},
		{
			name:      "decimal quantities",
			capacity:  []string{"cpu", "2"},
			allocated: tu.Resources("cpu", "1500m"),
			requests:  tu.Resources("cpu", "0.5"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithCapacity(tt.capacity...)))
			if tt.allocated != nil {
				r.Allocated = tt.allocated
			}
			c := tu.Capability(func(c *framework.Capability) { c.Requests = tt.requests })
			before := r.Allocated.DeepCopy()
			got := New().Filter(context.Background(), framework.NewCycleState(), c, r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
			for name, q := range before {
				if a := r.Allocated[name]; a.Cmp(q) != 0 {
					t.Errorf("Filter() changed Allocated[%s] from %s to %s", name, q.String(), a.String())
				}
			}
		})
	}
}
