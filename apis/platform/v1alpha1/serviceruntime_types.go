package v1alpha1

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceRuntime is the digital twin of one service runtime: a place that hosts
// capabilities, such as a PostgreSQL server or a Kubernetes cluster. It lives in the
// provider workspace. Operators (or the runtime manager) write its spec; the runtime's
// servicelet keeps its status true. The scheduler reads both to place capabilities.
// Its name is a DNS label of at most 63 characters, since capabilities carry it in a
// label.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=rt;srt,categories=msp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.location.region`
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.spec.location.zone`,priority=1
// +kubebuilder:printcolumn:name="Country",type=string,JSONPath=`.spec.location.country`
// +kubebuilder:printcolumn:name="Cloud",type=string,JSONPath=`.spec.location.cloud`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Capabilities",type=integer,JSONPath=`.status.capabilityCount`
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.spec.runtimeClassName`,priority=1
// +kubebuilder:printcolumn:name="Heartbeat",type=date,JSONPath=`.status.lastHeartbeatTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="a ServiceRuntime name must be at most 63 characters: capabilities carry it in spec.runtimeName and in the label platform.msp.dev/runtime, whose values are limited to 63; choose a shorter name"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a ServiceRuntime name must be a DNS label (lower-case letters, digits and dashes, no dots), as spec.runtimeName of a capability must be; choose another name"
type ServiceRuntime struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the runtime: where it is, what it can host and how much.
	// +required
	Spec ServiceRuntimeSpec `json:"spec"`

	// status is written by the runtime's servicelet and by the coordinator.
	// +optional
	Status ServiceRuntimeStatus `json:"status,omitempty"`
}

// ServiceRuntimeSpec describes a service runtime. Its metadata labels are what a
// capability's placement.runtimeSelector matches.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.runtimeClassName) || (has(self.runtimeClassName) && self.runtimeClassName == oldSelf.runtimeClassName)",message="runtimeClassName is immutable"
type ServiceRuntimeSpec struct {
	// location is where the runtime is. Placement constraints of capabilities are
	// checked against it.
	// +required
	Location Location `json:"location"`

	// capabilities lists the capability kinds this runtime can host. The scheduler
	// places no other kind here.
	// +required
	// +listType=map
	// +listMapKey=group
	// +listMapKey=kind
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Capabilities []CapabilityKind `json:"capabilities"`

	// capacity is how much the runtime can host, per resource name. The well-known
	// resource "capabilities" counts hosted capabilities (each uses one); other names,
	// such as "storage", are matched against what a capability's spec.resources asks for.
	// A resource missing here is not limited.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`

	// taints keep capabilities that do not tolerate them off this runtime.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Taints []Taint `json:"taints,omitempty"`

	// unschedulable cordons the runtime: the scheduler places no new capability here,
	// and the ones already here stay.
	// +optional
	Unschedulable bool `json:"unschedulable,omitempty"`

	// runtimeClassName names the ServiceRuntimeClass this runtime was ordered from.
	// Empty for runtimes that an operator registered by hand; the runtime manager only
	// ever removes runtimes that carry a class. It cannot change once set.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
}

// ServiceRuntimeStatus is the observed state of a service runtime.
type ServiceRuntimeStatus struct {
	// conditions describe the runtime's state. Ready is True while its servicelet
	// reports in time and the runtime itself is usable.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// capacity is what the runtime reports it can hold, as its servicelet measures it
	// (a Kubernetes cluster: the sum of its nodes' allocatable). Every resource it names
	// counts instead of the one in spec.capacity; spec.capacity counts for the rest.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`

	// allocated is how much of the capacity the capabilities assigned to this runtime
	// take, as last counted by its servicelet.
	// +optional
	Allocated corev1.ResourceList `json:"allocated,omitempty"`

	// usage is what the runtime reports it actually uses, for example the storage its
	// databases take. It is informational; the scheduler plans with allocated.
	// +optional
	Usage corev1.ResourceList `json:"usage,omitempty"`

	// capabilityCount is the number of capabilities assigned to this runtime.
	// +optional
	CapabilityCount int32 `json:"capabilityCount,omitempty"`

	// lastHeartbeatTime is when the servicelet last reported. A runtime whose
	// heartbeat is older than the coordinator's bound is taken as not Ready.
	// +optional
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`

	// serviceletVersion is the version of the servicelet that serves this runtime.
	// +optional
	ServiceletVersion string `json:"serviceletVersion,omitempty"`

	// observedGeneration is the spec generation the servicelet last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ServiceRuntimeList is a list of ServiceRuntimes.
// +kubebuilder:object:root=true
type ServiceRuntimeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceRuntime `json:"items"`
}

// EffectiveCapacity is the capacity the scheduler counts a runtime's room by:
// spec.capacity, with every resource that status.capacity names (what the runtime
// reported of itself) taken from there instead. Callers must not modify it.
func (r *ServiceRuntime) EffectiveCapacity() corev1.ResourceList {
	if len(r.Status.Capacity) == 0 {
		return r.Spec.Capacity
	}
	out := make(corev1.ResourceList, len(r.Spec.Capacity)+len(r.Status.Capacity))
	maps.Copy(out, r.Spec.Capacity)
	maps.Copy(out, r.Status.Capacity)
	return out
}

// GetConditions returns the runtime's conditions.
func (r *ServiceRuntime) GetConditions() []metav1.Condition { return r.Status.Conditions }

// SetConditions replaces the runtime's conditions.
func (r *ServiceRuntime) SetConditions(c []metav1.Condition) { r.Status.Conditions = c }
