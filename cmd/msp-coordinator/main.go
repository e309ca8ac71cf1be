// Command msp-coordinator is the coordinator of a provider that needs no code of its
// own in it: the scheduler places every capability of every bound tenant workspace on a
// ServiceRuntime that fits it (counting spec.resources), and the runtime manager can
// order test runtimes. A provider with kind-specific requests or its own runtimes builds
// its coordinator on the SDK (sdk/coordinator), as
// providers/postgres/cmd/postgres-coordinator does.
package main

import "github.com/msp-dev/msp/app/coordinator"

func main() {
	coordinator.Main(coordinator.Provider{Name: "msp-coordinator", Workspace: "root:providers:postgres", Export: "postgres.msp.dev"})
}
