package postgres

import (
	"path/filepath"

	"github.com/msp-dev/msp/app/coordinator"
	"github.com/msp-dev/msp/sdk/procurement"
)

// Coordinator is the postgres provider's coordinator: its kinds' requests, its local
// runtimes (a postgres-servicelet that runs its own PostgreSQL server) and how its
// servicelet takes a server ordered from another provider (the "uri" of the
// connection Secret, as --postgres-url-file).
func Coordinator() coordinator.Provider {
	return coordinator.Provider{
		Name: "postgres-coordinator", Workspace: Workspace, Export: Export, Kinds: Kinds,
		Servicelet: "postgres-servicelet",
		Local: &procurement.Local{Args: func(dir string) []string {
			return []string{"--local-server-dir", filepath.Join(dir, "postgres")}
		}},
		Access: &procurement.Access{SecretKey: "uri", FileFlag: "--postgres-url-file"},
	}
}
