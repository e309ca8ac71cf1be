package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

// Location says where a service runtime is, or where a runtime class can put new ones.
type Location struct {
	// cloud names the cloud or estate that operates the runtime, for example "aws",
	// "gcp", "onprem" or "local".
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Cloud string `json:"cloud,omitempty"`

	// region names the region inside the cloud, for example "eu-de" or "us-east".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Region string `json:"region"`

	// zone names the failure domain inside the region, for example "eu-de-1".
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Zone string `json:"zone,omitempty"`

	// country is the ISO 3166-1 alpha-2 code of the country whose jurisdiction the
	// runtime is in, for example "DE". Data residency rules are written against it.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	Country string `json:"country,omitempty"`
}

// CapabilityKind names a capability kind by API group and kind.
type CapabilityKind struct {
	// group is the API group of the capability kind, for example "postgres.msp.dev".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group"`

	// kind is the kind of the capability, for example "PostgresDatabase".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Z][A-Za-z0-9]*$`
	Kind string `json:"kind"`
}

// TaintEffect says what a taint does to capabilities that do not tolerate it.
// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule
type TaintEffect string

const (
	// TaintEffectNoSchedule keeps capabilities that do not tolerate the taint off the runtime.
	TaintEffectNoSchedule TaintEffect = "NoSchedule"
	// TaintEffectPreferNoSchedule lowers the runtime's score for capabilities that do not
	// tolerate the taint, but still allows them when nothing else fits.
	TaintEffectPreferNoSchedule TaintEffect = "PreferNoSchedule"
)

// Taint marks a service runtime so that only capabilities that tolerate it are placed there.
type Taint struct {
	// key is the taint key, a qualified name such as "msp.dev/dedicated".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	Key string `json:"key"`

	// value is the taint value.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Value string `json:"value,omitempty"`

	// effect is what the taint does to capabilities that do not tolerate it.
	// +required
	Effect TaintEffect `json:"effect"`
}

// TolerationOperator says how a toleration matches a taint's value.
// +kubebuilder:validation:Enum=Exists;Equal
type TolerationOperator string

const (
	// TolerationOpExists matches any value of the taint key.
	TolerationOpExists TolerationOperator = "Exists"
	// TolerationOpEqual matches only the given value.
	TolerationOpEqual TolerationOperator = "Equal"
)

// Toleration lets a capability be placed on a runtime with a matching taint.
// +kubebuilder:validation:XValidation:rule="self.operator != 'Exists' || !has(self.value) || size(self.value) == 0",message="value must be empty when operator is Exists"
// +kubebuilder:validation:XValidation:rule="(has(self.key) && size(self.key) > 0) || self.operator == 'Exists'",message="an empty key requires operator Exists (it then tolerates every taint)"
type Toleration struct {
	// key is the taint key the toleration applies to. Empty with operator Exists
	// tolerates every taint.
	// +optional
	// +kubebuilder:validation:MaxLength=316
	Key string `json:"key,omitempty"`

	// operator is how the value is compared: Exists matches any value, Equal only the
	// given one. Defaults to Equal.
	// +optional
	// +kubebuilder:default=Equal
	Operator TolerationOperator `json:"operator,omitempty"`

	// value is the taint value the toleration matches when operator is Equal.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Value string `json:"value,omitempty"`

	// effect is the taint effect to match; empty matches all effects.
	// +optional
	Effect TaintEffect `json:"effect,omitempty"`
}

// ResourceCapabilities is the well-known resource that counts capabilities. Every
// capability uses one of it on its runtime, in addition to what its spec.resources asks
// for, so a runtime's capacity can be "how many capabilities it takes".
const ResourceCapabilities corev1.ResourceName = "capabilities"
