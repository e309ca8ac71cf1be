// Command msp-servicelet is the servicelet for any provider's export with msp's test
// driver: a capability is a file in --state-dir. It serves every kind the export
// serves, so a provider can try its API, the scheduler and the runtime manager before it
// has a driver; the e2e tests use it. A provider's own servicelet is built on the SDK
// (sdk/servicelet), as providers/postgres/cmd/postgres-servicelet is.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/app/servicelet"
	"github.com/msp-dev/msp/pkg/servicelet/testdriver"
)

func main() {
	var (
		stateDir string
		delay    time.Duration
	)
	servicelet.Main(servicelet.Provider{
		Name: "msp-servicelet", Workspace: "root:providers:postgres", Export: "postgres.msp.dev",
		AddFlags: func(fs *pflag.FlagSet) {
			fs.StringVar(&stateDir, "state-dir", stateDir, "State folder of the test driver (the runtime). Required.")
			fs.DurationVar(&delay, "provision-delay", delay, "How long a created thing takes to become ready.")
		},
		Validate: func() error {
			if stateDir == "" {
				return errors.New("--state-dir is required")
			}
			return nil
		},
		Start: func(_ context.Context, env servicelet.Env) (*servicelet.Runtime, error) {
			d, err := testdriver.New(testdriver.Options{Dir: stateDir, Runtime: env.Runtime, ProvisionDelay: delay})
			if err != nil {
				return nil, err
			}
			return &servicelet.Runtime{Drivers: servicelet.OneDriver(d, env.Kinds), Probe: d}, nil
		},
	})
}
