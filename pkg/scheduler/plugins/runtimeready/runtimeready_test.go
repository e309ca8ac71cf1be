package runtimeready

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	tu "github.com/msp-dev/msp/pkg/scheduler/plugins/internal/testutil"
)

func TestFilter(t *testing.T) {
	noHeartbeat := func(rt *platformv1alpha1.ServiceRuntime) { rt.Status.LastHeartbeatTime = nil }
	noConditions := func(rt *platformv1alpha1.ServiceRuntime) { rt.Status.Conditions = nil }
	tests := []struct {
		name    string
		timeout time.Duration
		opts    []tu.RuntimeOption
		want    *framework.Status
	}{
		{name: "ready with a fresh heartbeat", timeout: time.Minute},
		{name: "heartbeat exactly at the timeout", timeout: time.Minute, opts: []tu.RuntimeOption{tu.WithHeartbeat(tu.Now.Add(-time.Minute))}},
		{name: "heartbeat past the timeout", timeout: time.Minute, opts: []tu.RuntimeOption{tu.WithHeartbeat(tu.Now.Add(-time.Minute - time.Second))}, want: framework.NewUnschedulable("heartbeat too old")},
		{name: "no heartbeat", timeout: time.Minute, opts: []tu.RuntimeOption{noHeartbeat}, want: framework.NewUnschedulable("heartbeat too old")},
		{name: "no timeout ignores an old heartbeat", opts: []tu.RuntimeOption{tu.WithHeartbeat(tu.Now.Add(-24 * time.Hour))}},
		{name: "no timeout ignores a missing heartbeat", opts: []tu.RuntimeOption{noHeartbeat}},
		{name: "ready false", timeout: time.Minute, opts: []tu.RuntimeOption{tu.WithReady(metav1.ConditionFalse)}, want: framework.NewUnschedulable("not ready")},
		{name: "ready unknown", timeout: time.Minute, opts: []tu.RuntimeOption{tu.WithReady(metav1.ConditionUnknown)}, want: framework.NewUnschedulable("not ready")},
		{name: "no ready condition", opts: []tu.RuntimeOption{noConditions}, want: framework.NewUnschedulable("not ready")},
		{name: "not ready wins over an old heartbeat", timeout: time.Minute, opts: []tu.RuntimeOption{tu.WithReady(metav1.ConditionFalse), noHeartbeat}, want: framework.NewUnschedulable("not ready")},
		{name: "cordoned", timeout: time.Minute, opts: []tu.RuntimeOption{tu.Cordoned()}, want: framework.NewUnschedulable("cordoned")},
		{name: "cordoned wins over not ready", timeout: time.Minute, opts: []tu.RuntimeOption{tu.Cordoned(), noConditions, noHeartbeat}, want: framework.NewUnschedulable("cordoned")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tt.opts...))
			got := New(tu.Clock, tt.timeout).Filter(context.Background(), framework.NewCycleState(), tu.Capability(), r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
		})
	}
}
