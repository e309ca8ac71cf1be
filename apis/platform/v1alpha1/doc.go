// Package v1alpha1 holds the platform API of msp: the digital twins of service runtimes
// (ServiceRuntime), what the runtime manager may order (ServiceRuntimeClass), and the
// capability contract that every provider kind embeds (CapabilitySpec, CapabilityStatus).
//
// The group is exported from the root:platform workspace and bound by every provider
// workspace, so that each provider keeps its runtimes and runtime classes next to its
// own APIExport.
//
// +kubebuilder:object:generate=true
// +groupName=platform.msp.dev
package v1alpha1
