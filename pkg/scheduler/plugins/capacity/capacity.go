// Package capacity filters out runtimes without room for what the capability requests.
package capacity

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "capacity"

// Reasons why a runtime does not fit, in the order they are checked.
const (
	// ReasonResourceNotOffered: the tenant named a resource in spec.resources that the
	// runtime's capacity does not list.
	ReasonResourceNotOffered = "resource not offered"
	// ReasonInsufficientPrefix starts the reason a runtime has no room left for one
	// resource: "insufficient cpu", as kube-scheduler says of a node.
	ReasonInsufficientPrefix = "insufficient "
)

// ReasonInsufficient is the reason a runtime has no room left for the resource name.
func ReasonInsufficient(name corev1.ResourceName) string {
	return ReasonInsufficientPrefix + string(name)
}

// Plugin is the capacity filter.
type Plugin struct{}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Filter lets c onto r only if r offers every resource the tenant asked for and has
// room for what c requests. Requests come from two places, and a resource r's capacity
// does not list means something different for each:
//
//   - A resource the tenant names in spec.resources (c.Named; "capabilities" aside) must
//     be listed by r, as a Kubernetes node without an extended resource does not take a
//     pod that requests it: an unlisted resource is not offered there, and r does not
//     fit (ReasonResourceNotOffered).
//   - The kind's own requests (a PostgresDatabase's size as "storage") and the one
//     "capabilities" every capability takes count only where r lists the resource: a
//     provider that does not meter storage does not list it, and is not limited by it.
//
// For every resource c requests that r lists, what is allocated plus the request must
// stay within the capacity; the first resource short, by name, is the reason
// (ReasonInsufficient: "insufficient cpu"). Requests that are not positive are ignored.
func (*Plugin) Filter(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	capacity := r.Runtime.EffectiveCapacity()
	for _, name := range c.Named {
		if name == platformv1alpha1.ResourceCapabilities {
			continue // every capability takes one; a runtime that lists none is unlimited
		}
		if _, ok := capacity[name]; !ok {
			return framework.NewUnschedulable(ReasonResourceNotOffered)
		}
	}
	// The short resource with the least name is the reason, so that the message does
	// not depend on map order; no slice is built or sorted per runtime.
	var short corev1.ResourceName
	for name, req := range c.Requests {
		limit, ok := capacity[name]
		if !ok || !framework.Positive(req) || (short != "" && name > short) {
			continue
		}
		// Copy: Add may write through to a Quantity's shared decimal.
		used := r.Allocated[name].DeepCopy()
		used.Add(req)
		if used.Cmp(limit) > 0 {
			short = name
		}
	}
	if short != "" {
		return framework.NewUnschedulable(ReasonInsufficient(short))
	}
	return nil
}
