// Command fileshare-servicelet runs one file server of the example fileshare provider:
// the FileShares assigned to it are folders it serves over HTTP.
package main

import (
	"github.com/msp-dev/msp/app/servicelet"
	"github.com/msp-dev/msp/examples/fileshare"
)

func main() { servicelet.Main(fileshare.Servicelet(&fileshare.Options{})) }
