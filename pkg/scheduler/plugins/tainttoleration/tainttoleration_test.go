package tainttoleration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

const (
	noSchedule = platformv1alpha1.TaintEffectNoSchedule
	prefer     = platformv1alpha1.TaintEffectPreferNoSchedule
	exists     = platformv1alpha1.TolerationOpExists
	equal      = platformv1alpha1.TolerationOpEqual
)

func TestTolerates(t *testing.T) {
	taint := platformv1alpha1.Taint{Key: "msp.dev/dedicated", Value: "acme", Effect: noSchedule}
	tests := []struct {
		name string
		tol  platformv1alpha1.Toleration
		want bool
	}{
		{name: "equal key and value", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Operator: equal, Value: "acme"}, want: true},
		{name: "empty operator means equal", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Value: "acme"}, want: true},
		{name: "empty operator, other value", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Value: "other"}},
		{name: "equal, other value", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Operator: equal, Value: "other"}},
		{name: "equal, empty value", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Operator: equal}},
		{name: "exists matches any value", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Operator: exists}, want: true},
		{name: "exists, other key", tol: platformv1alpha1.Toleration{Key: "msp.dev/gpu", Operator: exists}},
		{name: "empty key with exists matches every key", tol: platformv1alpha1.Toleration{Operator: exists}, want: true},
		{name: "empty key with equal matches nothing", tol: platformv1alpha1.Toleration{Value: "acme"}},
		{name: "same effect", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Operator: exists, Effect: noSchedule}, want: true},
		{name: "other effect", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Operator: exists, Effect: prefer}},
		{name: "empty key with exists still needs the effect", tol: platformv1alpha1.Toleration{Operator: exists, Effect: prefer}},
		{name: "unknown operator", tol: platformv1alpha1.Toleration{Key: "msp.dev/dedicated", Operator: "Gt", Value: "acme"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tolerates(tt.tol, taint); got != tt.want {
				t.Errorf("Tolerates(%+v, %+v) = %v, want %v", tt.tol, taint, got, tt.want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	dedicated := platformv1alpha1.Taint{Key: "msp.dev/dedicated", Value: "acme", Effect: noSchedule}
	maintenance := platformv1alpha1.Taint{Key: "msp.dev/maintenance", Effect: noSchedule}
	soft := platformv1alpha1.Taint{Key: "msp.dev/old", Effect: prefer}
	tests := []struct {
		name        string
		taints      []platformv1alpha1.Taint
		tolerations []platformv1alpha1.Toleration
		want        *framework.Status
	}{
		{name: "no taints"},
		{name: "untolerated NoSchedule taint", taints: []platformv1alpha1.Taint{dedicated}, want: framework.NewUnschedulable("untolerated taint")},
		{name: "tolerated NoSchedule taint", taints: []platformv1alpha1.Taint{dedicated}, tolerations: []platformv1alpha1.Toleration{{Key: "msp.dev/dedicated", Value: "acme"}}},
		{
			name:        "one of two NoSchedule taints tolerated",
			taints:      []platformv1alpha1.Taint{dedicated, maintenance},
			tolerations: []platformv1alpha1.Toleration{{Key: "msp.dev/dedicated", Value: "acme"}},
			want:        framework.NewUnschedulable("untolerated taint"),
		},
		{
			name:        "both tolerated by separate tolerations",
			taints:      []platformv1alpha1.Taint{dedicated, maintenance},
			tolerations: []platformv1alpha1.Toleration{{Key: "msp.dev/maintenance", Operator: exists}, {Key: "msp.dev/dedicated", Value: "acme"}},
		},
		{name: "tolerate everything", taints: []platformv1alpha1.Taint{dedicated, maintenance}, tolerations: []platformv1alpha1.Toleration{{Operator: exists}}},
		{name: "PreferNoSchedule does not filter", taints: []platformv1alpha1.Taint{soft}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithTaints(tt.taints...)))
			c := tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{Tolerations: tt.tolerations}))
			got := New().Filter(context.Background(), framework.NewCycleState(), c, r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScore(t *testing.T) {
	soft := func(key string) platformv1alpha1.Taint {
		return platformv1alpha1.Taint{Key: key, Effect: prefer}
	}
	many := make([]platformv1alpha1.Taint, 12)
	for i := range many {
		many[i] = soft("msp.dev/t" + string(rune('a'+i)))
	}
	tests := []struct {
		name        string
		taints      []platformv1alpha1.Taint
		tolerations []platformv1alpha1.Toleration
		want        int64
	}{
		{name: "no taints", want: 100},
		{name: "one untolerated", taints: []platformv1alpha1.Taint{soft("msp.dev/a")}, want: 90},
		{name: "two untolerated", taints: []platformv1alpha1.Taint{soft("msp.dev/a"), soft("msp.dev/b")}, want: 80},
		{
			name:        "tolerated ones do not count",
			taints:      []platformv1alpha1.Taint{soft("msp.dev/a"), soft("msp.dev/b")},
			tolerations: []platformv1alpha1.Toleration{{Key: "msp.dev/a", Operator: exists}},
			want:        90,
		},
		{name: "NoSchedule taints do not count", taints: []platformv1alpha1.Taint{{Key: "msp.dev/a", Effect: noSchedule}}, want: 100},
		{name: "floored at zero", taints: many, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithTaints(tt.taints...)))
			c := tu.Capability(tu.WithPlacement(platformv1alpha1.Placement{Tolerations: tt.tolerations}))
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
