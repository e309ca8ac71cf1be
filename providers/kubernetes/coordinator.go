package kubernetes

import (
	"context"
	"path/filepath"

	"github.com/msp-dev/msp/app/coordinator"
	"github.com/msp-dev/msp/pkg/kubecluster"
	"github.com/msp-dev/msp/sdk/procurement"
)

// Coordinator is the Kubernetes provider's coordinator: a Space counts as what its quota
// holds (Requests), and a local runtime is a new cluster that its kubernetes-servicelet
// runs itself (--local-cluster-dir), on the etcd the coordinator's
// --local-servicelet-arg=--local-etcd=URL names, or on one of its own; a removed
// cluster's data is deleted from the shared etcd.
func Coordinator() coordinator.Provider {
	return coordinator.Provider{
		Name: "kubernetes-coordinator", Workspace: Workspace, Export: Export, Kinds: Kinds,
		Servicelet: "kubernetes-servicelet",
		Local: &procurement.Local{
			Args: func(dir string) []string {
				return []string{"--local-cluster-dir", filepath.Join(dir, "cluster")}
			},
			// A cluster on a shared etcd keeps its data there: deleted with the runtime.
			Release: func(ctx context.Context, dir string) error {
				return kubecluster.DeleteData(ctx, filepath.Join(dir, "cluster", controlPlaneDir))
			},
		},
	}
}
