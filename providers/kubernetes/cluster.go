package kubernetes

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/msp-dev/msp/deploy"
	"github.com/msp-dev/msp/pkg/kubecluster"
)

// ServiceletUser is the servicelet's user on its cluster: the ServiceAccount
// msp-system/kubernetes-servicelet of deploy/kubernetes-servicelet, whose rights
// (rbac.yaml) and fence (admission-policy.yaml) are the servicelet's everywhere.
const ServiceletUser = "system:serviceaccount:msp-system:kubernetes-servicelet"

// ServiceletKubeconfig is the file, in a local cluster's folder, with the servicelet's
// credential for it.
const ServiceletKubeconfig = "servicelet.kubeconfig"

// clusterManifests are the files of deploy/kubernetes-servicelet that give the
// servicelet its identity and rights on a cluster (the Deployment and its network
// policy are for running it inside the cluster).
var clusterManifests = []string{"namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "admission-policy.yaml"}

// PrepareCluster gives a cluster msp runs itself what deploy/kubernetes-servicelet
// gives any cluster (the servicelet's ServiceAccount, its rights and their fence), and
// returns the path of a kubeconfig with which a servicelet outside the cluster acts as
// that ServiceAccount: a client certificate for its user name, from the cluster's CA.
func PrepareCluster(ctx context.Context, cl *kubecluster.Cluster) (string, error) {
	admin, err := cl.RESTConfig()
	if err != nil {
		return "", err
	}
	var manifests [][]byte
	for _, name := range clusterManifests {
		raw, err := fs.ReadFile(deploy.KubernetesServicelet, "kubernetes-servicelet/"+name)
		if err != nil {
			return "", err
		}
		manifests = append(manifests, raw)
	}
	if err := kubecluster.Apply(ctx, admin, manifests...); err != nil {
		return "", fmt.Errorf("failed to give cluster %s the servicelet's rights: %w", cl.Name(), err)
	}
	return cl.UserKubeconfig(ServiceletKubeconfig, ServiceletUser, []string{"system:serviceaccounts", "system:serviceaccounts:msp-system"})
}

// controlPlaneDir is the folder of a local cluster's control plane in its folder.
const controlPlaneDir = "control-plane"

// localCluster is a cluster the servicelet runs itself: its control plane, and its
// etcd unless it shares one.
type localCluster struct {
	cluster *kubecluster.Cluster
	etcd    *kubecluster.Etcd
}

// startLocalCluster starts the runtime's cluster in dir, on the etcd at etcdURL (empty:
// an etcd of its own in dir/etcd), with the binaries in binDir (empty: next to this
// executable), and prepares it for the servicelet.
func startLocalCluster(ctx context.Context, runtime, dir, etcdURL, binDir string) (*localCluster, string, error) {
	if binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, "", err
		}
		binDir = filepath.Dir(exe)
	}
	lc := &localCluster{}
	if etcdURL == "" {
		e, err := kubecluster.StartEtcd(ctx, kubecluster.EtcdOptions{Binary: filepath.Join(binDir, "etcd"), Dir: filepath.Join(dir, "etcd")})
		if err != nil {
			return nil, "", err
		}
		lc.etcd, etcdURL = e, e.Endpoint()
	}
	cl, err := kubecluster.Start(ctx, kubecluster.Options{
		Name: runtime, Dir: filepath.Join(dir, controlPlaneDir), Etcd: etcdURL,
		APIServer: filepath.Join(binDir, "kube-apiserver"), ControllerManager: filepath.Join(binDir, "kube-controller-manager"),
	})
	if err != nil {
		lc.stop()
		return nil, "", err
	}
	lc.cluster = cl
	kubeconfig, err := PrepareCluster(ctx, cl)
	if err != nil {
		lc.stop()
		return nil, "", err
	}
	return lc, kubeconfig, nil
}

// stop stops the control plane, then its own etcd. The data stays for the next start.
func (lc *localCluster) stop() {
	if lc.cluster != nil {
		lc.cluster.Stop()
	}
	if lc.etcd != nil {
		lc.etcd.Stop()
	}
}
