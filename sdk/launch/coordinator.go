package launch

import "time"

// Coordinator are the common flags of a coordinator (app/coordinator.Main).
type Coordinator struct {
	// Kubeconfig, Workspace and Export: --kubeconfig, --workspace and --export. Empty
	// ones are left out (the binary's defaults apply).
	Kubeconfig, Workspace, Export string
	// FrontDoorURL and FrontDoorCAFile: --servicelet-frontdoor-url and
	// --servicelet-frontdoor-ca-file, handed to the servicelets of ordered runtimes.
	FrontDoorURL, FrontDoorCAFile string
	// MetricsAddr, HealthAddr and PprofAddr: --metrics-bind-address,
	// --health-probe-bind-address and --pprof-bind-address.
	MetricsAddr, HealthAddr, PprofAddr string
	// HeartbeatTimeout: --heartbeat-timeout; zero leaves it out.
	HeartbeatTimeout time.Duration
	// LeaderElect: --leader-elect.
	LeaderElect bool
	// ReplicaID: --replica-id, this replica's name; with LeaderElect, a replica started
	// again under the same name takes its Lease back at once.
	ReplicaID string
	// RuntimeManager, when set, runs the runtime manager with its procurement drivers.
	RuntimeManager *RuntimeManager
	// Extra are appended as they are: the provider's own flags, others.
	Extra []string
}

// RuntimeManager are the runtime manager's flags of a coordinator.
type RuntimeManager struct {
	// Interval and Cooldown: --runtime-manager-interval and --scale-down-cooldown; zero
	// leaves them out.
	Interval, Cooldown time.Duration
	// LocalDir enables local procurement (--local-runtimes-dir); LocalDriver is
	// --local-servicelet-driver (provider or test; empty: the binary's default).
	LocalDir, LocalDriver string
	// CascadingDir enables cascading procurement (--cascading-runtimes-dir).
	CascadingDir string
	// ServiceletArgs are extra flags for the ordered runtimes' servicelets
	// (--local-servicelet-arg, one each).
	ServiceletArgs []string
}

// Args returns the command line.
func (c Coordinator) Args() []string {
	var out []string
	add := func(flag, value string) {
		if value != "" {
			out = append(out, flag, value)
		}
	}
	add("--kubeconfig", c.Kubeconfig)
	add("--workspace", c.Workspace)
	add("--export", c.Export)
	add("--servicelet-frontdoor-url", c.FrontDoorURL)
	add("--servicelet-frontdoor-ca-file", c.FrontDoorCAFile)
	add("--metrics-bind-address", c.MetricsAddr)
	add("--health-probe-bind-address", c.HealthAddr)
	add("--pprof-bind-address", c.PprofAddr)
	if c.HeartbeatTimeout > 0 {
		add("--heartbeat-timeout", c.HeartbeatTimeout.String())
	}
	if c.LeaderElect {
		out = append(out, "--leader-elect")
	}
	add("--replica-id", c.ReplicaID)
	if m := c.RuntimeManager; m != nil {
		out = append(out, "--runtime-manager")
		if m.Interval > 0 {
			add("--runtime-manager-interval", m.Interval.String())
		}
		if m.Cooldown > 0 {
			add("--scale-down-cooldown", m.Cooldown.String())
		}
		add("--local-runtimes-dir", m.LocalDir)
		add("--local-servicelet-driver", m.LocalDriver)
		add("--cascading-runtimes-dir", m.CascadingDir)
		for _, a := range m.ServiceletArgs {
			out = append(out, "--local-servicelet-arg="+a)
		}
	}
	return append(out, c.Extra...)
}
