package framework

import (
	"context"
	"net/http"

	"github.com/msp-dev/msp/pkg/metrics"
)

// Scrape reads the plain counters and gauges of the /metrics endpoint at addr, keyed by
// name and labels as printed (e.g. `msp_scheduler_attempts_total{result="scheduled"}`).
func Scrape(ctx context.Context, addr string) (map[string]float64, error) {
	return metrics.Scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics")
}
