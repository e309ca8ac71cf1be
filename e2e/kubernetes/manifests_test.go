package kubernetes

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/kubecluster"
	k8sprovider "github.com/msp-dev/msp/providers/kubernetes"
)

// managedNamespace is a namespace the servicelet may manage.
const managedNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: space-probe
  labels: {kubernetes.msp.dev/managed: "true"}
`

// deploy/kubernetes-servicelet, rendered by kubectl kustomize, passes a server-side
// dry run against a real kube-apiserver, applies, and its admission policy fences the
// servicelet's cluster-wide rights: as the servicelet, nothing outside a managed
// namespace can be changed (no token for a kube-system ServiceAccount, no unlabelled
// namespace), and everything a space needs inside one can.
func TestServiceletManifests(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	etcd := env.Etcd(t)
	cl, err := kubecluster.Start(ctx, kubecluster.Options{
		Name: "manifests", Dir: filepath.Join(t.TempDir(), "cluster"), Etcd: etcd.Endpoint(),
		APIServer: filepath.Join(env.Bin, "kube-apiserver"), ControllerManager: filepath.Join(env.Bin, "kube-controller-manager"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	admin := cl.AdminKubeconfigPath()

	rendered := env.MustKubectl(t, admin, "", "kustomize", filepath.Join("..", "..", "deploy", "kubernetes-servicelet"))
	for _, kind := range []string{"kind: Deployment", "kind: ClusterRole", "kind: ValidatingAdmissionPolicy", "kind: NetworkPolicy", "kind: ConfigMap"} {
		if !strings.Contains(rendered, kind) {
			t.Errorf("the rendered manifests lack %s", kind)
		}
	}
	// A dry run creates nothing, so the objects in msp-system need the namespace first.
	env.MustKubectl(t, admin, "", "create", "namespace", "msp-system")
	out := env.MustKubectl(t, admin, rendered, "apply", "--dry-run=server", "-f", "-")
	t.Logf("server-side dry run:\n%s", out)
	env.MustKubectl(t, admin, rendered, "apply", "-f", "-")

	servicelet, err := k8sprovider.PrepareCluster(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(env.MustKubectl(t, servicelet, "", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")); got != k8sprovider.ServiceletUser {
		t.Fatalf("the servicelet's kubeconfig is %q, want %q", got, k8sprovider.ServiceletUser)
	}
	// The policy takes a moment to be loaded by the API server.
	const fence = "changes only the namespaces it manages"
	framework.Eventually(t, time.Minute, "the admission policy to refuse a token for kube-system", func(context.Context) (bool, string, error) {
		res := env.Kubectl(t, servicelet, "", "create", "token", "default", "-n", "kube-system")
		return res.Err != nil && strings.Contains(res.Stderr, fence), res.Stderr, nil
	})
	refused(t, env, servicelet, "", fence, "create", "namespace", "unlabelled")
	env.MustKubectl(t, admin, "", "create", "namespace", "operator-owned")
	refused(t, env, servicelet, "", fence, "delete", "namespace", "operator-owned")
	refused(t, env, servicelet, "", fence, "create", "serviceaccount", "intruder", "-n", "operator-owned")
	refused(t, env, servicelet, "", "forbidden", "get", "secrets", "-n", "kube-system") // not in its rights at all
	refused(t, env, servicelet, "", "forbidden", "create", "clusterrolebinding", "escalate", "--clusterrole=cluster-admin", "--user=me")

	env.MustKubectl(t, servicelet, managedNamespace, "apply", "-f", "-")
	env.MustKubectl(t, servicelet, "", "create", "serviceaccount", "space-admin", "-n", "space-probe")
	env.MustKubectl(t, servicelet, "", "create", "rolebinding", "space-admin", "-n", "space-probe", "--clusterrole=admin", "--serviceaccount=space-probe:space-admin")
	refused(t, env, servicelet, "", "forbidden", "create", "rolebinding", "too-much", "-n", "space-probe", "--clusterrole=cluster-admin", "--serviceaccount=space-probe:space-admin")
	env.MustKubectl(t, servicelet, "", "create", "token", "space-admin", "-n", "space-probe")
	env.MustKubectl(t, servicelet, "", "delete", "namespace", "space-probe")
}
