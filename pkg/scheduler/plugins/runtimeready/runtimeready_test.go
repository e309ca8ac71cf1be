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
	removing := func(rt *platformv1alpha1.ServiceRuntime) {
		rt.DeletionTimestamp = &metav1.Time{Time: tu.Now}
		rt.Finalizers = []string{platformv1alpha1.FinalizerHostedCapabilities}
	}
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
		{name: "being removed", timeout: time.Minute, opts: []tu.RuntimeOption{removing}, want: framework.NewUnschedulable("runtime is being removed")},
		{name: "being removed wins over cordoned and not ready", timeout: time.Minute, opts: []tu.RuntimeOption{removing, tu.Cordoned(), noConditions}, want: framework.NewUnschedulable("runtime is being removed")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tu.Info(tu.Runtime("rt", tt.opts...))
			got := New(tu.Clock, tt.timeout, 0).Filter(context.Background(), framework.NewCycleState(), tu.Capability(), r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLate(t *testing.T) {
	now := tu.Now
	const timeout, tolerance = 40 * time.Second, 5 * time.Minute
	at := func(ago time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-ago)} }
	tests := []struct {
		name      string
		hb        *metav1.Time
		newest    time.Time
		tolerance time.Duration
		want      bool
	}{
		{name: "fresh", hb: at(10 * time.Second), newest: now.Add(-time.Second), tolerance: tolerance},
		{name: "never reported", hb: nil, newest: now, tolerance: tolerance, want: true},
		{name: "silent among runtimes that report", hb: at(41 * time.Second), newest: now.Add(-2 * time.Second), tolerance: tolerance, want: true},
		{name: "newest unknown", hb: at(41 * time.Second), tolerance: tolerance, want: true},
		{name: "all late alike: kcp lags", hb: at(90 * time.Second), newest: now.Add(-80 * time.Second), tolerance: tolerance},
		{name: "all late, but this one far behind the others", hb: at(3 * time.Minute), newest: now.Add(-80 * time.Second), tolerance: tolerance, want: true},
		{name: "all late for longer than the tolerance", hb: at(6 * time.Minute), newest: now.Add(-6 * time.Minute), tolerance: tolerance, want: true},
		{name: "no tolerance: late is late", hb: at(90 * time.Second), newest: now.Add(-80 * time.Second), want: true},
		{name: "the only runtime, silent within the tolerance", hb: at(2 * time.Minute), newest: now.Add(-2 * time.Minute), tolerance: tolerance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Late(tt.hb, tt.newest, now, timeout, tt.tolerance); got != tt.want {
				t.Errorf("Late() = %v, want %v", got, tt.want)
			}
		})
	}
}

// The filter measures a late heartbeat against the freshest one of the snapshot.
func TestFilterBlamesALaggingControlPlane(t *testing.T) {
	p := New(tu.Clock, 40*time.Second, 5*time.Minute)
	lagging := tu.Info(tu.Runtime("rt", tu.WithHeartbeat(tu.Now.Add(-100*time.Second))))
	lagging.NewestHeartbeat = tu.Now.Add(-95 * time.Second)
	if st := p.Filter(context.Background(), framework.NewCycleState(), tu.Capability(), lagging); !st.IsSuccess() {
		t.Errorf("every runtime late alike: Filter() = %v, want success", st)
	}
	silent := tu.Info(tu.Runtime("rt", tu.WithHeartbeat(tu.Now.Add(-100*time.Second))))
	silent.NewestHeartbeat = tu.Now.Add(-5 * time.Second)
	want := framework.NewUnschedulable(ReasonHeartbeatTooOld)
	if diff := cmp.Diff(want, p.Filter(context.Background(), framework.NewCycleState(), tu.Capability(), silent)); diff != "" {
		t.Errorf("one silent runtime among fresh ones (-want +got):\n%s", diff)
	}
}
