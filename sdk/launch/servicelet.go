// Package launch describes how msp's components are started, for whoever starts one
// (the runtime manager's procurement drivers, msp-local, the bench, tests): typed
// options whose Args render the command line that the component's Main parses
// (app/servicelet, app/coordinator), so that no launcher spells the flags by hand.
package launch

import "time"

// Servicelet are the common flags of a servicelet (app/servicelet.Main).
type Servicelet struct {
	// Kubeconfig, Workspace, Export and Runtime: --kubeconfig, --workspace, --export and
	// --runtime. Empty ones are left out (the binary's defaults apply).
	Kubeconfig, Workspace, Export, Runtime string
	// Register, when set, registers the runtime (--register and its location and
	// capacity).
	Register *Registration
	// HeartbeatInterval and Resync: --heartbeat-interval and --resync-interval; zero
	// leaves them out.
	HeartbeatInterval, Resync time.Duration
	// DebugAddr: --debug-bind-address.
	DebugAddr string
	// Extra are appended as they are: the provider's own flags, others.
	Extra []string
}

// Registration is where and how big a registered runtime is.
type Registration struct {
	Region, Country, Zone, Cloud string
	// Capacity as the flag takes it, e.g. capabilities=20,storage=20Gi.
	Capacity string
}

// Args returns the command line.
func (a Servicelet) Args() []string {
	var out []string
	add := func(flag, value string) {
		if value != "" {
			out = append(out, flag, value)
		}
	}
	add("--kubeconfig", a.Kubeconfig)
	add("--workspace", a.Workspace)
	add("--export", a.Export)
	add("--runtime", a.Runtime)
	if r := a.Register; r != nil {
		out = append(out, "--register")
		add("--region", r.Region)
		add("--country", r.Country)
		add("--zone", r.Zone)
		add("--cloud", r.Cloud)
		add("--capacity", r.Capacity)
	}
	if a.HeartbeatInterval > 0 {
		add("--heartbeat-interval", a.HeartbeatInterval.String())
	}
	if a.Resync > 0 {
		add("--resync-interval", a.Resync.String())
	}
	add("--debug-bind-address", a.DebugAddr)
	return append(out, a.Extra...)
}
