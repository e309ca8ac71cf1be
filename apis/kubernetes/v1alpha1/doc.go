// Package v1alpha1 holds the API of the Kubernetes provider: Space, a namespace of its
// own on a Kubernetes cluster, ordered as a capability. The provider's runtimes are
// Kubernetes clusters; the Space's connection Secret is a kubeconfig for the namespace.
//
// +kubebuilder:object:generate=true
// +groupName=kubernetes.msp.dev
package v1alpha1
