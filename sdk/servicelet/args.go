package servicelet

import "time"

// Args are the common flags of a servicelet, for whoever starts one (the runtime
// manager's procurement drivers, msp-local, tests): Strings renders them as the command
// line Main parses, so that no launcher spells the flags by hand.
type Args struct {
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

// Strings returns the command line.
func (a Args) Strings() []string {
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
