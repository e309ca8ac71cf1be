// Package balancedallocation scores runtimes higher whose resources would be used
// evenly, so that no runtime runs out of one resource while others sit idle.
package balancedallocation

import (
	"context"
	"math"
	"slices"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/internal/allocation"
)

// Name is the plugin's name.
const Name = "balancedallocation"

// Plugin is the balancedallocation score.
type Plugin struct{}

var _ framework.ScorePlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Score is MaxScore times one less the spread between the most and the least used
// resource after placing c, over the resources that c requests and r's capacity lists.
// With fewer than two such resources, use is balanced by definition: MaxScore.
func (*Plugin) Score(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) (int64, *framework.Status) {
	used := allocation.UsedFractions(c, r)
	if len(used) < 2 {
		return framework.MaxScore, nil
	}
	spread := slices.Max(used) - slices.Min(used)
	return int64(math.Round(float64(framework.MaxScore) * (1 - spread))), nil
}
