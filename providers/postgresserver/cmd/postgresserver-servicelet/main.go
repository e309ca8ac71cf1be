// Command postgresserver-servicelet runs on a host that offers PostgreSQL servers as
// capabilities (PostgresServer): one server of its own per capability.
package main

import (
	"github.com/msp-dev/msp/providers/postgresserver"
	"github.com/msp-dev/msp/sdk/servicelet"
)

func main() {
	servicelet.Main(postgresserver.Servicelet(&postgresserver.ServiceletOptions{}))
}
