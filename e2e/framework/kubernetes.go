package framework

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/msp-dev/msp/pkg/kubecluster"
	k8sprovider "github.com/msp-dev/msp/providers/kubernetes"
)

// Etcd starts an etcd for the test's Kubernetes clusters (each keeps its data under a
// prefix of its own), stopped when the test ends.
func (e *Env) Etcd(t testing.TB) *kubecluster.Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	etcd, err := kubecluster.StartEtcd(ctx, kubecluster.EtcdOptions{Binary: filepath.Join(e.Bin, "etcd"), Dir: filepath.Join(t.TempDir(), "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Stop)
	return etcd
}

// KubernetesRuntime is a runtime that is a real Kubernetes control plane
// (kube-apiserver and kube-controller-manager on a shared etcd; no kubelet), served by
// the Kubernetes provider's servicelet with its own rights there
// (deploy/kubernetes-servicelet).
type KubernetesRuntime struct {
	*Servicelet
	Cluster *kubecluster.Cluster
	opts    kubecluster.Options
}

// StartKubernetesRuntime starts a cluster named after the runtime on etcd, prepares it
// for the servicelet and starts kubernetes-servicelet for it, registering the runtime;
// both stop when the test ends.
func (p *Provider) StartKubernetesRuntime(t testing.TB, etcd *kubecluster.Etcd, spec ServiceletSpec) *KubernetesRuntime {
	t.Helper()
	r := &KubernetesRuntime{opts: kubecluster.Options{
		Name: spec.Runtime, Dir: filepath.Join(t.TempDir(), "cluster"), Etcd: etcd.Endpoint(),
		APIServer: filepath.Join(p.env.Bin, "kube-apiserver"), ControllerManager: filepath.Join(p.env.Bin, "kube-controller-manager"),
	}}
	r.StartClusterAgain(t)
	kubeconfig, err := k8sprovider.PrepareCluster(context.Background(), r.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	spec.Args = append([]string{"--cluster-kubeconfig", kubeconfig}, spec.Args...)
	r.Servicelet = p.StartProviderServicelet(t, "kubernetes-servicelet", spec)
	return r
}

// Admin is a client of the cluster's admin, for what a test does by hand.
func (r *KubernetesRuntime) Admin(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg, err := r.Cluster.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// StopCluster stops the cluster's control plane, as an outage would; its data stays.
func (r *KubernetesRuntime) StopCluster(t testing.TB) {
	t.Helper()
	r.Cluster.Stop()
}

// StartClusterAgain starts the control plane on the same folder: same port,
// certificates and data.
func (r *KubernetesRuntime) StartClusterAgain(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kubecluster.Start(ctx, r.opts)
	if err != nil {
		t.Fatal(err)
	}
	r.Cluster = cl
	t.Cleanup(cl.Stop)
}
