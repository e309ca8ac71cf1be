package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// PostgresDatabase is a PostgreSQL database with its owner role, ordered by a tenant.
// The platform places it on a PostgreSQL server (a ServiceRuntime) that meets its
// placement constraints, creates it there and writes the connection details into a
// Secret next to it.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=pgdb,categories=msp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Database",type=string,JSONPath=`.status.databaseName`,priority=1
// +kubebuilder:printcolumn:name="Runtime",type=string,JSONPath=`.spec.runtimeName`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.status.location.region`
// +kubebuilder:printcolumn:name="Country",type=string,JSONPath=`.status.location.country`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PostgresDatabase struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the database the tenant wants and where it may run.
	// +required
	Spec PostgresDatabaseSpec `json:"spec"`

	// status is written by the platform.
	// +optional
	Status PostgresDatabaseStatus `json:"status,omitempty"`
}

// PostgresDatabaseSpec is the desired state of a PostgresDatabase.
//
// databaseName and owner are fixed when the object is created: an update can neither
// set, change nor remove them (setting one later would point the connection Secret at a
// new, empty database).
// +kubebuilder:validation:XValidation:rule="has(self.databaseName) == has(oldSelf.databaseName) && (!has(self.databaseName) || self.databaseName == oldSelf.databaseName)",fieldPath=".databaseName",message="databaseName is fixed when the PostgresDatabase is created: it cannot be set, changed or removed later; to use another name, create a new PostgresDatabase"
// +kubebuilder:validation:XValidation:rule="has(self.owner) == has(oldSelf.owner) && (!has(self.owner) || self.owner == oldSelf.owner)",fieldPath=".owner",message="owner is fixed when the PostgresDatabase is created: it cannot be set, changed or removed later; to use another owner, create a new PostgresDatabase"
// +kubebuilder:validation:XValidation:rule="!has(self.databaseName) || has(self.owner) || self.databaseName.size() <= 57",fieldPath=".databaseName",message="databaseName is longer than 57 characters, so the default owner (databaseName followed by _owner) would be longer than PostgreSQL's 63; set spec.owner as well, or choose a shorter databaseName"
type PostgresDatabaseSpec struct {
	platformv1alpha1.CapabilitySpec `json:",inline"`

	// databaseName is the name of the database on the server. It must be a plain
	// PostgreSQL identifier: lower-case letters, digits and underscores, starting with
	// a letter or underscore, at most 63 characters (at most 57 when owner is not set,
	// so that the default owner fits). postgres, template0, template1 and names that
	// start with pg_ are reserved.
	//
	// When it is not set, the database is named after the object, unique on its server:
	// the object's name with every character other than a-z, 0-9 and _ turned into _,
	// prefixed with "db_" when it starts with a digit, cut to 40 characters, then "_" and
	// 8 hex characters of a hash of the workspace, namespace and name (for example
	// orders_1a2b3c4d for an object named orders). status.databaseName reports the name
	// in use. It is fixed when the object is created: it cannot be set, changed or
	// removed later.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['postgres', 'template0', 'template1']) && !self.startsWith('pg_')",message="databaseName must not be postgres, template0, template1 or start with pg_, which PostgreSQL reserves; choose another name, or leave databaseName unset to get one derived from the object's name"
	DatabaseName string `json:"databaseName,omitempty"`

	// owner is the role that owns the database and whose credentials the connection
	// Secret holds. Same form as databaseName; postgres, public, none, current_user,
	// current_role, session_user and names that start with pg_ are reserved. Defaults to
	// the database name followed by "_owner"; status.owner reports the role in use. It
	// is fixed when the object is created: it cannot be set, changed or removed later.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['postgres', 'public', 'none', 'current_user', 'current_role', 'session_user']) && !self.startsWith('pg_')",message="owner must not be postgres, public, none, current_user, current_role, session_user or start with pg_, which PostgreSQL reserves; choose another role name, or leave owner unset to get databaseName followed by _owner"
	Owner string `json:"owner,omitempty"`

	// extensions are the PostgreSQL extensions to create in the database. Only
	// extensions the provider allows are accepted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Extensions []Extension `json:"extensions,omitempty"`

	// size is the storage the database may use, a quantity in Mi, Gi or Ti between
	// 16Mi and 1Ti. It counts as the "storage" resource against the runtime's capacity.
	// Defaults to 1Gi.
	// +optional
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{0,6}(Mi|Gi|Ti)$`
	// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || (quantity(self).compareTo(quantity('16Mi')) >= 0 && quantity(self).compareTo(quantity('1Ti')) <= 0)",message="size must be between 16Mi and 1Ti"
	Size string `json:"size,omitempty"`
}

// Extension is a PostgreSQL extension that the provider allows in tenant databases.
// +kubebuilder:validation:Enum=btree_gin;btree_gist;citext;cube;earthdistance;fuzzystrmatch;hstore;intarray;ltree;pg_trgm;pgcrypto;tablefunc;unaccent;uuid-ossp
type Extension string

// PostgresDatabaseStatus is the observed state of a PostgresDatabase.
type PostgresDatabaseStatus struct {
	platformv1alpha1.CapabilityStatus `json:",inline"`

	// databaseName is the name of the database on the server, as created: spec.databaseName,
	// or the name derived from the object when that is not set (see spec.databaseName).
	// +optional
	DatabaseName string `json:"databaseName,omitempty"`

	// owner is the role that owns the database, as created: spec.owner, or the database
	// name followed by "_owner" when that is not set.
	// +optional
	Owner string `json:"owner,omitempty"`
}

// PostgresDatabaseList is a list of PostgresDatabases.
// +kubebuilder:object:root=true
type PostgresDatabaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PostgresDatabase `json:"items"`
}

// GetConditions returns the database's conditions.
func (d *PostgresDatabase) GetConditions() []metav1.Condition { return d.Status.Conditions }

// SetConditions replaces the database's conditions.
func (d *PostgresDatabase) SetConditions(c []metav1.Condition) { d.Status.Conditions = c }
