package runtimemanager

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Order is a runtime the plan wants ordered.
type Order struct {
	Class    *platformv1alpha1.ServiceRuntimeClass
	Location platformv1alpha1.Location
	// For are the keys of the capabilities it is ordered for.
	For []string
}

// Plan is what the runtime manager will do about the waiting capabilities.
type Plan struct {
	// Orders are the new runtimes to order, the fewest that make the waiting
	// capabilities schedulable.
	Orders []*Order
	// Waiting explains, per capability key, what it waits for.
	Waiting map[string]scheduler.WaitReason
}

// planned is a runtime in the simulation: one being provisioned already, or a new order.
type planned struct {
	info         *framework.RuntimeInfo
	order        *Order
	name         string
	class        string
	provisioning bool
}

// MakePlan simulates the waiting capabilities on the runtimes there are (those being
// provisioned counted as Ready) and on new runtimes of the classes, first fit, and
// returns the fewest orders that place them, within each class's maximum. existing counts
// each class's runtimes; runtimes are all runtimes with what they host; provisioning
// names the ones ordered but not Ready yet.
//
// A capability that fits a runtime there is needs no order: either the scheduler places
// it on its next attempt (a runtime just turned Ready), or it waits for one being
// provisioned.
func MakePlan(ctx context.Context, fw *framework.Framework, pending []scheduler.Pending, classes []*platformv1alpha1.ServiceRuntimeClass,
	existing map[string]int, runtimes []*framework.RuntimeInfo, provisioning map[string]bool, now time.Time) *Plan {
	plan := &Plan{Waiting: map[string]scheduler.WaitReason{}}
	var sims []*planned
	for _, info := range runtimes {
		sim := &planned{info: copyInfo(info), name: info.Name(), class: info.Runtime.Spec.RuntimeClassName}
		if provisioning[info.Name()] {
			sim.info = asReady(info, now)
			sim.provisioning = true
		}
		sims = append(sims, sim)
	}
	sort.Slice(classes, func(i, j int) bool { return classes[i].Name < classes[j].Name })
	count := map[string]int{}
	for name, n := range existing {
		count[name] = n
	}

	for _, p := range pending {
		c := p.Capability
		placed := false
		for _, sim := range sims {
			if fw.Check(ctx, c, sim.info) == nil {
				allocate(sim.info, c)
				switch {
				case sim.order != nil:
					sim.order.For = append(sim.order.For, p.Key)
					plan.Waiting[p.Key] = scheduler.WaitReason{Reason: platformv1alpha1.ReasonWaitingForRuntime,
						Message: fmt.Sprintf("waiting for a new runtime of class %s in %s", sim.class, sim.order.Location.Region)}
				case sim.provisioning:
					plan.Waiting[p.Key] = scheduler.WaitReason{Reason: platformv1alpha1.ReasonWaitingForRuntime,
						Message: fmt.Sprintf("waiting for runtime %s of class %s to become ready", sim.name, sim.class)}
				}
				placed = true
				break
			}
		}
		if placed {
			continue
		}
		var full []string
		for _, class := range classes {
			for _, loc := range class.Spec.Locations {
				candidate := template(class, loc, now)
				if fw.Check(ctx, c, candidate) != nil {
					continue
				}
				if count[class.Name] >= int(class.Spec.MaxRuntimes) {
					full = append(full, class.Name)
					break
				}
				count[class.Name]++
				order := &Order{Class: class, Location: loc, For: []string{p.Key}}
				plan.Orders = append(plan.Orders, order)
				allocate(candidate, c)
				sims = append(sims, &planned{info: candidate, order: order, class: class.Name})
				plan.Waiting[p.Key] = scheduler.WaitReason{Reason: platformv1alpha1.ReasonWaitingForRuntime,
					Message: fmt.Sprintf("waiting for a new runtime of class %s in %s", class.Name, loc.Region)}
				placed = true
				break
			}
			if placed {
				break
			}
		}
		if !placed && len(full) > 0 {
			msg := fmt.Sprintf("runtime class %s has reached its maximum of %d runtimes", full[0], maxOf(classes, full[0]))
			if len(full) > 1 {
				msg = fmt.Sprintf("runtime classes %v have reached their maximum number of runtimes", full)
			}
			plan.Waiting[p.Key] = scheduler.WaitReason{Reason: platformv1alpha1.ReasonUnschedulable, Message: msg}
		}
	}
	return plan
}

func maxOf(classes []*platformv1alpha1.ServiceRuntimeClass, name string) int32 {
	for _, c := range classes {
		if c.Name == name {
			return c.Spec.MaxRuntimes
		}
	}
	return 0
}

// Spec is the spec of a runtime of class at loc.
func Spec(class *platformv1alpha1.ServiceRuntimeClass, loc platformv1alpha1.Location) platformv1alpha1.ServiceRuntimeSpec {
	return platformv1alpha1.ServiceRuntimeSpec{
		Location:         loc,
		Capabilities:     class.Spec.Capabilities,
		Capacity:         class.Spec.Capacity.DeepCopy(),
		Taints:           class.Spec.Taints,
		RuntimeClassName: class.Name,
	}
}

// template is an empty, ready runtime of class at loc, as the filters would see it.
func template(class *platformv1alpha1.ServiceRuntimeClass, loc platformv1alpha1.Location, now time.Time) *framework.RuntimeInfo {
	rt := &platformv1alpha1.ServiceRuntime{
		ObjectMeta: metav1.ObjectMeta{Name: class.Name + "-planned", Labels: class.Spec.Labels},
		Spec:       Spec(class, loc),
	}
	return asReady(&framework.RuntimeInfo{Runtime: rt, Allocated: corev1.ResourceList{}, PerTenant: map[string]int{}}, now)
}

// asReady copies info with its runtime Ready and a fresh heartbeat: a runtime being
// provisioned counts as the runtime it is about to be.
func asReady(info *framework.RuntimeInfo, now time.Time) *framework.RuntimeInfo {
	rt := info.Runtime.DeepCopy()
	t := metav1.NewTime(now)
	rt.Status.LastHeartbeatTime = &t
	rt.Status.Conditions = []metav1.Condition{{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Planned"}}
	rt.Spec.Unschedulable = false
	out := &framework.RuntimeInfo{Runtime: rt, Allocated: info.Allocated.DeepCopy(), Count: info.Count, PerTenant: map[string]int{}}
	if out.Allocated == nil {
		out.Allocated = corev1.ResourceList{}
	}
	return out
}

func copyInfo(info *framework.RuntimeInfo) *framework.RuntimeInfo {
	out := *info
	out.Allocated = info.Allocated.DeepCopy()
	if out.Allocated == nil {
		out.Allocated = corev1.ResourceList{}
	}
	return &out
}

func allocate(info *framework.RuntimeInfo, c *framework.Capability) {
	info.Count++
	for name, q := range c.Requests {
		sum := info.Allocated[name]
		sum.Add(q)
		info.Allocated[name] = sum
	}
}
