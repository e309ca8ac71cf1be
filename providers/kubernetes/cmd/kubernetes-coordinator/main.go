// Command kubernetes-coordinator is the Kubernetes provider's coordinator: the scheduler
// of its Spaces (each counts as the cpu, memory, pods and storage of its quota) and the
// runtime manager of its clusters.
package main

import (
	"github.com/msp-dev/msp/app/coordinator"
	"github.com/msp-dev/msp/providers/kubernetes"
)

func main() { coordinator.Main(kubernetes.Coordinator()) }
