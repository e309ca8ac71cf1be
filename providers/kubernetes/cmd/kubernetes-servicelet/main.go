// Command kubernetes-servicelet runs next to (or inside) a Kubernetes cluster that offers
// Spaces: a namespace of its own per capability, with a kubeconfig for it.
package main

import (
	"github.com/msp-dev/msp/app/servicelet"
	"github.com/msp-dev/msp/providers/kubernetes"
)

func main() {
	servicelet.Main(kubernetes.Servicelet(&kubernetes.ServiceletOptions{}))
}
