// Command postgres-servicelet runs next to one PostgreSQL server (a service runtime of
// the postgres provider) and creates the PostgresDatabases assigned to it.
package main

import (
	"github.com/msp-dev/msp/app/servicelet"
	"github.com/msp-dev/msp/providers/postgres"
)

func main() { servicelet.Main(postgres.Servicelet(&postgres.ServiceletOptions{})) }
