// Package capacity filters out runtimes without room for what the capability requests.
package capacity

import (
	"context"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "capacity"

// ReasonInsufficientCapacity is why a runtime without room for a request does not fit.
const ReasonInsufficientCapacity = "insufficient capacity"

// Plugin is the capacity filter.
type Plugin struct{}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Filter lets c onto r only if, for every resource c requests that r's capacity lists,
// what is allocated plus the request stays within the capacity. A resource that r does
// not list is not limited there.
func (*Plugin) Filter(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	for name, req := range c.Requests {
		limit, ok := r.Runtime.Spec.Capacity[name]
		if !ok {
			continue
		}
		// Copy: Add may write through to a Quantity's shared decimal.
		used := r.Allocated[name].DeepCopy()
		used.Add(req)
		if used.Cmp(limit) > 0 {
			return framework.NewUnschedulable(ReasonInsufficientCapacity)
		}
	}
	return nil
}
