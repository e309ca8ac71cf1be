package kubecluster_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/msp-dev/msp/pkg/kubecluster"
	"github.com/msp-dev/msp/pkg/kubecluster/kubeclustertest"
)

// TestTwoClustersShareOneEtcdAndRestart: two clusters on one etcd do not see each
// other's objects; a cluster stopped and started again on its folder keeps its port,
// its data and the kubeconfig handed out before; the controller manager runs (a new
// namespace gets its default ServiceAccount); deleting a stopped cluster's data leaves
// the other's.
func TestTwoClustersShareOneEtcdAndRestart(t *testing.T) {
	bin := kubeclustertest.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	etcd, err := kubecluster.StartEtcd(ctx, kubecluster.EtcdOptions{Binary: filepath.Join(bin, "etcd"), Dir: filepath.Join(dir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Stop)
	opts := func(name string) kubecluster.Options {
		return kubecluster.Options{Name: name, Dir: filepath.Join(dir, name), Etcd: etcd.Endpoint(),
			APIServer: filepath.Join(bin, "kube-apiserver"), ControllerManager: filepath.Join(bin, "kube-controller-manager")}
	}
	a, err := kubecluster.Start(ctx, opts("a"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	b, err := kubecluster.Start(ctx, opts("b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	client := func(c *kubecluster.Cluster) kubernetes.Interface {
		cfg, err := c.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		return kubernetes.NewForConfigOrDie(cfg)
	}
	ca, cb := client(a), client(b)
	if _, err := ca.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.CoreV1().Namespaces().Get(ctx, "only-in-a", metav1.GetOptions{}); err == nil {
		t.Error("cluster b sees cluster a's namespace")
	}
	waitFor(t, "the namespace's default ServiceAccount (the controller manager runs)", func() bool {
		_, err := ca.CoreV1().ServiceAccounts("only-in-a").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})

	url := a.URL()
	a.Stop()
	a2, err := kubecluster.Start(ctx, opts("a"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a2.Stop)
	if a2.URL() != url {
		t.Errorf("restarted on %s, was %s", a2.URL(), url)
	}
	if _, err := ca.CoreV1().Namespaces().Get(ctx, "only-in-a", metav1.GetOptions{}); err != nil {
		t.Errorf("after the restart, with the old kubeconfig: %v", err)
	}

	// Removing a: its data goes from the shared etcd, b's stays.
	before, err := kubecluster.EtcdKeys(ctx, etcd.Endpoint(), "/clusters/")
	if err != nil {
		t.Fatal(err)
	}
	a2.Stop()
	if err := kubecluster.DeleteData(ctx, filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	after, err := kubecluster.EtcdKeys(ctx, etcd.Endpoint(), "/clusters/")
	if err != nil {
		t.Fatal(err)
	}
	if after == 0 || after >= before {
		t.Errorf("keys under /clusters/: %d before deleting a's data, %d after; want fewer, and b's left", before, after)
	}
	if _, err := cb.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster b after a's data was deleted: %v", err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
