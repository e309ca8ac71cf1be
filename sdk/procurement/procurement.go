// Package procurement is how a provider tells msp's runtime manager to make its
// runtimes. The runtime manager orders a runtime from a ServiceRuntimeClass when no
// runtime fits a capability, and removes runtimes nobody needs; its procurement drivers
// know no provider: what is particular to one comes from here.
//
//   - The "local" driver (the embedded default) runs each runtime on the coordinator's
//     machine as the provider's servicelet with the flags Local.Args returns: the
//     servicelet runs its runtime itself (a postgres servicelet with --local-server-dir
//     starts its own PostgreSQL server).
//   - The "cascading" driver orders each runtime as a capability of another provider,
//     named in the class (spec.driver.parameters apiVersion and kind), and starts the
//     provider's servicelet once that capability is Ready, with the value of one key of
//     its connection Secret in a file whose path is passed with Access.FileFlag.
package procurement

import "context"

// Local says how the provider's servicelet runs one of its runtimes on this machine.
type Local struct {
	// Args returns the servicelet's own flags for a runtime whose folder is dir (it
	// lasts as long as the runtime: restarts of the coordinator keep it). Required.
	Args func(dir string) []string
	// Release, if set, removes what a runtime keeps outside its folder (a cluster's
	// data in a shared etcd, say) when the runtime is removed: after its servicelet
	// has stopped, before the folder is deleted. An error keeps the runtime, and
	// Release is called again on the next pass. Optional.
	Release func(ctx context.Context, dir string) error
}

// Access says how the provider's servicelet reaches a runtime that was ordered as
// another provider's capability.
type Access struct {
	// SecretKey is the key of the capability's connection Secret that carries the
	// runtime's access (a URL with credentials, say). A class may name another one in
	// spec.driver.parameters.secretKey. Required.
	SecretKey string
	// FileFlag is the servicelet flag that takes the path of a file holding that value
	// (for example --postgres-url-file). Required.
	FileFlag string
}
