// Command postgres-coordinator is the postgres provider's coordinator: the scheduler of
// its PostgresDatabases (a database's size counts as storage) and the runtime manager
// of its PostgreSQL servers.
package main

import (
	"github.com/msp-dev/msp/app/coordinator"
	"github.com/msp-dev/msp/providers/postgres"
)

func main() { coordinator.Main(postgres.Coordinator()) }
