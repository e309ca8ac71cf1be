// Command postgres-servicelet runs next to one PostgreSQL server (a service runtime of
// the postgres provider) and creates the PostgresDatabases assigned to it.
package main

import (
	"github.com/msp-dev/msp/providers/postgres"
	"github.com/msp-dev/msp/sdk/servicelet"
)

func main() { servicelet.Main(postgres.Servicelet(&postgres.ServiceletOptions{})) }
