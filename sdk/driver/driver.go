// Package driver is the contract between msp's servicelet and a provider's business
// logic: a provider implements a Driver per capability kind (observe, create, update,
// delete — idempotent and quick to return), optionally a CredentialRotator, and a
// RuntimeProbe for the runtime as a whole. The servicelet owns everything else: the
// finalizer, the Ready and Synced conditions, events, retries, the pause annotation, the
// deletion policy, the observe-only management policy and the connection Secret.
//
// Errors returned by a driver reach the tenant only if they are TenantErrors; anything
// else is logged by the servicelet and shown to the tenant as a generic message.
//
// drivertest holds a suite every driver runs in its own go test; fake and noop are test
// adapters.
package driver

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// Capability is one capability document as a driver sees it.
type Capability struct {
	// Object is the whole document; a driver converts it to its own type.
	Object *unstructured.Unstructured
	// Spec is the platform's part of the spec.
	Spec platformv1alpha1.CapabilitySpec
	// Cluster is the logical cluster (tenant workspace) the document lives in.
	Cluster string
	// ConnectionDetails are what the capability's connection Secret holds now; nil when
	// there is no Secret (yet, or the tenant deleted it). A driver checks the
	// credentials in it (is the password still the one the thing accepts?) and returns
	// those that are valid in its Observation, so that they are kept; for credentials
	// it cannot vouch for it sets Observation.CredentialsInvalid.
	ConnectionDetails ConnectionDetails
}

// Driver brings one provider's capabilities to life on a runtime. Every method must be
// idempotent and must not block on slow work: Create starts provisioning and returns,
// and later Observe calls report when the thing is Ready.
type Driver interface {
	// Observe reports whether the thing exists, whether it matches the spec, whether
	// it is ready, and its connection details.
	Observe(ctx context.Context, c *Capability) (Observation, error)
	// Create starts bringing the thing to life. It returns the connection details that
	// only creation can know (a generated password, say); Observe returns the rest.
	Create(ctx context.Context, c *Capability) (ConnectionDetails, error)
	// Update brings an existing thing in line with the spec.
	Update(ctx context.Context, c *Capability) error
	// Delete removes the thing. Deleting what does not exist succeeds.
	Delete(ctx context.Context, c *Capability) error
}

// ConnectionDetails are written into the capability's connection Secret.
type ConnectionDetails map[string][]byte

// Observation is what a driver sees of one thing on the runtime.
type Observation struct {
	// Exists is false when the thing is not on the runtime (yet, or any more).
	Exists bool
	// UpToDate is false when the thing differs from the spec (drift).
	UpToDate bool
	// Ready is true when the tenant can use it.
	Ready bool
	// Message says, in words a tenant can act on, why it is not ready or not up to date.
	Message string
	// ConnectionDetails are the details Observe can tell (host, port, ...); they are
	// merged over the ones Create returned.
	ConnectionDetails ConnectionDetails
	// Usage is what the thing uses on the runtime, added up into the runtime's
	// status.usage.
	Usage corev1.ResourceList
	// Status holds the kind's own status fields (for example the real name of a
	// database), by their top-level JSON name under status. The servicelet writes them
	// together with its conditions. They must not name the platform's fields.
	Status map[string]any
	// CredentialsInvalid, when set, says in a tenant's words why the credentials in
	// the connection Secret do not work (missing, or changed by hand). The servicelet
	// then asks a CredentialRotator for new ones and says so in an event.
	CredentialsInvalid string
}

// CredentialRotator is implemented by drivers whose things have credentials. The
// servicelet calls it when a tenant asks for new credentials (the annotation
// platform.msp.dev/rotate-credentials) and when Observe reports the Secret's ones
// invalid.
type CredentialRotator interface {
	// RotateCredentials issues new credentials for an existing thing, so that the old
	// ones stop working, and returns the connection details that change.
	RotateCredentials(ctx context.Context, c *Capability) (ConnectionDetails, error)
}

// RuntimeProbe reports on the runtime as a whole, for its ServiceRuntime twin.
type RuntimeProbe interface {
	// Probe returns nil when the runtime is usable, or an error that says why not.
	Probe(ctx context.Context) error
}

// CapacityReporter is implemented by a RuntimeProbe whose runtime can tell how much it
// holds (a Kubernetes cluster: its nodes' allocatable). The servicelet asks it with
// every probe and writes what it reports into the twin's status.capacity, where each
// resource it names counts instead of the one the runtime was registered with
// (spec.capacity). Nil or empty reports nothing of its own, and spec.capacity counts.
type CapacityReporter interface {
	Capacity(ctx context.Context) (corev1.ResourceList, error)
}

// TenantError is an error whose message may be shown to the tenant as it is: it says
// what is wrong in the tenant's terms and leaks nothing of the provider's internals.
// Other errors reach the tenant as a generic message; their details stay in the
// servicelet's log.
type TenantError struct{ Message string }

func (e *TenantError) Error() string { return e.Message }

// NewTenantError returns an error whose message the tenant may read.
func NewTenantError(msg string) error { return &TenantError{Message: msg} }
