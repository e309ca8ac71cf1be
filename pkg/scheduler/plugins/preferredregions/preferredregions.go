// Package preferredregions scores runtimes by the capability's placement.preferredRegions.
package preferredregions

import (
	"context"
	"slices"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "preferredregions"

// Plugin is the preferredregions score.
type Plugin struct{}

var _ framework.ScorePlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Score is MaxScore*(n-i)/n for a runtime in the i-th (from 0) of n preferred regions,
// and 0 for one in no preferred region. Without preferences every runtime scores 0,
// which leaves the ranking to the other plugins.
func (*Plugin) Score(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) (int64, *framework.Status) {
	prefs := c.Spec.Placement.PreferredRegions
	i := slices.Index(prefs, r.Runtime.Spec.Location.Region)
	if i < 0 {
		return 0, nil
	}
	n := int64(len(prefs))
	return framework.MaxScore * (n - int64(i)) / n, nil
}
