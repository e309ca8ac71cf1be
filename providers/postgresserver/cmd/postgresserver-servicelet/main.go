// Command postgresserver-servicelet runs on a host that offers PostgreSQL servers as
// capabilities (PostgresServer): one server of its own per capability.
package main

import (
	"github.com/msp-dev/msp/app/servicelet"
	"github.com/msp-dev/msp/providers/postgresserver"
)

func main() {
	servicelet.Main(postgresserver.Servicelet(&postgresserver.ServiceletOptions{}))
}
