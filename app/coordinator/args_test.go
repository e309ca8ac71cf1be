package coordinator

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/sdk/launch"
)

// TestArgsRoundTrip: what launch.Coordinator renders, the coordinator's own flags parse
// back.
func TestArgsRoundTrip(t *testing.T) {
	provider := Provider{Name: "x-coordinator", Workspace: "root:providers:x", Export: "x.dev"}
	tests := []struct {
		name string
		args launch.Coordinator
		want func(*options) // from the defaults
	}{
		{
			name: "a managing coordinator with its identities",
			args: launch.Coordinator{Kubeconfig: "/k", Workspace: "root:providers:p", Export: "p.dev",
				FrontDoorURL: "https://127.0.0.1:1", FrontDoorCAFile: "/ca", MetricsAddr: "127.0.0.1:2", HealthAddr: "127.0.0.1:3", PprofAddr: "127.0.0.1:4",
				HeartbeatTimeout: 20 * time.Second, LeaderElect: true,
				RuntimeManager: &launch.RuntimeManager{Interval: time.Second, Cooldown: 2 * time.Second, LocalDir: "/l", LocalDriver: "test",
					CascadingDir: "/c", ServiceletArgs: []string{"--heartbeat-interval=2s", "--capacity=capabilities=2,storage=1Gi"}}},
			want: func(o *options) {
				o.Kubeconfig, o.Workspace, o.Export = "/k", "root:providers:p", "p.dev"
				o.FrontDoorURL, o.FrontDoorCAFile = "https://127.0.0.1:1", "/ca"
				o.MetricsAddr, o.HealthAddr, o.PprofAddr = "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"
				o.HeartbeatTimeout, o.LeaderElect = 20*time.Second, true
				o.RuntimeManager, o.ManagerInterval, o.ScaleDownCooldown = true, time.Second, 2*time.Second
				o.LocalDir, o.LocalDriver, o.CascadingDir = "/l", "test", "/c"
				// A comma inside one servicelet argument does not split it.
				o.LocalArgs = []string{"--heartbeat-interval=2s", "--capacity=capabilities=2,storage=1Gi"}
			},
		},
		{
			name: "what is not set keeps the binary's defaults",
			args: launch.Coordinator{Extra: []string{"--scheduler-workers=3"}},
			want: func(o *options) { o.Workers = 3 },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := defaultOptions(provider)
			fs := pflag.NewFlagSet("coordinator", pflag.ContinueOnError)
			got.AddFlags(fs)
			if err := fs.Parse(tc.args.Args()); err != nil {
				t.Fatalf("parsing %v: %v", tc.args.Args(), err)
			}
			want := defaultOptions(provider)
			tc.want(want)
			if diff := cmp.Diff(*want, *got, cmp.AllowUnexported(options{})); diff != "" {
				t.Errorf("parsed flags (-want +got):\n%s", diff)
			}
		})
	}
}
