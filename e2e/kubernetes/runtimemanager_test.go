package kubernetes

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/kubecluster"
	"github.com/msp-dev/msp/pkg/runtimemanager"
	"github.com/msp-dev/msp/sdk/launch"
)

// No cluster at all and a class with min 0: a tenant's Space makes the runtime manager
// order a new local cluster (an API server and controller manager on the shared etcd,
// with its servicelet), the Space becomes Ready there, and once it is deleted the
// cluster is removed after the class's grace period, its data in etcd with it.
func TestRuntimeManagerOrdersACluster(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProviderFor(t, "kubernetes.msp.dev")
	pc := p.Client(t)
	etcd := env.Etcd(t)
	const grace = 5 * time.Second
	create(t, pc, &platformv1alpha1.ServiceRuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "k8s"},
		Spec: platformv1alpha1.ServiceRuntimeClassSpec{
			Capabilities: []platformv1alpha1.CapabilityKind{{Group: "kubernetes.msp.dev", Kind: "Space"}},
			Locations:    []platformv1alpha1.Location{{Region: "eu-de", Country: "DE"}},
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("40"),
			},
			MinRuntimes: 0, MaxRuntimes: 2,
			ScaleDownAfter: metav1.Duration{Duration: grace},
			Driver:         platformv1alpha1.RuntimeDriver{Name: "local"},
		},
	})
	p.StartCoordinatorWith(t, launch.Coordinator{HeartbeatTimeout: 20 * time.Second, RuntimeManager: &launch.RuntimeManager{
		Interval: time.Second, Cooldown: 2 * time.Second, LocalDir: t.TempDir(), LocalDriver: "provider",
		ServiceletArgs: []string{"--heartbeat-interval=2s", "--local-etcd=" + etcd.Endpoint()},
	}})
	tenant := p.NewTenant(t).Client(t)
	if n := len(framework.ClassRuntimes(t, pc, "k8s")); n != 0 {
		t.Fatalf("%d runtimes before anyone asked", n)
	}

	ordered := time.Now()
	create(t, tenant, space("app", "eu-de"))
	app := waitSpace(t, tenant, "app", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 3*time.Minute)
	t.Logf("space Ready on the ordered cluster %s after %s", app.Spec.RuntimeName, time.Since(ordered).Round(100*time.Millisecond))
	if !strings.HasPrefix(app.Spec.RuntimeName, "k8s-") {
		t.Fatalf("app landed on %q, want a runtime of class k8s", app.Spec.RuntimeName)
	}
	server := app.Status.Server
	if !answers(server) {
		t.Fatalf("the ordered cluster's API server %s does not answer", server)
	}
	stored, err := kubecluster.EtcdKeys(context.Background(), etcd.Endpoint(), "/clusters/")
	if err != nil || stored == 0 {
		t.Fatalf("the ordered cluster keeps %d keys in the shared etcd (%v)", stored, err)
	}
	kc := spaceKubeconfig(t, tenant, app)
	env.MustKubectl(t, kc, "", "create", "configmap", "hello", "--from-literal=from=the-ordered-cluster")

	if err := tenant.Delete(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	waitGone(t, tenant, "app", 2*time.Minute)
	emptied := time.Now()
	framework.Eventually(t, 2*time.Minute, "the empty cluster to be removed", func(ctx context.Context) (bool, string, error) {
		var list platformv1alpha1.ServiceRuntimeList
		if err := pc.List(ctx, &list, client.MatchingLabels{runtimemanager.LabelClass: "k8s"}); err != nil {
			return false, "", err
		}
		return len(list.Items) == 0, fmt.Sprintf("%d runtimes", len(list.Items)), nil
	})
	t.Logf("cluster removed %s after its last space (grace %s)", time.Since(emptied).Round(100*time.Millisecond), grace)
	framework.Eventually(t, 30*time.Second, "the removed cluster's API server to stop", func(context.Context) (bool, string, error) {
		return !answers(server), "still answers", nil
	})
	// Its data went with it: nothing is left under the clusters' prefix of the shared etcd.
	left, err := kubecluster.EtcdKeys(context.Background(), etcd.Endpoint(), "/clusters/")
	if err != nil || left != 0 {
		t.Errorf("the removed cluster left %d of its %d keys in the shared etcd (%v)", left, stored, err)
	}
}

// answers reports whether an API server answers at url (any HTTP answer counts).
func answers(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}
