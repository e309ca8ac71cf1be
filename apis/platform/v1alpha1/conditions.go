package v1alpha1

// Condition types of capabilities.
const (
	// ConditionScheduled is True once a runtime has been chosen for the capability.
	ConditionScheduled = "Scheduled"
	// ConditionReady is True while the thing on the runtime is usable.
	ConditionReady = "Ready"
	// ConditionSynced is True when the last reconcile succeeded; when False its
	// message says what went wrong.
	ConditionSynced = "Synced"
)

// Reasons of the Scheduled condition.
const (
	// ReasonAssigned: the scheduler wrote the runtime's name into the capability.
	ReasonAssigned = "Assigned"
	// ReasonUnschedulable: no runtime fits; the message counts the reasons.
	ReasonUnschedulable = "Unschedulable"
	// ReasonRuntimeNotFound: the runtime the consumer named does not exist.
	ReasonRuntimeNotFound = "RuntimeNotFound"
	// ReasonRuntimeDoesNotFit: the runtime the consumer named does not meet the
	// capability's constraints.
	ReasonRuntimeDoesNotFit = "RuntimeDoesNotFit"
	// ReasonRuntimeNotPermitted: the consumer named a runtime its workspace may not use
	// (the provider grants the verb use on serviceruntimes).
	ReasonRuntimeNotPermitted = "RuntimeNotPermitted"
	// ReasonWaitingForRuntime: the runtime manager ordered a runtime for the capability.
	ReasonWaitingForRuntime = "WaitingForRuntime"
)

// Reasons of the Ready condition.
const (
	// ReasonAvailable: the thing is up and usable.
	ReasonAvailable = "Available"
	// ReasonCreating: the thing is being brought to life.
	ReasonCreating = "Creating"
	// ReasonDeleting: the thing is being removed.
	ReasonDeleting = "Deleting"
	// ReasonUnavailable: the thing exists but cannot be used right now.
	ReasonUnavailable = "Unavailable"
)

// Reasons of the Synced condition.
const (
	// ReasonReconcileSuccess: the last reconcile succeeded.
	ReasonReconcileSuccess = "ReconcileSuccess"
	// ReasonReconcileError: the last reconcile failed; the message says why.
	ReasonReconcileError = "ReconcileError"
	// ReasonReconcilePaused: the pause annotation stops reconciliation.
	ReasonReconcilePaused = "ReconcilePaused"
)

// Reasons of events about credentials.
const (
	// ReasonCredentialsRotated: new credentials were issued, because the tenant asked
	// or because the connection Secret lost or changed the old ones.
	ReasonCredentialsRotated = "CredentialsRotated"
)

// Condition types and reasons of service runtimes.
const (
	// ReasonHeartbeatFresh: the servicelet reports in time.
	ReasonHeartbeatFresh = "HeartbeatFresh"
	// ReasonHeartbeatMissed: the servicelet has not reported within the bound.
	ReasonHeartbeatMissed = "HeartbeatMissed"
	// ReasonRuntimeUnavailable: the servicelet reports but the runtime itself is unusable.
	ReasonRuntimeUnavailable = "RuntimeUnavailable"
	// ConditionRemoval is True on a ServiceRuntime that is being removed while
	// capabilities still count on it; its message says how many and in which workspaces.
	ConditionRemoval = "Removal"
	// ReasonHostsCapabilities: the runtime is being removed but still hosts capabilities;
	// it goes once they are deleted (also the reason of the Warning event on the twin).
	ReasonHostsCapabilities = "HostsCapabilities"
	// ReasonRuntimeRemoval is the reason of the Warning event a tenant's capability gets
	// when the provider removes its runtime.
	ReasonRuntimeRemoval = "RuntimeRemoval"
)

// Reasons of a runtime class's Ready condition.
const (
	// ReasonDriverAvailable: the coordinator runs the class's procurement driver.
	ReasonDriverAvailable = "DriverAvailable"
	// ReasonDriverUnavailable: the coordinator runs no procurement driver of the class's
	// name; nothing of the class is ordered or removed.
	ReasonDriverUnavailable = "DriverUnavailable"
)

// Well-known labels, annotations and finalizers.
const (
	// LabelRuntime carries the same value as spec.runtimeName. The scheduler sets it
	// together with the assignment; a servicelet selects its shard by it server-side.
	LabelRuntime = "platform.msp.dev/runtime"
	// AnnotationPaused set to "true" stops the servicelet from reconciling the capability.
	// Any other value is ignored, and the Synced condition says so.
	AnnotationPaused = "platform.msp.dev/paused"
	// AnnotationRotateCredentials asks for new credentials: whenever its value changes
	// (a timestamp, say), the servicelet issues new ones, writes them into the connection
	// Secret and records the value in status.credentials.rotationToken.
	AnnotationRotateCredentials = "platform.msp.dev/rotate-credentials"
	// LabelKind on a connection Secret names the kind of the capability it belongs to.
	LabelKind = "platform.msp.dev/kind"
	// AnnotationReservations on a ServiceRuntime holds the placements coordinator
	// replicas that share the tenant workspaces (--shard-workspaces) made on it and may
	// not see in their caches yet, as JSON: capability key → requests, time, replica.
	// Each replica writes it guarded by the runtime's resourceVersion before it assigns a
	// capability, so that two replicas never fill one runtime beyond its capacity.
	AnnotationReservations = "platform.msp.dev/reservations"
	// LabelCoordinatorPeers marks the Lease of each active replica of a coordinator that
	// shares the tenant workspaces (--shard-workspaces); its value is the export.
	LabelCoordinatorPeers = "platform.msp.dev/coordinator-peers"
	// LabelShardRegion on an APIExportEndpointSlice in the provider workspace names the
	// region of the kcp shards its partition selects (a slice <export>-<region>): a
	// coordinator with --shard-locality keeps the capabilities of a workspace on such a
	// shard to runtimes of that region, and that region's servicelets follow the slice.
	LabelShardRegion = "platform.msp.dev/region"
	// AnnotationCapability on a connection Secret names the capability it belongs to
	// (an annotation: names may be longer than a label value may be).
	AnnotationCapability = "platform.msp.dev/capability"
	// FinalizerServicelet is owned by the servicelet that brought the capability to life.
	FinalizerServicelet = "platform.msp.dev/servicelet"
	// FinalizerHostedCapabilities is on every ServiceRuntime, owned by the coordinator
	// (its runtime guard): a runtime being removed stays until no capability counts on
	// it, so that its servicelet can still delete them for their tenants.
	FinalizerHostedCapabilities = "platform.msp.dev/hosted-capabilities"
)
