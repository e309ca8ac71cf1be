// Package location filters runtimes by the capability's placement regions, countries,
// zones and clouds.
package location

import (
	"context"
	"slices"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "location"

// Reasons why a runtime does not fit, in the order they are checked.
const (
	// ReasonRegionNotAllowed: the runtime's region is not in placement.regions.
	ReasonRegionNotAllowed = "region not allowed"
	// ReasonCountryNotAllowed: the runtime's country is not in placement.countries.
	ReasonCountryNotAllowed = "country not allowed"
	// ReasonZoneNotAllowed: the runtime's zone is not in placement.zones.
	ReasonZoneNotAllowed = "zone not allowed"
	// ReasonCloudNotAllowed: the runtime's cloud is not in placement.clouds.
	ReasonCloudNotAllowed = "cloud not allowed"
)

// ShardRegionReason is why a runtime outside the region of the capability's kcp shard
// does not fit, when the provider keeps capabilities in their shard's region.
func ShardRegionReason(region string) string {
	return "outside region " + region + " of the workspace's kcp shard"
}

// Plugin is the location filter.
type Plugin struct{}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Filter lets c onto r only if r is in the region of c's kcp shard (when the provider
// keeps capabilities there) and every placement list that is set names r's value. A
// runtime that leaves a value empty matches no list for it: an unknown country is no
// place for data that must stay in one.
func (*Plugin) Filter(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	p, loc := &c.Spec.Placement, &r.Runtime.Spec.Location
	switch {
	case c.ShardRegion != "" && loc.Region != c.ShardRegion:
		return framework.NewUnschedulable(ShardRegionReason(c.ShardRegion))
	case !allows(p.Regions, loc.Region):
		return framework.NewUnschedulable(ReasonRegionNotAllowed)
	case !allows(p.Countries, loc.Country):
		return framework.NewUnschedulable(ReasonCountryNotAllowed)
	case !allows(p.Zones, loc.Zone):
		return framework.NewUnschedulable(ReasonZoneNotAllowed)
	case !allows(p.Clouds, loc.Cloud):
		return framework.NewUnschedulable(ReasonCloudNotAllowed)
	}
	return nil
}

func allows(list []string, v string) bool {
	return len(list) == 0 || (v != "" && slices.Contains(list, v))
}
