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
		reported  corev1.ResourceList // status.capacity, what the runtime measured
		allocated corev1.ResourceList
		requests  corev1.ResourceList
		named     []corev1.ResourceName
		want      *framework.Status
	}{
		{name: "no capacity listed is unlimited", allocated: tu.Resources("capabilities", "1000"), requests: tu.Resources("capabilities", "1", "storage", "1Ti")},
		{name: "room left", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "5"), requests: tu.Resources("capabilities", "1")},
		{name: "fills up exactly", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "9"), requests: tu.Resources("capabilities", "1")},
		{name: "full", capacity: []string{"capabilities", "10"}, allocated: tu.Resources("capabilities", "10"), requests: tu.Resources("capabilities", "1"), want: framework.NewUnschedulable("insufficient capabilities")},
		{name: "nothing allocated yet", capacity: []string{"storage", "10Gi"}, requests: tu.Resources("storage", "10Gi")},
		{name: "request larger than the runtime", capacity: []string{"storage", "10Gi"}, requests: tu.Resources("storage", "11Gi"), want: framework.NewUnschedulable("insufficient storage")},
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
			want:      framework.NewUnschedulable("insufficient storage"),
		},
		{
			name:      "one of two resources short",
			capacity:  []string{"capabilities", "10", "storage", "100Gi"},
			allocated: tu.Resources("capabilities", "1", "storage", "95Gi"),
			requests:  tu.Resources("capabilities", "1", "storage", "10Gi"),
			want:      framework.NewUnschedulable("insufficient storage"),
		},
		{
			name:     "two resources short: the lesser name is the reason, whatever the map order",
			capacity: []string{"cpu", "1", "memory", "1Gi", "storage", "1Gi"},
			requests: tu.Resources("storage", "2Gi", "memory", "2Gi", "cpu", "500m"),
			want:     framework.NewUnschedulable("insufficient memory"),
		},
		{
			name:      "unlisted resource is not limited",
			capacity:  []string{"capabilities", "10"},
			allocated: tu.Resources("storage", "100Ti"),
			requests:  tu.Resources("capabilities", "1", "storage", "100Ti"),
		},
		{
			// A PostgresDatabase's size counts as storage; a provider that does not meter
			// storage does not list it.
			name:     "kind's own request for an unlisted resource is not limited",
			capacity: []string{"capabilities", "10"},
			requests: tu.Resources("capabilities", "1", "storage", "1Ti"),
		},
		{
			name:     "resource the tenant named is not offered",
			capacity: []string{"capabilities", "10"},
			requests: tu.Resources("capabilities", "1", "gpu", "1"),
			named:    []corev1.ResourceName{"gpu"},
			want:     framework.NewUnschedulable("resource not offered"),
		},
		{
			name:     "resource the tenant named is not offered by a runtime without capacity",
			requests: tu.Resources("capabilities", "1", "gpu", "1"),
			named:    []corev1.ResourceName{"gpu"},
			want:     framework.NewUnschedulable("resource not offered"),
		},
		{
			name:     "storage the tenant named is not offered by a runtime that does not meter it",
			capacity: []string{"capabilities", "10"},
			requests: tu.Resources("capabilities", "1", "storage", "1Ti"),
			named:    []corev1.ResourceName{"storage"},
			want:     framework.NewUnschedulable("resource not offered"),
		},
		{
			name:     "resource the tenant named is offered",
			capacity: []string{"capabilities", "10", "gpu", "2"},
			requests: tu.Resources("capabilities", "1", "gpu", "1"),
			named:    []corev1.ResourceName{"gpu"},
		},
		{
			name:      "offered but full",
			capacity:  []string{"gpu", "2"},
			allocated: tu.Resources("gpu", "2"),
			requests:  tu.Resources("capabilities", "1", "gpu", "1"),
			named:     []corev1.ResourceName{"gpu"},
			want:      framework.NewUnschedulable("insufficient gpu"),
		},
		{
			name:     "offered with zero capacity",
			capacity: []string{"gpu", "0"},
			requests: tu.Resources("capabilities", "1", "gpu", "1"),
			named:    []corev1.ResourceName{"gpu"},
			want:     framework.NewUnschedulable("insufficient gpu"),
		},
		{
			name:      "not offered is reported before insufficient capacity",
			capacity:  []string{"capabilities", "1", "memory", "1Gi"},
			allocated: tu.Resources("capabilities", "1"),
			requests:  tu.Resources("capabilities", "1", "memory", "1Gi", "gpu", "1"),
			named:     []corev1.ResourceName{"gpu", "memory"},
			want:      framework.NewUnschedulable("resource not offered"),
		},
		{
			name:     "capabilities named by hand does not need listing",
			requests: tu.Resources("capabilities", "1"),
			named:    []corev1.ResourceName{"capabilities"},
		},
		{
			name:      "negative request does not make room",
			capacity:  []string{"capabilities", "10", "storage", "10Gi"},
			allocated: tu.Resources("capabilities", "10", "storage", "5Gi"),
			requests:  tu.Resources("capabilities", "1", "storage", "-5Gi"),
			want:      framework.NewUnschedulable("insufficient capabilities"),
		},
		{
			name:      "negative request is ignored, not subtracted",
			capacity:  []string{"storage", "10Gi"},
			allocated: tu.Resources("storage", "10Gi"),
			requests:  tu.Resources("capabilities", "1", "storage", "-1Gi"),
		},
		{
			name:      "what the runtime reports counts instead of what it registered",
			capacity:  []string{"cpu", "100", "capabilities", "10"},
			reported:  tu.Resources("cpu", "2"),
			allocated: tu.Resources("cpu", "1500m"),
			requests:  tu.Resources("capabilities", "1", "cpu", "1"),
			want:      framework.NewUnschedulable("insufficient cpu"),
		},
		{
			name:      "what the runtime reports may be more",
			capacity:  []string{"cpu", "1"},
			reported:  tu.Resources("cpu", "8"),
			allocated: tu.Resources("cpu", "1"),
			requests:  tu.Resources("capabilities", "1", "cpu", "4"),
		},
		{
			name:     "a reported resource is offered",
			reported: tu.Resources("memory", "16Gi"),
			requests: tu.Resources("capabilities", "1", "memory", "1Gi"),
			named:    []corev1.ResourceName{"memory"},
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
			r.Runtime.Status.Capacity = tt.reported
			if tt.allocated != nil {
				r.Allocated = tt.allocated
			}
			c := tu.Capability(func(c *framework.Capability) { c.Requests, c.Named = tt.requests, tt.named })
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

// The tenant's spec as the scheduler reads it: the kind's own request (size as storage)
// is a floor, and a resource the tenant names must be offered.
func TestFilterFromSpec(t *testing.T) {
	size1Ti := tu.Resources("storage", "1Ti")
	tests := []struct {
		name      string
		capacity  []string
		resources []string
		want      *framework.Status
	}{
		{
			name:      "a tenant cannot lower the kind's own request",
			capacity:  []string{"capabilities", "10", "storage", "20Gi"},
			resources: []string{"storage", "1Mi"},
			want:      framework.NewUnschedulable("insufficient storage"),
		},
		{
			name:      "a negative request does not lower it either",
			capacity:  []string{"capabilities", "10", "storage", "20Gi"},
			resources: []string{"storage", "-1Ti"},
			want:      framework.NewUnschedulable("insufficient storage"),
		},
		{
			name:     "the kind's own request fits where there is room",
			capacity: []string{"capabilities", "10", "storage", "2Ti"},
		},
		{
			name:     "the kind's own request is not limited where storage is not metered",
			capacity: []string{"capabilities", "10"},
		},
		{
			name:      "storage the tenant names must be metered",
			capacity:  []string{"capabilities", "10"},
			resources: []string{"storage", "1Mi"},
			want:      framework.NewUnschedulable("resource not offered"),
		},
		{
			name:      "a non-positive entry names nothing",
			capacity:  []string{"capabilities", "10"},
			resources: []string{"gpu", "0"},
		},
		{
			name:      "capabilities in spec.resources names nothing",
			capacity:  []string{"storage", "2Ti"},
			resources: []string{"capabilities", "5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithCapacity(tt.capacity...)))
			c := tu.Capability(tu.WithResources(tt.resources...))
			c.Requests = framework.RequestsOf(&c.Spec, size1Ti)
			got := New().Filter(context.Background(), framework.NewCycleState(), c, r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
		})
	}
}
