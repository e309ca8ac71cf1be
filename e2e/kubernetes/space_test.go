package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubernetesv1alpha1 "github.com/msp-dev/msp/apis/kubernetes/v1alpha1"
	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	k8sprovider "github.com/msp-dev/msp/providers/kubernetes"
)

// greedyPod asks for more cpu than its space ordered.
const greedyPod = `apiVersion: v1
kind: Pod
metadata: {name: greedy}
spec:
  containers:
  - name: app
    image: registry.example/app:1
    resources:
      requests: {cpu: "3", memory: 64Mi}
      limits: {cpu: "3", memory: 64Mi}
`

// A tenant orders a Space in a region on a runtime that is a real cluster, and uses it
// with plain kubectl and the Secret's kubeconfig: its own namespace, nobody else's, and
// no more than it ordered. The cluster's capacity keeps out a space that does not fit,
// drift is put back, an outage of the cluster's API server turns the runtime not Ready
// and the spaces Synced=False until it is back, and the deletion policies hold. With
// nodes, the twin's capacity is their allocatable.
func TestSpaceOnACluster(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProviderFor(t, "kubernetes.msp.dev")
	pc := p.Client(t)
	rt := p.StartKubernetesRuntime(t, env.Etcd(t), framework.ServiceletSpec{
		Runtime: "k8s-eu-de", Region: "eu-de", Country: "DE",
		Capacity: "cpu=4,memory=8Gi,pods=40,storage=20Gi",
		Args:     []string{"--resync-interval=2s"},
	})
	p.StartCoordinator(t)
	acme, globex := p.NewTenant(t).Client(t), p.NewTenant(t).Client(t)
	admin := rt.Admin(t)
	ctx := context.Background()

	create(t, acme, space("team", "eu-de", "cpu", "2", "memory", "2Gi", "pods", "5"))
	team := waitSpace(t, acme, "team", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	if team.Spec.RuntimeName != "k8s-eu-de" || team.Status.Namespace == "" || team.Status.Server != rt.Cluster.URL() {
		t.Fatalf("team: runtime %q, namespace %q, server %q", team.Spec.RuntimeName, team.Status.Namespace, team.Status.Server)
	}
	if team.Status.Location == nil || team.Status.Location.Region != "eu-de" {
		t.Errorf("team's location %+v, want region eu-de", team.Status.Location)
	}
	kc := spaceKubeconfig(t, acme, team)

	// The tenant's own namespace, with plain kubectl and nothing but the kubeconfig.
	env.MustKubectl(t, kc, "", "create", "configmap", "settings", "--from-literal=color=blue")
	if got := env.MustKubectl(t, kc, "", "get", "configmap", "settings", "-o", "jsonpath={.data.color}"); got != "blue" {
		t.Errorf("configmap settings: color %q", got)
	}
	env.MustKubectl(t, kc, "", "create", "deployment", "web", "--image=registry.example/web:1", "--replicas=1")
	// No kubelet: the Deployment's pod stays Pending, but it exists and the quota counts
	// it (the LimitRange gave it requests).
	framework.Eventually(t, time.Minute, "the quota to count the Deployment's pod", func(ctx context.Context) (bool, string, error) {
		q, err := admin.CoreV1().ResourceQuotas(team.Status.Namespace).Get(ctx, k8sprovider.QuotaName, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		used := q.Status.Used["pods"]
		return used.Value() == 1, fmt.Sprintf("used %v", q.Status.Used), nil
	})
	// ... and the runtime's twin reports what the quotas use.
	framework.Eventually(t, time.Minute, "the twin's usage to count the pod", func(ctx context.Context) (bool, string, error) {
		var twin platformv1alpha1.ServiceRuntime
		if err := pc.Get(ctx, client.ObjectKey{Name: "k8s-eu-de"}, &twin); err != nil {
			return false, "", err
		}
		pods, cpu := twin.Status.Usage["pods"], twin.Status.Usage["cpu"]
		return pods.Value() == 1 && cpu.MilliValue() == 100, fmt.Sprintf("usage %v", twin.Status.Usage), nil
	})

	// Nothing beyond it.
	t.Logf("listing namespaces: %s", refused(t, env, kc, "", "forbidden", "get", "namespaces"))
	refused(t, env, kc, "", "forbidden", "get", "pods", "-n", "kube-system")
	create(t, globex, space("team", "eu-de")) // the same name, in another workspace
	other := waitSpace(t, globex, "team", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	if other.Status.Namespace == team.Status.Namespace {
		t.Fatalf("two workspaces' spaces share namespace %s", other.Status.Namespace)
	}
	t.Logf("reading another tenant's namespace: %s",
		refused(t, env, kc, "", "forbidden", "get", "configmaps", "-n", other.Status.Namespace))

	// No more than it ordered: the quota refuses a pod that asks for 3 cpu of 2.
	t.Logf("asking for more than ordered: %s", refused(t, env, kc, greedyPod, "exceeded quota", "apply", "-f", "-"))

	// The cluster's capacity: 2 (acme) + 1 (globex, the default) of 4 cpu are taken, so a
	// space of 2 cpu is not placed there.
	create(t, acme, space("big", "eu-de", "cpu", "2"))
	big := waitSpace(t, acme, "big", platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, time.Minute)
	if cond := meta.FindStatusCondition(big.Status.Conditions, platformv1alpha1.ConditionScheduled); !strings.Contains(cond.Message, "insufficient cpu") {
		t.Errorf("big waits with %q, want insufficient cpu", cond.Message)
	}
	if err := acme.Delete(ctx, big); err != nil {
		t.Fatal(err)
	}

	// Drift: the quota deleted and the admin binding edited by hand are put back.
	ns := team.Status.Namespace
	if err := admin.CoreV1().ResourceQuotas(ns).Delete(ctx, k8sprovider.QuotaName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.RbacV1().RoleBindings(ns).Delete(ctx, k8sprovider.AdminName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the quota and the binding to be put back", func(ctx context.Context) (bool, string, error) {
		q, err := admin.CoreV1().ResourceQuotas(ns).Get(ctx, k8sprovider.QuotaName, metav1.GetOptions{})
		if err != nil {
			return false, "quota: " + err.Error(), nil
		}
		if cpu := q.Spec.Hard["requests.cpu"]; cpu.Value() != 2 {
			return false, fmt.Sprintf("quota hard %v", q.Spec.Hard), nil
		}
		if _, err := admin.RbacV1().RoleBindings(ns).Get(ctx, k8sprovider.AdminName, metav1.GetOptions{}); err != nil {
			return false, "binding: " + err.Error(), nil
		}
		return true, "", nil
	})
	env.MustKubectl(t, kc, "", "get", "configmap", "settings")

	// A namespace deleted by hand is made again, with its fence, once the cluster has
	// finished deleting it.
	create(t, acme, space("scratch", "eu-de"))
	scratch := waitSpace(t, acme, "scratch", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	old, err := admin.CoreV1().Namespaces().Get(ctx, scratch.Status.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CoreV1().Namespaces().Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 2*time.Minute, "the namespace deleted by hand to be made again", func(ctx context.Context) (bool, string, error) {
		got, err := admin.CoreV1().Namespaces().Get(ctx, old.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if got.UID == old.UID {
			return false, "the old namespace, " + string(got.Status.Phase), nil
		}
		_, err = admin.CoreV1().ResourceQuotas(old.Name).Get(ctx, k8sprovider.QuotaName, metav1.GetOptions{})
		return err == nil, fmt.Sprintf("made again; quota: %v", err), nil
	})
	waitSpace(t, acme, "scratch", platformv1alpha1.ConditionSynced, metav1.ConditionTrue, time.Minute)
	if err := acme.Delete(ctx, scratch); err != nil {
		t.Fatal(err)
	}

	// An outage of the cluster's API server.
	rt.StopCluster(t)
	stopped := time.Now()
	msg := runtimeReady(t, pc, "k8s-eu-de", metav1.ConditionFalse, time.Minute)
	t.Logf("runtime not Ready %s after the API server stopped: %s", time.Since(stopped).Round(100*time.Millisecond), msg)
	down := waitSpace(t, acme, "team", platformv1alpha1.ConditionSynced, metav1.ConditionFalse, time.Minute)
	cond := meta.FindStatusCondition(down.Status.Conditions, platformv1alpha1.ConditionSynced)
	if !strings.Contains(cond.Message, "unreachable") || strings.Contains(cond.Message, "127.0.0.1") {
		t.Errorf("while the cluster is down: Synced=False %q; want a readable reason without the provider's addresses", cond.Message)
	}
	t.Logf("while the cluster is down: Synced=False %s: %s", cond.Reason, cond.Message)
	rt.StartClusterAgain(t)
	runtimeReady(t, pc, "k8s-eu-de", metav1.ConditionTrue, 2*time.Minute)
	waitSpace(t, acme, "team", platformv1alpha1.ConditionSynced, metav1.ConditionTrue, time.Minute)
	env.MustKubectl(t, kc, "", "get", "configmap", "settings") // the same kubeconfig works again

	// Orphan leaves the namespace; Delete removes it and waits until it is gone.
	update(t, globex, other, func() { other.Spec.DeletionPolicy = platformv1alpha1.DeletionPolicyOrphan })
	if err := globex.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	waitGone(t, globex, "team", time.Minute)
	if _, err := admin.CoreV1().Namespaces().Get(ctx, other.Status.Namespace, metav1.GetOptions{}); err != nil {
		t.Errorf("the orphaned space's namespace: %v", err)
	}
	if err := acme.Delete(ctx, team); err != nil {
		t.Fatal(err)
	}
	waitGone(t, acme, "team", 2*time.Minute)
	if _, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the deleted space's namespace %s: %v, want it gone before the space is", ns, err)
	}

	// With nodes, the cluster's capacity is theirs: a node registers (as a kubelet
	// would) with 16 cpu allocatable, and the twin's status.capacity says so.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	if node, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	} else {
		node.Status.Capacity = corev1.ResourceList{"cpu": resource.MustParse("16"), "memory": resource.MustParse("64Gi"), "pods": resource.MustParse("110")}
		node.Status.Allocatable = corev1.ResourceList{"cpu": resource.MustParse("15"), "memory": resource.MustParse("60Gi"), "pods": resource.MustParse("110")}
		if _, err := admin.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	framework.Eventually(t, time.Minute, "the twin's capacity to be the node's allocatable", func(ctx context.Context) (bool, string, error) {
		var twin platformv1alpha1.ServiceRuntime
		if err := pc.Get(ctx, client.ObjectKey{Name: "k8s-eu-de"}, &twin); err != nil {
			return false, "", err
		}
		cpu, memory := twin.Status.Capacity["cpu"], twin.Status.Capacity["memory"]
		return cpu.Value() == 15 && memory.Cmp(resource.MustParse("60Gi")) == 0, fmt.Sprintf("status.capacity %v", twin.Status.Capacity), nil
	})
}

// ObserveOnly adopts a namespace the cluster's operator handed to the workspace (and
// refuses one it did not), never changes it, and leaves it when the space is deleted.
func TestObserveOnlyAdoptsANamespace(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProviderFor(t, "kubernetes.msp.dev")
	rt := p.StartKubernetesRuntime(t, env.Etcd(t), framework.ServiceletSpec{
		Runtime: "k8s-adopt", Region: "eu-de", Country: "DE", Capacity: "cpu=4,memory=8Gi,pods=40",
	})
	p.StartCoordinator(t)
	tenant := p.NewTenant(t)
	c := tenant.Client(t)
	admin := rt.Admin(t)
	ctx := context.Background()
	cluster := tenant.ClusterName(t)

	for name, labels := range map[string]map[string]string{
		"legacy-app": {k8sprovider.LabelTenant: cluster},
		"not-yours":  nil,
	} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	observe := func(name, namespace string) *kubernetesv1alpha1.Space {
		s := space(name, "eu-de")
		s.Spec.Namespace = namespace
		s.Spec.ManagementPolicy = platformv1alpha1.ManagementPolicyObserveOnly
		return s
	}
	create(t, c, observe("legacy", "legacy-app"), observe("stolen", "not-yours"))
	legacy := waitSpace(t, c, "legacy", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	if legacy.Status.Namespace != "legacy-app" {
		t.Errorf("legacy adopted %q", legacy.Status.Namespace)
	}
	stolen := waitSpace(t, c, "stolen", platformv1alpha1.ConditionReady, metav1.ConditionFalse, time.Minute)
	if cond := meta.FindStatusCondition(stolen.Status.Conditions, platformv1alpha1.ConditionReady); !strings.Contains(cond.Message, "not given to this workspace") {
		t.Errorf("stolen: Ready=False %s %q, want it to say the namespace is not given to this workspace", cond.Reason, cond.Message)
	}
	// Adopted, not changed: no quota of the platform's appears there.
	if _, err := admin.CoreV1().ResourceQuotas("legacy-app").Get(ctx, k8sprovider.QuotaName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("an adopted namespace got the platform's quota: %v", err)
	}
	for _, s := range []*kubernetesv1alpha1.Space{legacy, stolen} {
		if err := c.Delete(ctx, s); err != nil {
			t.Fatal(err)
		}
		waitGone(t, c, s.Name, time.Minute)
	}
	for _, name := range []string{"legacy-app", "not-yours"} {
		if _, err := admin.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s after its observing space was deleted: %v", name, err)
		}
	}
}
