// Package testutil builds scheduler inputs for the plugins' tests. Everything it builds
// passes every filter unless an option says otherwise, so a test states only what it is
// about.
package testutil

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Kind is the capability kind that runtimes and capabilities built here have by default.
var Kind = schema.GroupKind{Group: "postgres.msp.dev", Kind: "PostgresDatabase"}

// Now is the tests' fixed clock; runtimes built here last heartbeat at Now.
var Now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock returns Now, for plugins that take a clock.
func Clock() time.Time { return Now }

// Resources builds a ResourceList from name, quantity pairs, e.g.
// Resources("storage", "10Gi", "capabilities", "5").
func Resources(pairs ...string) corev1.ResourceList {
	if len(pairs)%2 != 0 {
		panic("testutil.Resources: want name, quantity pairs")
	}
	out := corev1.ResourceList{}
	for i := 0; i < len(pairs); i += 2 {
		out[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return out
}

// RuntimeOption changes a runtime built by Runtime.
type RuntimeOption func(*platformv1alpha1.ServiceRuntime)

// Runtime returns a runtime that takes anything of Kind: Ready, heartbeating at Now, in
// aws/eu-de/eu-de-1/DE, without capacity limits, labels or taints. opts change it.
func Runtime(name string, opts ...RuntimeOption) *platformv1alpha1.ServiceRuntime {
	rt := &platformv1alpha1.ServiceRuntime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: platformv1alpha1.ServiceRuntimeSpec{
			Location:     platformv1alpha1.Location{Cloud: "aws", Region: "eu-de", Zone: "eu-de-1", Country: "DE"},
			Capabilities: []platformv1alpha1.CapabilityKind{{Group: Kind.Group, Kind: Kind.Kind}},
		},
		Status: platformv1alpha1.ServiceRuntimeStatus{
			Conditions:        []metav1.Condition{{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue}},
			LastHeartbeatTime: &metav1.Time{Time: Now},
		},
	}
	for _, o := range opts {
		o(rt)
	}
	return rt
}

// WithLocation replaces the runtime's whole location.
func WithLocation(l platformv1alpha1.Location) RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) { rt.Spec.Location = l }
}

// WithLabels sets the runtime's metadata labels.
func WithLabels(l map[string]string) RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) { rt.Labels = l }
}

// WithKinds replaces the capability kinds the runtime hosts.
func WithKinds(kinds ...schema.GroupKind) RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) {
		rt.Spec.Capabilities = nil
		for _, k := range kinds {
			rt.Spec.Capabilities = append(rt.Spec.Capabilities, platformv1alpha1.CapabilityKind{Group: k.Group, Kind: k.Kind})
		}
	}
}

// WithCapacity sets the runtime's capacity from name, quantity pairs (see Resources).
func WithCapacity(pairs ...string) RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) { rt.Spec.Capacity = Resources(pairs...) }
}

// WithTaints sets the runtime's taints.
func WithTaints(taints ...platformv1alpha1.Taint) RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) { rt.Spec.Taints = taints }
}

// WithReady sets the status of the runtime's Ready condition.
func WithReady(s metav1.ConditionStatus) RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) {
		rt.Status.Conditions = []metav1.Condition{{Type: platformv1alpha1.ConditionReady, Status: s}}
	}
}

// WithHeartbeat sets the runtime's last heartbeat.
func WithHeartbeat(t time.Time) RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) { rt.Status.LastHeartbeatTime = &metav1.Time{Time: t} }
}

// Cordoned marks the runtime unschedulable.
func Cordoned() RuntimeOption {
	return func(rt *platformv1alpha1.ServiceRuntime) { rt.Spec.Unschedulable = true }
}

// Info wraps rt for the scheduler, with nothing on it yet.
func Info(rt *platformv1alpha1.ServiceRuntime) *framework.RuntimeInfo {
	return &framework.RuntimeInfo{Runtime: rt, Allocated: corev1.ResourceList{}, PerTenant: map[string]int{}}
}

// CapabilityOption changes a capability built by Capability.
type CapabilityOption func(*framework.Capability)

// Capability returns a capability "default/db" of Kind in workspace "tenant-a", without
// placement constraints. opts change it; unless one sets Requests, they and Named are
// then derived from the spec with framework.RequestsOf and framework.NamedResources.
func Capability(opts ...CapabilityOption) *framework.Capability {
	c := &framework.Capability{Cluster: "tenant-a", Namespace: "default", Name: "db", GroupKind: Kind}
	for _, o := range opts {
		o(c)
	}
	if c.Requests == nil {
		c.Requests = framework.RequestsOf(&c.Spec, nil)
		c.Named = framework.NamedResources(&c.Spec)
	}
	return c
}

// WithPlacement sets the capability's placement.
func WithPlacement(p platformv1alpha1.Placement) CapabilityOption {
	return func(c *framework.Capability) { c.Spec.Placement = p }
}

// WithResources sets the capability's spec.resources from name, quantity pairs.
func WithResources(pairs ...string) CapabilityOption {
	return func(c *framework.Capability) { c.Spec.Resources = Resources(pairs...) }
}

// WithKind sets the capability's kind.
func WithKind(gk schema.GroupKind) CapabilityOption {
	return func(c *framework.Capability) { c.GroupKind = gk }
}
