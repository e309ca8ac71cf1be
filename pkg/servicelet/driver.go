// Package servicelet is the agent that runs next to one service runtime: it connects
// outbound to the provider's APIExport virtual workspace, watches only the capabilities
// assigned to its runtime, brings them to life through the provider's drivers (one per
// kind, see sdk/driver), writes their status and connection details back into the
// tenant's workspace, and keeps its runtime's digital twin (ServiceRuntime) true.
//
// The shared Reconciler owns the finalizer, the Ready and Synced conditions, events,
// retries, the pause annotation, the deletion policy and the observe-only management
// policy; a driver only observes, creates, updates and deletes.
package servicelet

import (
	"errors"

	"github.com/msp-dev/msp/sdk/driver"
)

// tenantMessage returns what a tenant may read of err, for the step that failed.
func tenantMessage(step string, err error) string {
	var te *driver.TenantError
	if errors.As(err, &te) {
		return te.Message
	}
	return "failed to " + step + " on the runtime; the provider has been notified through the servicelet's log"
}
