// Package capabilitykind filters out runtimes that do not host the capability's kind.
package capabilitykind

import (
	"context"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Name is the plugin's name.
const Name = "capabilitykind"

// ReasonKindNotHosted is why a runtime that does not list the kind does not fit.
const ReasonKindNotHosted = "does not host this kind"

// Plugin is the capabilitykind filter.
type Plugin struct{}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Name returns Name.
func (*Plugin) Name() string { return Name }

// Filter lets c onto r only if r's spec.capabilities lists c's group and kind.
func (*Plugin) Filter(_ context.Context, _ *framework.CycleState, c *framework.Capability, r *framework.RuntimeInfo) *framework.Status {
	for _, k := range r.Runtime.Spec.Capabilities {
		if k.Group == c.GroupKind.Group && k.Kind == c.GroupKind.Kind {
			return nil
		}
	}
	return framework.NewUnschedulable(ReasonKindNotHosted)
}
