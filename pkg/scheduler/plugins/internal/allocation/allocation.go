// Package allocation computes how full a runtime would be with a capability on it, for
// the score plugins that weigh load.
package allocation

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// UsedFractions returns, for each resource that c requests and r's capacity lists, the
// fraction of the capacity in use once c is placed: (allocated + request) / capacity,
// within [0, 1]. Resources r does not list are unlimited and so have no fraction. The
// fractions are in resource name order, so that float sums over them do not depend on
// map order and a snapshot always scores the same.
func UsedFractions(c *framework.Capability, r *framework.RuntimeInfo) []float64 {
	capacity := r.Runtime.EffectiveCapacity()
	names := make([]corev1.ResourceName, 0, len(c.Requests))
	for name := range c.Requests {
		if _, ok := capacity[name]; ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make([]float64, 0, len(names))
	for _, name := range names {
		limit := capacity[name]
		total := limit.AsApproximateFloat64()
		if total <= 0 {
			out = append(out, 1) // no room at all
			continue
		}
		req, alloc := c.Requests[name], r.Allocated[name]
		used := (alloc.AsApproximateFloat64() + req.AsApproximateFloat64()) / total
		out = append(out, min(max(used, 0), 1))
	}
	return out
}
