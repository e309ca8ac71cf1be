package servicelet

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/sdk/launch"
)

// TestArgsRoundTrip: what Args renders, the servicelet's own flags parse back.
func TestArgsRoundTrip(t *testing.T) {
	provider := Provider{Workspace: "root:providers:x", Export: "x.dev"}
	tests := []struct {
		name string
		args launch.Servicelet
		want func(*options) // from the defaults
	}{
		{
			name: "a registered runtime",
			args: launch.Servicelet{Kubeconfig: "/k", Workspace: "root:providers:p", Export: "p.dev", Runtime: "rt-1",
				Register:          &launch.Registration{Region: "eu-de", Country: "DE", Zone: "eu-de-1", Cloud: "local", Capacity: "capabilities=20"},
				HeartbeatInterval: 2 * time.Second, Resync: 3 * time.Second, DebugAddr: "127.0.0.1:9"},
			want: func(o *options) {
				o.Kubeconfig, o.Workspace, o.Export, o.Runtime = "/k", "root:providers:p", "p.dev", "rt-1"
				o.Register, o.Region, o.Country, o.Zone, o.Cloud, o.Capacity = true, "eu-de", "DE", "eu-de-1", "local", "capabilities=20"
				o.HeartbeatInterval, o.Resync, o.DebugAddr = 2*time.Second, 3*time.Second, "127.0.0.1:9"
			},
		},
		{
			name: "what is not set keeps the binary's defaults",
			args: launch.Servicelet{Runtime: "rt-2", Extra: []string{"--workers=3"}},
			want: func(o *options) { o.Runtime, o.Workers = "rt-2", 3 },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := defaultOptions(provider)
			fs := pflag.NewFlagSet("servicelet", pflag.ContinueOnError)
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
