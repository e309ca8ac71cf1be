package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// FileShare is a folder served over HTTP, ordered by a tenant. The platform places it on
// a file server (a ServiceRuntime) that meets its placement constraints; the servicelet
// there creates the folder, writes the files of the spec into it and writes the share's
// URL and its access token into a Secret next to it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=fs,categories=msp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Runtime",type=string,JSONPath=`.spec.runtimeName`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.status.location.region`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FileShare struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the share the tenant wants and where it may run.
	// +required
	Spec FileShareSpec `json:"spec"`

	// status is written by the platform.
	// +optional
	Status FileShareStatus `json:"status,omitempty"`
}

// FileShareSpec is the desired state of a FileShare.
type FileShareSpec struct {
	platformv1alpha1.CapabilitySpec `json:",inline"`

	// files are written into the share, by file name, and kept as written: a file
	// changed or removed on the server is written again. File names are plain names
	// (letters, digits, dot, dash, underscore), no folders.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'))",message="file names must be plain names of letters, digits, '.', '-' and '_' (at most 63 characters, no folders)"
	Files map[string]string `json:"files,omitempty"`
}

// FileShareStatus is the observed state of a FileShare.
type FileShareStatus struct {
	platformv1alpha1.CapabilityStatus `json:",inline"`
}

// FileShareList is a list of FileShares.
//
// +kubebuilder:object:root=true
type FileShareList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FileShare `json:"items"`
}

// GetConditions returns the share's conditions.
func (s *FileShare) GetConditions() []metav1.Condition { return s.Status.Conditions }

// SetConditions sets the share's conditions.
func (s *FileShare) SetConditions(c []metav1.Condition) { s.Status.Conditions = c }
