package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CapabilitySpec is the platform's part of every capability's spec. A provider kind
// embeds it inline next to its own fields; the scheduler, the runtime manager and the
// servicelet framework work on any kind that does.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.runtimeName) || (has(self.runtimeName) && self.runtimeName == oldSelf.runtimeName)",message="runtimeName cannot be changed or removed once set"
type CapabilitySpec struct {
	// runtimeName is the name of the ServiceRuntime that hosts this capability, like a
	// Pod's nodeName. The scheduler writes it; a consumer may set it when creating the
	// capability, and the scheduler then checks that the runtime exists and fits. Once
	// set it never changes.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	RuntimeName string `json:"runtimeName,omitempty"`

	// placement constrains where the capability may run.
	// +optional
	Placement Placement `json:"placement,omitempty"`

	// resources is how much of a runtime's capacity the capability needs, per resource
	// name (for example "storage: 10Gi"). Every capability also uses one of the
	// well-known resource "capabilities".
	// +optional
	Resources corev1.ResourceList `json:"resources,omitempty"`

	// deletionPolicy says what happens to the thing on the runtime when the capability
	// is deleted: Delete removes it, Orphan leaves it running (a soft delete).
	// Defaults to Delete.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// managementPolicy says how far the servicelet may act: Full creates, updates and
	// deletes; ObserveOnly adopts an existing thing and reports on it without ever
	// changing it. Defaults to Full.
	// +optional
	// +kubebuilder:default=Full
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`
}

// Placement constrains which runtimes may host a capability. Every list that is set
// must match; an empty list allows everything.
// +kubebuilder:validation:XValidation:rule="!has(self.regions) || !has(self.preferredRegions) || self.preferredRegions.all(r, r in self.regions)",message="every entry of preferredRegions must also be in regions"
type Placement struct {
	// regions the capability may run in. Empty allows every region.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Regions []string `json:"regions,omitempty"`

	// zones the capability may run in. Empty allows every zone.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Zones []string `json:"zones,omitempty"`

	// countries the capability may run in, as ISO 3166-1 alpha-2 codes such as "DE".
	// Use it for data residency. Empty allows every country.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Pattern=`^[A-Z]{2}$`
	Countries []string `json:"countries,omitempty"`

	// clouds the capability may run in. Empty allows every cloud.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Clouds []string `json:"clouds,omitempty"`

	// preferredRegions are regions in order of preference. The scheduler favours the
	// first, then the next, among the runtimes that fit; it still uses other allowed
	// regions when none of these fit.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	PreferredRegions []string `json:"preferredRegions,omitempty"`

	// runtimeSelector selects runtimes by their metadata labels.
	// +optional
	RuntimeSelector *metav1.LabelSelector `json:"runtimeSelector,omitempty"`

	// spreadAcrossZones asks the scheduler to prefer zones that host fewer capabilities
	// of the same kind from the same tenant workspace, so that one zone failing takes
	// down as few of them as possible.
	// +optional
	SpreadAcrossZones bool `json:"spreadAcrossZones,omitempty"`

	// tolerations let the capability run on runtimes with matching taints.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []Toleration `json:"tolerations,omitempty"`
}

// DeletionPolicy says what happens to the thing on the runtime when its capability is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the thing from the runtime.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan leaves the thing running on the runtime.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// ManagementPolicy says how far the servicelet may act on the thing on the runtime.
// +kubebuilder:validation:Enum=Full;ObserveOnly
type ManagementPolicy string

const (
	// ManagementPolicyFull lets the servicelet create, update and delete.
	ManagementPolicyFull ManagementPolicy = "Full"
	// ManagementPolicyObserveOnly lets the servicelet only observe and report.
	ManagementPolicyObserveOnly ManagementPolicy = "ObserveOnly"
)

// CapabilityStatus is the platform's part of every capability's status.
type CapabilityStatus struct {
	// conditions describe the capability's state: Scheduled (a runtime was chosen),
	// Ready (the thing is usable) and Synced (the last reconcile succeeded; its message
	// carries the last error).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the servicelet last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// location is where the runtime that hosts the capability is.
	// +optional
	Location *Location `json:"location,omitempty"`

	// scheduling reports the scheduler's last attempt while the capability is not yet
	// placed, and its decision once it is: what it evaluated and the best candidates.
	// +optional
	Scheduling *SchedulingStatus `json:"scheduling,omitempty"`

	// connectionSecretRef names the Secret, in the capability's namespace, that holds
	// the connection details the servicelet wrote back.
	// +optional
	ConnectionSecretRef *corev1.LocalObjectReference `json:"connectionSecretRef,omitempty"`
}

// SchedulingStatus explains a scheduling attempt.
type SchedulingStatus struct {
	// lastUpdateTime is when the scheduler last changed this report. An attempt that
	// reaches the same verdict does not rewrite it, so a pending capability costs no
	// writes while nothing changes.
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`

	// evaluated is how many runtimes the scheduler looked at.
	// +optional
	Evaluated int32 `json:"evaluated,omitempty"`

	// feasible is how many of them fit the capability.
	// +optional
	Feasible int32 `json:"feasible,omitempty"`

	// candidates are the best runtimes that fit, best first (at most three).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=3
	Candidates []SchedulingCandidate `json:"candidates,omitempty"`
}

// SchedulingCandidate is a runtime that fits a capability, with its score.
type SchedulingCandidate struct {
	// runtime is the name of the ServiceRuntime.
	// +required
	Runtime string `json:"runtime"`

	// region is the runtime's region.
	// +optional
	Region string `json:"region,omitempty"`

	// score is the runtime's weighted score; higher is better.
	// +optional
	Score int64 `json:"score,omitempty"`
}
