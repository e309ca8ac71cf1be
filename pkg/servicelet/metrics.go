package servicelet

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Results of a reconcile, as msp_servicelet_reconciles_total counts them.
const (
	resultOK    = "ok"
	resultError = "error"
)

// metrics are one servicelet's, on a registry of its own (several servicelets may share
// a process, as in tests), served on the debug address's /metrics.
type metrics struct {
	registry     *prometheus.Registry
	reconciles   *prometheus.CounterVec
	duration     prometheus.Histogram
	createReady  prometheus.Histogram
	twinWrites   *prometheus.CounterVec
	queueDepth   prometheus.GaugeFunc
	capabilities prometheus.GaugeFunc
}

func newMetrics(queueLen, capabilities func() int) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msp_servicelet_reconciles_total",
			Help: "Reconciles of capabilities by result: ok (done, or to be looked at again later), error (retried with backoff).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "msp_servicelet_reconcile_duration_seconds",
			Help:    "Time of one reconcile: the driver's calls and the writes to kcp.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		createReady: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "msp_servicelet_create_to_ready_seconds",
			Help:    "Time from a capability's creation to this servicelet writing Ready=True for the first time.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}),
		twinWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msp_servicelet_twin_writes_total",
			Help: "Writes of the runtime's ServiceRuntime status by why: heartbeat (once per interval), verdict (Ready changed).",
		}, []string{"reason"}),
		queueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "msp_servicelet_queue_depth",
			Help: "Capabilities waiting to be reconciled.",
		}, func() float64 { return float64(queueLen()) }),
		capabilities: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "msp_servicelet_capabilities",
			Help: "Capabilities assigned to this runtime, as the servicelet's cache holds them.",
		}, func() float64 { return float64(capabilities()) }),
	}
	m.registry.MustRegister(m.reconciles, m.duration, m.createReady, m.twinWrites, m.queueDepth, m.capabilities,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
