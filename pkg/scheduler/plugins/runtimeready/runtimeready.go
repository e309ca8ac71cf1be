// Package runtimeready filters out runtimes that should not take new capabilities now:
// ones being removed, cordoned ones, ones that are not Ready, and ones whose servicelet
// stopped reporting.
//
// A heartbeat is judged against the others: when every runtime's heartbeat is late at
// once, it is the control plane that lags (kcp's queues are long, a watch is behind), not
// every servicelet that failed at the same moment. Kubernetes' node lifecycle controller
// reasons the same way on a full disruption. See Late.
package runtimeready

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "runtimeready"

// Reasons why a runtime does not fit.
const (
	// ReasonBeingRemoved: the runtime has a deletionTimestamp; it keeps what it hosts
	// until that is deleted, and takes nothing new.
	ReasonBeingRemoved = "runtime is being removed"
	// ReasonCordoned: spec.unschedulable is set.
	ReasonCordoned = "cordoned"
	// ReasonNotReady: the Ready condition is missing, False or Unknown.
	ReasonNotReady = "not ready"
	// ReasonHeartbeatTooOld: Ready, but the servicelet has not reported in time.
	ReasonHeartbeatTooOld = "heartbeat too old"
)

// DefaultHeartbeatTimeout is how old a runtime's heartbeat may be: two and a half of the
// servicelet's default heartbeat intervals (1m), so that one missed heartbeat and a slow
// write do not take a runtime out.
const DefaultHeartbeatTimeout = 150 * time.Second

// DefaultLagTolerance is how long a lagging control plane is blamed for late heartbeats
// before the runtimes are (see Late).
const DefaultLagTolerance = 5 * time.Minute

// LagTolerance applies the default of an option: 0 is DefaultLagTolerance, negative is
// never (0).
func LagTolerance(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultLagTolerance
	case d < 0:
		return 0
	}
	return d
}

// Late reports whether the servicelet that last reported at hb has gone silent at now.
// newest is the freshest heartbeat of any runtime the caller knows (zero: unknown).
//
// A heartbeat older than timeout is late, unless even newest is older than timeout:
// then every runtime is late alike, the control plane is lagging, and hb is measured
// against newest instead of now — for at most tolerance past newest, after which all of
// them are late (every servicelet may really have stopped). A runtime that fell silent
// among others that report is late after timeout, as always.
func Late(hb *metav1.Time, newest, now time.Time, timeout, tolerance time.Duration) bool {
	if hb == nil {
		return true
	}
	if now.Sub(hb.Time) <= timeout {
		return false
	}
	if newest.IsZero() || now.Sub(newest) <= timeout || now.Sub(newest) > tolerance {
		return true
	}
	return newest.Sub(hb.Time) > timeout
}

// Plugin is the runtimeready filter.
type Plugin struct {
	now       func() time.Time
	timeout   time.Duration
	tolerance time.Duration
}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New returns the plugin. now is its clock (nil means time.Now). A runtime's heartbeat
// may be at most heartbeatTimeout old; 0 trusts the Ready condition alone, for when
// something else already turns Ready off on a missed heartbeat. lagTolerance bounds how
// long a lagging control plane excuses late heartbeats (see Late); 0 never excuses them.
func New(now func() time.Time, heartbeatTimeout, lagTolerance time.Duration) *Plugin {
	if now == nil {
		now = time.Now
	}
	return &Plugin{now: now, timeout: heartbeatTimeout, tolerance: lagTolerance}
}

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Filter lets c onto r only if r is not being removed, is not cordoned, is Ready, and
// (with a timeout) has a fresh heartbeat. The heartbeat is checked even when Ready is
// True because Ready is only as current as whoever last wrote it. Removal comes first:
// the runtime manager cordons a runtime before it removes it, and "being removed" is
// what the tenant should read then.
func (p *Plugin) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	rt := r.Runtime
	if rt.DeletionTimestamp != nil {
		return framework.NewUnschedulable(ReasonBeingRemoved)
	}
	if rt.Spec.Unschedulable {
		return framework.NewUnschedulable(ReasonCordoned)
	}
	if !meta.IsStatusConditionTrue(rt.Status.Conditions, platformv1alpha1.ConditionReady) {
		return framework.NewUnschedulable(ReasonNotReady)
	}
	if p.timeout > 0 {
		if Late(rt.Status.LastHeartbeatTime, r.NewestHeartbeat, p.now(), p.timeout, p.tolerance) {
			return framework.NewUnschedulable(ReasonHeartbeatTooOld)
		}
	}
	return nil
}
