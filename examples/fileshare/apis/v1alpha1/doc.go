// Package v1alpha1 is the API of the example fileshare provider: FileShare, a folder
// served over HTTP on a runtime the platform chooses near the tenant.
//
// +kubebuilder:object:generate=true
// +groupName=fileshare.example.dev
package v1alpha1
