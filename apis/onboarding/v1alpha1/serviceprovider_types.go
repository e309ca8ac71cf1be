package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceProvider registers one service provider with the platform. Its name is the
// provider's: msp-providers makes the workspace root:providers:<name>, binds the platform
// API there (ServiceRuntime, ServiceRuntimeClass), grants the provider's components and
// team their rights, and binds the provider's APIExport into tenant workspaces. The
// provider publishes its APIResourceSchemas and its APIExport in that workspace itself
// (kubectl apply, or its own release tooling), so its schemas are versioned with its
// code; the status says what is missing and who can fix it.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=sp,categories=msp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Export",type=string,JSONPath=`.spec.export`
// +kubebuilder:printcolumn:name="Tenants",type=integer,JSONPath=`.status.tenants.bound`
// +kubebuilder:printcolumn:name="Runtimes",type=integer,JSONPath=`.status.run.readyRuntimes`
// +kubebuilder:printcolumn:name="API",type=string,JSONPath=`.status.conditions[?(@.type=="APIReady")].status`
// +kubebuilder:printcolumn:name="Run",type=string,JSONPath=`.status.conditions[?(@.type=="RunReady")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Workspace",type=string,JSONPath=`.status.workspace`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a ServiceProvider name must be a DNS label of at most 63 characters (lower-case letters, digits and dashes): it names the provider workspace root:providers:<name>"
type ServiceProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says what the provider offers and how it runs.
	// +required
	Spec ServiceProviderSpec `json:"spec"`

	// status is written by msp-providers.
	// +optional
	Status ServiceProviderStatus `json:"status,omitempty"`
}

