package kubernetes

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/kubecluster"
	"github.com/msp-dev/msp/pkg/kubecluster/kubeclustertest"
	"github.com/msp-dev/msp/sdk/driver"
	"github.com/msp-dev/msp/sdk/driver/drivertest"
)

// servicelet returns the cluster's admin client (for what a test does by hand) and a
// client with the servicelet's own rights there (deploy/kubernetes-servicelet), which
// the driver uses: the manifests' rights are what the driver is tested with.
func clients(t *testing.T, cl *kubecluster.Cluster) (admin, own kubernetes.Interface) {
	t.Helper()
	cfg, err := cl.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := PrepareCluster(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	ownCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg), kubernetes.NewForConfigOrDie(ownCfg)
}

func newSpace(runtime, cluster, name, namespace string) *driver.Capability {
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("kubernetes.msp.dev/v1alpha1")
	obj.SetKind("Space")
	obj.SetNamespace("default")
	obj.SetName(name)
	obj.SetGeneration(1)
	_ = unstructured.SetNestedField(obj.Object, runtime, "spec", "runtimeName")
	if namespace != "" {
		_ = unstructured.SetNestedField(obj.Object, namespace, "spec", "namespace")
	}
	return &driver.Capability{Object: obj, Spec: platformv1alpha1.CapabilitySpec{RuntimeName: runtime}, Cluster: cluster}
}

// TestDriverSuite runs drivertest against a real kube-apiserver and controller manager,
// the driver acting with the servicelet's own rights. Drift deletes the space's
// ResourceQuota by hand; Observe must see it and Update put it back. Invalid names a
// namespace that exists and is not a space's (kube-system).
func TestDriverSuite(t *testing.T) {
	cl := kubeclustertest.Start(t)
	admin, own := clients(t, cl)
	d, err := New(Options{Client: own, Server: cl.URL(), CA: cl.CAPEM(), TokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Run(t, drivertest.Harness{
		Driver: d,
		New: func(t *testing.T, name string) *driver.Capability {
			return newSpace(cl.Name(), "tenant-ws", "suite-"+name, "")
		},
		Drift: func(t *testing.T, c *driver.Capability) {
			t.Helper()
			ns := NamespaceName(c.Cluster, c.Object.GetNamespace(), c.Object.GetName(), "")
			if err := admin.CoreV1().ResourceQuotas(ns).Delete(context.Background(), QuotaName, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("deleting the quota by hand: %v", err)
			}
		},
		Invalid: func(t *testing.T) *driver.Capability {
			return newSpace(cl.Name(), "tenant-ws", "taken", "kube-system")
		},
		ReadyTimeout: time.Minute,
		Internals:    []string{cl.AdminKubeconfigPath()},
	})
}

// TestTokenRenewedBeforeItExpires: a space's token is kept while more than a third of
// its validity is left, and renewed (a new, working token) once less is left; the
// cluster accepts the new one.
func TestTokenRenewedBeforeItExpires(t *testing.T) {
	cl := kubeclustertest.Start(t)
	_, own := clients(t, cl)
	now := time.Now()
	d, err := New(Options{Client: own, Server: cl.URL(), CA: cl.CAPEM(), TokenTTL: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := newSpace(cl.Name(), "tenant-ws", "renewed", "")
	details, err := d.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	first := string(details[KeyToken])
	if first == "" {
		t.Fatal("no token in the connection details")
	}
	c.ConnectionDetails = details
	observe := func() string {
		t.Helper()
		obs, err := d.Observe(ctx, c)
		if err != nil || !obs.Ready {
			t.Fatalf("observe: ready %v, %v", obs.Ready, err)
		}
		return string(obs.ConnectionDetails[KeyToken])
	}
	if got := observe(); got != first {
		t.Errorf("a fresh token was replaced")
	}
	now = now.Add(41 * time.Minute) // 19 of 60 minutes left: less than a third
	second := observe()
	if second == first || second == "" {
		t.Fatalf("a token with a third of its time left was not renewed")
	}
	exp, ok := expiry(second)
	if !ok || exp.Sub(time.Now()) < 50*time.Minute {
		t.Errorf("the renewed token expires at %v (ok %v), want about an hour from now", exp, ok)
	}
	// The tenant's kubeconfig with the new token works against the cluster.
	cfg, err := clientcmd.RESTConfigFromKubeConfig(c.ConnectionDetails[KeyKubeconfig])
	if err != nil {
		t.Fatal(err)
	}
	cfg.BearerToken = second
	ns := string(details[KeyNamespace])
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the renewed token does not work in its namespace: %v", err)
	}
}
