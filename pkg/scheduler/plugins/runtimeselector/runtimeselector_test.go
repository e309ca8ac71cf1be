package runtimeselector

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name     string
		selector *metav1.LabelSelector
		labels   map[string]string
		want     *framework.Status
	}{
		{name: "no selector", labels: map[string]string{"tier": "gold"}},
		{name: "no selector, no labels"},
		{name: "empty selector selects everything", selector: &metav1.LabelSelector{}},
		{name: "matching labels", selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}, labels: map[string]string{"tier": "gold", "env": "prod"}},
		{name: "other value", selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}, labels: map[string]string{"tier": "silver"}, want: framework.NewUnschedulable("labels do not match")},
		{name: "no labels", selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}, want: framework.NewUnschedulable("labels do not match")},
		{
			name: "expression matches",
			selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold", "silver"}},
				{Key: "shared", Operator: metav1.LabelSelectorOpDoesNotExist},
			}},
			labels: map[string]string{"tier": "silver"},
		},
		{
			name: "expression does not match",
			selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "shared", Operator: metav1.LabelSelectorOpDoesNotExist},
			}},
			labels: map[string]string{"shared": "true"},
			want:   framework.NewUnschedulable("labels do not match"),
		},
		{
			name: "an invalid selector fits nothing, with a reason the tenant can act on",
			selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "tier", Operator: metav1.LabelSelectorOpIn},
			}},
			want: framework.NewUnschedulable("invalid runtime selector"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithLabels(tt.labels)))
			c := tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{RuntimeSelector: tt.selector}))
			got := New().Filter(context.Background(), framework.NewCycleState(), c, r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
		})
	}
}

// The selector is parsed once per cycle, so a cycle judges every runtime by the same one.
func TestFilterParsesOncePerCycle(t *testing.T) {
	p, state := New(), framework.NewCycleState()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
	c := tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{RuntimeSelector: sel}))
	gold := tu.Info(tu.Runtime("gold", tu.WithLabels(map[string]string{"tier": "gold"})))
	silver := tu.Info(tu.Runtime("silver", tu.WithLabels(map[string]string{"tier": "silver"})))

	if st := p.Filter(context.Background(), state, c, gold); st != nil {
		t.Fatalf("Filter(gold) = %v, want nil", st)
	}
	if _, ok := state.Read(Name); !ok {
		t.Fatalf("no parsed selector in the cycle state")
	}
	// Changing the selector mid-cycle has no effect: the parsed one is used.
	sel.MatchLabels["tier"] = "silver"
	if st := p.Filter(context.Background(), state, c, silver); st.IsSuccess() {
		t.Errorf("Filter(silver) = success, want the selector parsed before the change")
	}
	if st := p.Filter(context.Background(), framework.NewCycleState(), c, silver); !st.IsSuccess() {
		t.Errorf("Filter(silver) in a new cycle = %v, want success", st)
	}
}
