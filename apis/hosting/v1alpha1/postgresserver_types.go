package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// PostgresServer is a PostgreSQL server of its own, ordered as a capability. Its
// connection Secret holds the superuser's credentials, so whoever ordered it can run it
// as a runtime of its own.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=pgsrv,categories=msp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Runtime",type=string,JSONPath=`.spec.runtimeName`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.status.location.region`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PostgresServer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the server wanted and where it may run.
	// +required
	Spec PostgresServerSpec `json:"spec"`

	// status is written by the platform.
	// +optional
	Status PostgresServerStatus `json:"status,omitempty"`
}

// PostgresServerSpec is the desired state of a PostgresServer.
type PostgresServerSpec struct {
	platformv1alpha1.CapabilitySpec `json:",inline"`
}

// PostgresServerStatus is the observed state of a PostgresServer.
type PostgresServerStatus struct {
	platformv1alpha1.CapabilityStatus `json:",inline"`
}

// PostgresServerList is a list of PostgresServers.
// +kubebuilder:object:root=true
type PostgresServerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PostgresServer `json:"items"`
}