// ServiceProviderSpec says what the provider offers and how it runs.
type ServiceProviderSpec struct {
	// export is the name of the APIExport the provider publishes in its workspace; by
	// msp's convention it is the API group of its kinds (for example postgres.msp.dev).
	// It cannot be changed: tenants' bindings name it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="export cannot be changed: tenants' bindings name it; register the new export with a new ServiceProvider"
	Export string `json:"export"`

	// owners are the provider team: users and groups that are made admin of the provider
	// workspace, to publish the APIExport there and to run the provider.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Owners []Subject `json:"owners,omitempty"`

	// tenants says which tenant workspaces get the export bound.
	// +optional
	// +kubebuilder:default={binding: Default}
	Tenants TenantsSpec `json:"tenants,omitempty"`

	// run configures how the provider runs on the platform.
	// +optional
	Run RunSpec `json:"run,omitempty"`

	// deletionPolicy says what deleting this ServiceProvider does. Orphan (the default)
	// is a soft delete: the platform stops managing the provider, and tenants keep their
	// capabilities, runtimes keep running, nothing is destroyed (the provider workspace,
	// its export and the tenants' bindings stay; a new ServiceProvider of the same name
	// takes them over again). Delete removes the tenants' bindings, the provider
	// workspace and its identities' rights, but only once no capability of the export
	// is left in any tenant: until then the ServiceProvider stays, and its status says
	// how many remain and where.
	// +optional
	// +kubebuilder:default=Orphan
	// +kubebuilder:validation:Enum=Orphan;Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// DeletionPolicy says what deleting a ServiceProvider does.
type DeletionPolicy string

const (
	// DeletionOrphan: the platform stops managing the provider; nothing is destroyed.
	DeletionOrphan DeletionPolicy = "Orphan"
	// DeletionDelete: bindings, workspace and identities' rights are removed once no
	// capability is left.
	DeletionDelete DeletionPolicy = "Delete"
)

// Subject is a user or a group.
type Subject struct {
	// kind is User or Group.
	// +required
	// +kubebuilder:validation:Enum=User;Group
	Kind string `json:"kind"`
	// name is the user's or group's name as kcp authenticates it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// TenantsSpec says which tenant workspaces get the export bound.
type TenantsSpec struct {
	// binding is Default or OptIn. Default: every tenant gets the export, new tenant
	// workspaces through the tenant WorkspaceType's default bindings, existing ones
	// through an APIBinding msp-providers creates; a tenant opts out when the operator
	// labels its Workspace providers.msp.dev/<provider>=opt-out. OptIn: only tenants whose
	// Workspace is labelled providers.msp.dev/<provider>=opt-in get it. Either way, a
	// binding msp created is never removed while the ServiceProvider exists (a tenant's
	// capabilities would be lost); only deletionPolicy Delete removes them.
	// +optional
	// +kubebuilder:default=Default
	// +kubebuilder:validation:Enum=Default;OptIn
	Binding TenantBinding `json:"binding,omitempty"`
}

// TenantBinding is Default or OptIn.
type TenantBinding string

const (
	// BindingDefault: every tenant that does not opt out.
	BindingDefault TenantBinding = "Default"
	// BindingOptIn: only tenants that opt in.
	BindingOptIn TenantBinding = "OptIn"
)

// RunSpec configures how the provider runs on the platform.
type RunSpec struct {
	// frontDoor is where the provider's front door (msp-frontdoor) serves: servicelets
	// dial it, and kcp sends it every write of the provider's kinds to admit. Without
	// it, the provider's kinds are not protected from forged status and label writes,
	// and RunReady is False.
	// +optional
	FrontDoor *FrontDoor `json:"frontDoor,omitempty"`

	// ordersFrom lists API groups of other providers this provider orders runtimes
	// from (cascading procurement): its coordinator may write them in its own workspace,
	// where it is that provider's tenant.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	OrdersFrom []string `json:"ordersFrom,omitempty"`
}

// FrontDoor is where a provider's front door serves.
type FrontDoor struct {
	// url is the front door's https URL, for example https://frontdoor.postgres.example:8443.
	// +required
	// +kubebuilder:validation:Pattern=`^https://[^/]+$`
	URL string `json:"url"`
	// caBundle is the PEM bundle that the front door's serving certificate is checked
	// against.
	// +required
	// +kubebuilder:validation:MinLength=1
	CABundle []byte `json:"caBundle"`
}

// ServiceProviderStatus is written by msp-providers.
type ServiceProviderStatus struct {
	// workspace is the provider workspace's path, root:providers:<name>.
	// +optional
	Workspace string `json:"workspace,omitempty"`

	// identityHash is the identity hash of the provider's APIExport, once published.
	// +optional
	IdentityHash string `json:"identityHash,omitempty"`

	// resources are the resources the export serves, as resource.group.
	// +optional
	// +listType=atomic
	Resources []string `json:"resources,omitempty"`

	// tenants counts the tenant workspaces and their bindings of the export.
	// +optional
	Tenants TenantsStatus `json:"tenants,omitempty"`

	// run says what runs.
	// +optional
	Run RunStatus `json:"run,omitempty"`

	// conditions: APIReady (the export is published and bound in the tenants),
	// RunReady (a coordinator leads and a runtime is Ready, or a runtime class can order
	// one), Ready (both).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// TenantsStatus counts tenant workspaces.
type TenantsStatus struct {
	// selected is how many tenant workspaces should have the export bound.
	Selected int32 `json:"selected"`
	// bound is how many of them have it bound.
	Bound int32 `json:"bound"`
	// unreachable is how many of them msp-providers may not bind in: the tenant has not
	// granted it the ClusterRole msp:provider-bindings (see the README).
	// +optional
	Unreachable int32 `json:"unreachable,omitempty"`
}

// RunStatus says what runs.
type RunStatus struct {
	// coordinator is the identity of the coordinator that holds the provider's lease.
	// +optional
	Coordinator string `json:"coordinator,omitempty"`
	// readyRuntimes is how many ServiceRuntimes are Ready.
	ReadyRuntimes int32 `json:"readyRuntimes"`
	// runtimeClasses is how many ServiceRuntimeClasses can order a runtime.
	// +optional
	RuntimeClasses int32 `json:"runtimeClasses,omitempty"`
}

// Condition types of a ServiceProvider.
const (
	// ConditionAPIReady: the export is published and bound in the selected tenants.
	ConditionAPIReady = "APIReady"
	// ConditionRunReady: a coordinator leads, and a runtime is Ready or can be ordered.
	ConditionRunReady = "RunReady"
	// ConditionReady: APIReady and RunReady.
	ConditionReady = "Ready"
)

// Reasons of a ServiceProvider's conditions.
const (
	ReasonWorkspaceNotReady  = "WorkspaceNotReady"
	ReasonExportMissing      = "ExportMissing"
	ReasonExportInvalid      = "ExportInvalid"
	ReasonBinding            = "Binding"
	ReasonBound              = "Bound"
	ReasonNoCoordinator      = "NoCoordinator"
	ReasonNoFrontDoor        = "NoFrontDoor"
	ReasonNoRuntime          = "NoRuntime"
	ReasonRunning            = "Running"
	ReasonReady              = "Ready"
	ReasonNotReady           = "NotReady"
	ReasonDeletionHeld       = "DeletionHeld"
	ReasonDeleting           = "Deleting"
	ReasonForeignWorkspace   = "WorkspaceTaken"
	ReasonUnacceptableClaims = "UnacceptableClaims"
)

// GetConditions returns the provider's conditions.
func (p *ServiceProvider) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions replaces the provider's conditions.
func (p *ServiceProvider) SetConditions(c []metav1.Condition) { p.Status.Conditions = c }

// ServiceProviderList is a list of ServiceProviders.
// +kubebuilder:object:root=true
type ServiceProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceProvider `json:"items"`
}
