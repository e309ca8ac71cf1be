// Package runtimeready filters out runtimes that should not take new capabilities now:
// cordoned ones, ones that are not Ready, and ones whose servicelet stopped reporting.
package runtimeready

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "runtimeready"

// Reasons why a runtime does not fit.
const (
	// ReasonCordoned: spec.unschedulable is set.
	ReasonCordoned = "cordoned"
	// ReasonNotReady: the Ready condition is missing, False or Unknown.
	ReasonNotReady = "not ready"
	// ReasonHeartbeatTooOld: Ready, but the servicelet has not reported in time.
	ReasonHeartbeatTooOld = "heartbeat too old"
)

// Plugin is the runtimeready filter.
type Plugin struct {
	now     func() time.Time
	timeout time.Duration
}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New returns the plugin. now is its clock (nil means time.Now). A runtime's heartbeat
// may be at most heartbeatTimeout old; 0 trusts the Ready condition alone, for when
// something else already turns Ready off on a missed heartbeat.
func New(now func() time.Time, heartbeatTimeout time.Duration) *Plugin {
	if now == nil {
		now = time.Now
	}
	return &Plugin{now: now, timeout: heartbeatTimeout}
}

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Filter lets c onto r only if r is not cordoned, is Ready, and (with a timeout) has a
// fresh heartbeat. The heartbeat is checked even when Ready is True because Ready is
// only as current as whoever last wrote it.
func (p *Plugin) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	rt := r.Runtime
	if rt.Spec.Unschedulable {
		return framework.NewUnschedulable(ReasonCordoned)
	}
	if !meta.IsStatusConditionTrue(rt.Status.Conditions, platformv1alpha1.ConditionReady) {
		return framework.NewUnschedulable(ReasonNotReady)
	}
	if p.timeout > 0 {
		hb := rt.Status.LastHeartbeatTime
		if hb == nil || p.now().Sub(hb.Time) > p.timeout {
			return framework.NewUnschedulable(ReasonHeartbeatTooOld)
		}
	}
	return nil
}
