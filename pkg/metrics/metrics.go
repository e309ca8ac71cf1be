// Package metrics holds msp's Prometheus metrics, registered with controller-runtime's
// registry so that every manager serves them on its /metrics endpoint.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a scheduling attempt.
const (
	ResultScheduled     = "scheduled"
	ResultUnschedulable = "unschedulable"
	ResultConflict      = "conflict"
	ResultError         = "error"
)

var (
	// SchedulingAttempts counts scheduling attempts by result.
	SchedulingAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "msp_scheduler_attempts_total",
		Help: "Scheduling attempts by result: scheduled, unschedulable, conflict (someone else changed the capability first), error.",
	}, []string{"result"})

	// SchedulingDecisionSeconds is how long the framework took to decide.
	SchedulingDecisionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "msp_scheduler_decision_duration_seconds",
		Help:    "Time to filter and score the runtimes for one capability.",
		Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
	})

	// CreateToAssignedSeconds is how long capabilities waited for their runtime.
	CreateToAssignedSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "msp_scheduler_create_to_assigned_seconds",
		Help:    "Time from a capability's creation to the scheduler's assignment being written.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
	})

	// PendingCapabilities is how many capabilities wait for a runtime that fits.
	PendingCapabilities = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "msp_scheduler_pending_capabilities",
		Help: "Capabilities that no runtime fits right now.",
	})

	// AssumedDecisions is how many decisions the scheduler's cache has not shown yet.
	AssumedDecisions = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "msp_scheduler_assumed_decisions",
		Help: "Assignments written but not yet seen in the informer cache.",
	})

	// OwnedWorkspaces is how many tenant workspaces this coordinator replica reconciles
	// when the replicas share them (--shard-workspaces).
	OwnedWorkspaces = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "msp_coordinator_owned_workspaces",
		Help: "Tenant workspaces this coordinator replica reconciles when replicas share the workspaces.",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(
		SchedulingAttempts,
		SchedulingDecisionSeconds,
		CreateToAssignedSeconds,
		PendingCapabilities,
		AssumedDecisions,
		OwnedWorkspaces,
	)
}
