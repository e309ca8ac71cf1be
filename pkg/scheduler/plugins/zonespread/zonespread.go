// Package zonespread scores runtimes in zones that host fewer of the tenant's
// capabilities of the same kind higher, for capabilities with
// placement.spreadAcrossZones, so that one zone failing takes down as few as possible.
package zonespread

import (
	"context"
	"fmt"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "zonespread"

// Plugin is the zonespread score.
type Plugin struct{}

var (
	_ framework.PreScorePlugin = (*Plugin)(nil)
	_ framework.ScorePlugin    = (*Plugin)(nil)
)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// zoneCounts is the cycle's count of the tenant's capabilities of the kind, per zone.
type zoneCounts struct {
	perZone map[string]int
	max     int
}

// PreScore counts, per zone of the feasible runtimes, the capabilities of c's workspace
// and kind on them. Runtimes without a zone count as one zone of their own: an unknown
// failure domain is still a failure domain.
func (*Plugin) PreScore(_ context.Context, state *framework.CycleState, c *framework.Capability, feasible []*framework.RuntimeInfo) *framework.Status {
	if !c.Spec.Placement.SpreadAcrossZones {
		return nil
	}
	key := framework.TenantKey(c.Cluster, c.GroupKind)
	zc := &zoneCounts{perZone: map[string]int{}}
	for _, r := range feasible {
		zone := r.Runtime.Spec.Location.Zone
		zc.perZone[zone] += r.PerTenant[key]
		zc.max = max(zc.max, zc.perZone[zone])
	}
	state.Write(Name, zc)
	return nil
}

// Score is MaxScore*(max-n)/max for a runtime in a zone with n of the capabilities,
// where max is the most in any zone; MaxScore everywhere while there are none. It is 0
// for everyone when c does not ask to be spread.
func (*Plugin) Score(_ context.Context, state *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) (int64, *framework.Status) {
	if !c.Spec.Placement.SpreadAcrossZones {
		return 0, nil
	}
	v, _ := state.Read(Name)
	zc, ok := v.(*zoneCounts)
	if !ok {
		return 0, framework.AsError(fmt.Errorf("%s: no zone counts in the cycle state; PreScore did not run", Name))
	}
	if zc.max == 0 {
		return framework.MaxScore, nil
	}
	n := zc.perZone[r.Runtime.Spec.Location.Zone]
	return framework.MaxScore * int64(zc.max-n) / int64(zc.max), nil
}
