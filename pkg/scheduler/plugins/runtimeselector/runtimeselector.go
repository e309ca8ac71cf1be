// Package runtimeselector filters runtimes by the capability's placement.runtimeSelector,
// matched against the runtimes' metadata labels.
package runtimeselector

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "runtimeselector"

// ReasonLabelsDoNotMatch is why a runtime that the selector does not select does not fit.
const ReasonLabelsDoNotMatch = "labels do not match"

// ReasonInvalidSelector is why no runtime fits a capability whose selector cannot be parsed.
const ReasonInvalidSelector = "invalid runtime selector"

// Plugin is the runtimeselector filter.
type Plugin struct{}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// parsed is the selector of the cycle's capability, parsed once per cycle rather than
// once per runtime.
type parsed struct {
	selector labels.Selector
	err      error
}

// Filter lets c onto r only if c's runtime selector, if any, selects r's labels. An
// invalid selector fits no runtime: the tenant reads "invalid runtime selector" and can
// fix it, rather than the scheduler retrying an error forever.
func (*Plugin) Filter(_ context.Context, state *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	ls := c.Spec.Placement.RuntimeSelector
	if ls == nil {
		return nil
	}
	p := selectorOf(state, ls)
	if p.err != nil {
		return framework.NewUnschedulable(ReasonInvalidSelector)
	}
	if !p.selector.Matches(labels.Set(r.Runtime.Labels)) {
		return framework.NewUnschedulable(ReasonLabelsDoNotMatch)
	}
	return nil
}

func selectorOf(state *framework.CycleState, ls *metav1.LabelSelector) *parsed {
	if v, ok := state.Read(Name); ok {
		if p, ok := v.(*parsed); ok {
			return p
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		err = fmt.Errorf("invalid placement.runtimeSelector: %w", err)
	}
	p := &parsed{selector: sel, err: err}
	state.Write(Name, p)
	return p
}
