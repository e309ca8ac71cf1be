// Package v1alpha1 holds the API of the hosting provider: PostgresServer, a whole
// PostgreSQL server as a capability. Other providers order their runtimes as
// PostgresServers (cascading): the postgres provider's runtime manager binds this
// export and becomes the hosting provider's tenant.
//
// +kubebuilder:object:generate=true
// +groupName=hosting.msp.dev
package v1alpha1
