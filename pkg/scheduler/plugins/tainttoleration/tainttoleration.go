// Package tainttoleration keeps capabilities off runtimes with taints they do not
// tolerate: NoSchedule taints filter a runtime out, PreferNoSchedule taints lower its
// score.
package tainttoleration

import (
	"context"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "tainttoleration"

// ReasonUntoleratedTaint is why a runtime with a NoSchedule taint that the capability
// does not tolerate does not fit.
const ReasonUntoleratedTaint = "untolerated taint"

// penalty is what each untolerated PreferNoSchedule taint takes off the score.
const penalty = 10

// Plugin is the tainttoleration filter and score.
type Plugin struct{}

var (
	_ framework.FilterPlugin = (*Plugin)(nil)
	_ framework.ScorePlugin  = (*Plugin)(nil)
)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Filter lets c onto r only if c tolerates every NoSchedule taint of r.
func (*Plugin) Filter(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	if untolerated(c, r, platformv1alpha1.TaintEffectNoSchedule) > 0 {
		return framework.NewUnschedulable(ReasonUntoleratedTaint)
	}
	return nil
}

// Score is MaxScore less 10 for each PreferNoSchedule taint of r that c does not
// tolerate, and never below 0.
func (*Plugin) Score(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) (int64, *framework.Status) {
	n := untolerated(c, r, platformv1alpha1.TaintEffectPreferNoSchedule)
	return max(0, framework.MaxScore-penalty*int64(n)), nil
}

// untolerated counts r's taints with the given effect that c does not tolerate.
func untolerated(c *framework.Capability, r *framework.RuntimeInfo, effect platformv1alpha1.TaintEffect) int {
	n := 0
	for _, t := range r.Runtime.Spec.Taints {
		if t.Effect == effect && !tolerated(c.Spec.Placement.Tolerations, t) {
			n++
		}
	}
	return n
}

func tolerated(tols []platformv1alpha1.Toleration, t platformv1alpha1.Taint) bool {
	for _, tol := range tols {
		if Tolerates(tol, t) {
			return true
		}
	}
	return false
}

// Tolerates reports whether tol matches t, as in Kubernetes: an empty effect matches
// every effect, an empty key with operator Exists matches every key, Exists matches any
// value and Equal (the default) only the same value.
func Tolerates(tol platformv1alpha1.Toleration, t platformv1alpha1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key == "" && tol.Operator == platformv1alpha1.TolerationOpExists {
		return true
	}
	if tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case platformv1alpha1.TolerationOpExists:
		return true
	case "", platformv1alpha1.TolerationOpEqual:
		return tol.Value == t.Value
	default:
		return false // an operator we do not know tolerates nothing
	}
}
