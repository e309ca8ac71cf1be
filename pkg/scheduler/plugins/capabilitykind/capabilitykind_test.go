package capabilitykind

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestFilter(t *testing.T) {
	other := schema.GroupKind{Group: "redis.msp.dev", Kind: "RedisCache"}
	tests := []struct {
		name  string
		kinds []schema.GroupKind
		want  *framework.Status
	}{
		{name: "the only kind", kinds: []schema.GroupKind{tu.Kind}},
		{name: "one of several kinds", kinds: []schema.GroupKind{other, tu.Kind}},
		{name: "another kind", kinds: []schema.GroupKind{other}, want: framework.NewUnschedulable("does not host this kind")},
		{name: "same kind in another group", kinds: []schema.GroupKind{{Group: "pg.example.com", Kind: tu.Kind.Kind}}, want: framework.NewUnschedulable("does not host this kind")},
		{name: "same group, another kind", kinds: []schema.GroupKind{{Group: tu.Kind.Group, Kind: "PostgresServer"}}, want: framework.NewUnschedulable("does not host this kind")},
		{name: "no kinds", want: framework.NewUnschedulable("does not host this kind")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tu.WithKinds(tt.kinds...)))
			got := New().Filter(context.Background(), framework.NewCycleState(), tu.Capability(), r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
		})
	}
}
