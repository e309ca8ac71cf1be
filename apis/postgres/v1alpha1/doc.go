// Package v1alpha1 holds the API of the PostgreSQL provider: PostgresDatabase, a
// database with its owner role on a PostgreSQL server that the platform chooses near
// the tenant.
//
// The group is exported from the root:providers:postgres workspace; tenant workspaces
// bind it.
//
// +kubebuilder:object:generate=true
// +groupName=postgres.msp.dev
package v1alpha1
