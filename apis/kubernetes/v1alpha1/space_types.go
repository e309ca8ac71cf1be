package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// Space is a namespace of its own on a Kubernetes cluster, ordered as a capability. On
// the cluster the space is a namespace with a ResourceQuota of what spec.resources asks
// for (cpu, memory, pods, storage; defaults 1 cpu, 1Gi memory, 10 pods), a LimitRange
// that gives containers without requests a share, a NetworkPolicy that denies traffic
// from other namespaces, and a ServiceAccount bound to the cluster's admin role in that
// namespace only. Its connection Secret holds a kubeconfig for the namespace (key
// kubeconfig, with server, ca.crt, namespace and token beside it), whose token the
// platform renews before it expires.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=ksp,categories=msp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.namespace`
// +kubebuilder:printcolumn:name="Runtime",type=string,JSONPath=`.spec.runtimeName`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.status.location.region`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Space struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the space wanted and where it may run.
	// +required
	Spec SpaceSpec `json:"spec"`

	// status is written by the platform.
	// +optional
	Status SpaceStatus `json:"status,omitempty"`
}

// SpaceSpec is the desired state of a Space.
// +kubebuilder:validation:XValidation:rule="has(self.__namespace__) == has(oldSelf.__namespace__) && (!has(self.__namespace__) || self.__namespace__ == oldSelf.__namespace__)",message="namespace cannot be changed once set"
type SpaceSpec struct {
	platformv1alpha1.CapabilitySpec `json:",inline"`

	// namespace is the name of the namespace on the cluster. Left empty, the space gets
	// one of its own: its name followed by a dash and eight hex characters. With
	// managementPolicy ObserveOnly it names an existing namespace to adopt, which the
	// cluster's operator has labelled kubernetes.msp.dev/tenant with this workspace's
	// logical cluster. It cannot be changed.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// SpaceStatus is the observed state of a Space.
type SpaceStatus struct {
	platformv1alpha1.CapabilityStatus `json:",inline"`

	// namespace is the namespace of the space on its cluster.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// server is the URL of the cluster's API server.
	// +optional
	Server string `json:"server,omitempty"`
}

// SpaceList is a list of Spaces.
// +kubebuilder:object:root=true
type SpaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Space `json:"items"`
}
