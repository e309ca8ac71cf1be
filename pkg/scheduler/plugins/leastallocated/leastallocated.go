// Package leastallocated scores emptier runtimes higher, which spreads load.
package leastallocated

import (
	"context"
	"math"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/internal/allocation"
)

// Name is the plugin's name.
const Name = "leastallocated"

// Plugin is the leastallocated score.
type Plugin struct{}

var _ framework.ScorePlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Score is MaxScore times the average free fraction, after placing c, of the resources
// that c requests and r's capacity lists. Without such a resource there is nothing to
// compare, and every runtime gets the neutral MaxScore/2.
func (*Plugin) Score(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) (int64, *framework.Status) {
	used := allocation.UsedFractions(c, r)
	if len(used) == 0 {
		return framework.MaxScore / 2, nil
	}
	var free float64
	for _, u := range used {
		free += 1 - u
	}
	return int64(math.Round(float64(framework.MaxScore) * free / float64(len(used)))), nil
}
