// Package v1alpha1 holds msp's onboarding API: ServiceProvider, the one object with which a
// service provider joins the platform.
//
// The group is exported from the root:platform workspace and bound there (and nowhere
// else): the platform operator, or a provider team the operator lets create
// ServiceProviders, applies one with kubectl in root:platform; msp-providers, the
// platform's provider controller, makes the rest true.
//
// +kubebuilder:object:generate=true
// +groupName=onboarding.msp.dev
package v1alpha1
