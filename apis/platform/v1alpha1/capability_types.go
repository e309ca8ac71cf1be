package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CapabilitySpec is the platform's part of every capability's spec. A provider kind
// embeds it inline next to its own fields; the scheduler, the runtime manager and the
// servicelet framework work on any kind that does.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.runtimeName) || (has(self.runtimeName) && self.runtimeName == oldSelf.runtimeName)",message="runtimeName cannot be changed or removed once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.runtimeName) || (has(self.placement) == has(oldSelf.placement) && (!has(self.placement) || self.placement == oldSelf.placement))",fieldPath=".placement",message="placement cannot change once the capability runs on a runtime (spec.runtimeName is set); to move it, create a new capability with the new placement, then delete this one"
type CapabilitySpec struct {
	// runtimeName is the name of the ServiceRuntime that hosts this capability, like a
	// Pod's nodeName. The scheduler writes it, and copies it into the label
	// platform.msp.dev/runtime; a consumer may set it when creating the capability, and
	// the scheduler then checks that the runtime exists and fits. It is a DNS label (at
	// most 63 lower-case letters, digits and dashes), like every ServiceRuntime name.
	// Once set it never changes.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	RuntimeName string `json:"runtimeName,omitempty"`

	// placement constrains where the capability may run. It cannot change once
	// runtimeName is set: to move a capability, create a new one with the new placement.
	// +optional
	// +kubebuilder:default={}
	Placement Placement `json:"placement,omitempty"`

	// resources is how much of a runtime's capacity the capability needs, per resource
	// name (for example "storage: 10Gi"), at most 12 of them. Every quantity must be
	// greater than zero. Every capability also uses exactly one of the well-known
	// resource "capabilities", which the platform counts by itself: it cannot be set here.
	// +optional
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:MaxProperties=12
	// +kubebuilder:validation:XValidation:rule="self.all(k, type(self[k]) == string ? !isQuantity(self[k]) || quantity(self[k]).isGreaterThan(quantity('0')) : self[k] > 0)",message="every quantity in resources must be greater than zero",messageExpression="'every quantity in resources must be greater than zero, and ' + self.filter(k, type(self[k]) == string ? isQuantity(self[k]) && !quantity(self[k]).isGreaterThan(quantity('0')) : self[k] <= 0)[0] + ' is not'"
	// +kubebuilder:validation:XValidation:rule="!('capabilities' in self)",message="resources must not set capabilities: the platform counts exactly one per capability by itself; remove the key"
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

	// credentials reports the last time the servicelet issued new credentials.
	// +optional
	Credentials *CredentialsStatus `json:"credentials,omitempty"`
}

// CredentialsStatus reports on the credentials in a capability's connection Secret.
type CredentialsStatus struct {
	// rotatedAt is when the servicelet last issued new credentials (on request, or
	// because the Secret had lost or changed them).
	// +optional
	RotatedAt *metav1.Time `json:"rotatedAt,omitempty"`

	// rotationToken is the value of the platform.msp.dev/rotate-credentials annotation
	// that the last requested rotation answered. A new value asks for a new rotation.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RotationToken string `json:"rotationToken,omitempty"`
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
