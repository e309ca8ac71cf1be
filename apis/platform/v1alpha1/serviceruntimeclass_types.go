package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ServiceRuntimeClass tells the runtime manager what it may order when no runtime fits a
// capability: where new runtimes can go, what each one hosts and how much, how many may
// exist, how long an empty one lives, and which procurement driver orders them. It lives
// in the provider workspace. Its name is a DNS label of at most 56 characters: each
// runtime it orders is named after it, followed by a dash and 6 hex characters.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=rtc,categories=msp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Driver",type=string,JSONPath=`.spec.driver.name`
// +kubebuilder:printcolumn:name="Min",type=integer,JSONPath=`.spec.minRuntimes`
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxRuntimes`
// +kubebuilder:printcolumn:name="Runtimes",type=integer,JSONPath=`.status.runtimes`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 56",message="a ServiceRuntimeClass name must be at most 56 characters: the runtime manager names each runtime it orders after its class followed by a dash and 6 hex characters, and a ServiceRuntime name is at most 63; choose a shorter name"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a ServiceRuntimeClass name must be a DNS label (lower-case letters, digits and dashes, no dots), since the names of its runtimes are; choose another name"
type ServiceRuntimeClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says what may be ordered.
	// +required
	Spec ServiceRuntimeClassSpec `json:"spec"`

	// status is written by the runtime manager.
	// +optional
	Status ServiceRuntimeClassStatus `json:"status,omitempty"`
}

// ServiceRuntimeClassSpec says what the runtime manager may order.
// +kubebuilder:validation:XValidation:rule="self.minRuntimes <= self.maxRuntimes",message="minRuntimes must not be greater than maxRuntimes"
type ServiceRuntimeClassSpec struct {
	// capabilities lists the capability kinds a runtime of this class hosts.
	// +required
	// +listType=map
	// +listMapKey=group
	// +listMapKey=kind
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Capabilities []CapabilityKind `json:"capabilities"`

	// locations are the places where a runtime of this class can be ordered. A new
	// runtime is put in exactly one of them, chosen to fit the waiting capabilities.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	Locations []Location `json:"locations"`

	// capacity is the capacity of each new runtime, as in ServiceRuntime spec.capacity.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`

	// labels are put on each new ServiceRuntime, so that runtime selectors can match them.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// taints are put on each new ServiceRuntime.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Taints []Taint `json:"taints,omitempty"`

	// minRuntimes is how many runtimes of this class are kept even when empty.
	// Zero lets the class scale to zero. Defaults to 0.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	MinRuntimes int32 `json:"minRuntimes"`

	// maxRuntimes is how many runtimes of this class may exist at once. Capabilities
	// that would need more stay pending with a reason that says so.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaxRuntimes int32 `json:"maxRuntimes"`

	// scaleDownAfter is how long a runtime of this class must stay empty before the
	// runtime manager removes it. Defaults to 10 minutes.
	// +optional
	// +kubebuilder:default="10m"
	ScaleDownAfter metav1.Duration `json:"scaleDownAfter,omitempty"`

	// driver is the procurement driver that orders and removes runtimes of this class.
	// +required
	Driver RuntimeDriver `json:"driver"`
}

// RuntimeDriver names a procurement driver and its parameters.
type RuntimeDriver struct {
	// name of the procurement driver, for example "local" (starts a local server and
	// its servicelet) or "cascading" (orders the runtime as a capability of another
	// provider through kcp).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// parameters are handed to the driver as they are; each driver documents its own.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Parameters *runtime.RawExtension `json:"parameters,omitempty"`
}

// ServiceRuntimeClassStatus is the observed state of a runtime class.
type ServiceRuntimeClassStatus struct {
	// conditions describe the class's state.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// runtimes is how many runtimes of this class exist, including ones being ordered.
	// +optional
	Runtimes int32 `json:"runtimes,omitempty"`

	// lastScaleTime is when the runtime manager last ordered or removed a runtime of
	// this class.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
}

// ServiceRuntimeClassList is a list of ServiceRuntimeClasses.
// +kubebuilder:object:root=true
type ServiceRuntimeClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceRuntimeClass `json:"items"`
}

// GetConditions returns the class's conditions.
func (c *ServiceRuntimeClass) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the class's conditions.
func (c *ServiceRuntimeClass) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }
