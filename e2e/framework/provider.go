package framework

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msp-dev/msp/sdk/launch"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hostingv1alpha1 "github.com/msp-dev/msp/apis/hosting/v1alpha1"
	kubernetesv1alpha1 "github.com/msp-dev/msp/apis/kubernetes/v1alpha1"
	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/ports"
	"github.com/msp-dev/msp/pkg/runtimemanager"
)

// Scheme knows the Kubernetes, platform and provider types.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(platformv1alpha1.AddToScheme(s))
	utilruntime.Must(postgresv1alpha1.AddToScheme(s))
	utilruntime.Must(hostingv1alpha1.AddToScheme(s))
	utilruntime.Must(kubernetesv1alpha1.AddToScheme(s))
	return s
}()

// Client returns a typed client on the workspace.
func (w *Workspace) Client(t testing.TB) client.Client {
	t.Helper()
	c, err := client.New(w.Config, client.Options{Scheme: Scheme})
	if err != nil {
		t.Fatalf("failed to create a client for %s: %v", w.Path, err)
	}
	return c
}

// Provider is a provider workspace of a test's own: a copy of the postgres provider's
// APIExport (same API, its own endpoint slice) with its own runtimes, tenants and
// coordinators, so that tests that place capabilities do not see each other's.
type Provider struct {
	*Workspace
	// Export is the APIExport's name.
	Export string
	// Identities are its coordinator's and front door's credentials.
	Identities bootstrap.ProviderIdentities
	// Coordinator is the coordinator binary StartCoordinator runs: the provider's own
	// (postgres-coordinator for postgres.msp.dev), else msp-coordinator.
	Coordinator string
	env         *Env
	frontDoor   *process
}

// NewProvider creates a provider workspace under root:providers that exports the
// postgres.msp.dev API and binds the platform API.
func (e *Env) NewProvider(t testing.TB) *Provider {
	t.Helper()
	return e.NewProviderFor(t, "postgres.msp.dev")
}

// NewProviderFor creates a provider workspace under root:providers that exports the
// given API group (one of apiexports) and binds the platform API.
func (e *Env) NewProviderFor(t testing.TB, group string) *Provider {
	t.Helper()
	return e.NewProviderFrom(t, nil, group)
}

// NewProviderFrom is NewProviderFor with the generated export of a provider of its own
// module: fsys holds a folder named group with its apiexport-*.yaml and
// apiresourceschema-*.yaml (nil: msp's apiexports).
func (e *Env) NewProviderFrom(t testing.TB, fsys fs.FS, group string) *Provider {
	t.Helper()
	ws := e.NewWorkspace(t, "root:providers", UniqueName(t), nil)
	ctx := context.Background()
	objs, err := bootstrap.ExportObjects(fsys, group)
	if err != nil {
		t.Fatal(err)
	}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apis.kcp.io/v1alpha2",
		"kind":       "APIBinding",
		"metadata":   map[string]any{"name": "platform.msp.dev"},
		"spec": map[string]any{"reference": map[string]any{"export": map[string]any{
			"path": "root:platform", "name": "platform.msp.dev",
		}}},
	}}
	if _, err := bootstrap.Apply(ctx, bootstrap.Options{Config: e.Config}, ws.Path, append(objs, binding)...); err != nil {
		t.Fatalf("failed to set up provider %s: %v", ws.Path, err)
	}
	// A ServiceRuntime created before the binding's resources are listed fails with
	// "no matches for kind".
	waitServed(t, ws, "platform.msp.dev/v1alpha1")
	p := &Provider{Workspace: ws, Export: group, env: e, Coordinator: coordinatorFor(group)}
	p.issueIdentities(t)
	return p
}

// ClassRuntimes lists the runtimes of a ServiceRuntimeClass that c sees and that are
// not being removed.
func ClassRuntimes(t testing.TB, c client.Client, class string) []platformv1alpha1.ServiceRuntime {
	t.Helper()
	var list platformv1alpha1.ServiceRuntimeList
	if err := c.List(context.Background(), &list, client.MatchingLabels{runtimemanager.LabelClass: class}); err != nil {
		t.Fatal(err)
	}
	var out []platformv1alpha1.ServiceRuntime
	for _, rt := range list.Items {
		if rt.DeletionTimestamp == nil {
			out = append(out, rt)
		}
	}
	return out
}

// coordinatorFor is the coordinator binary of msp's provider of an API group:
// msp-coordinator for a group without one of its own.
func coordinatorFor(group string) string {
	switch group {
	case "postgres.msp.dev":
		return "postgres-coordinator"
	case "kubernetes.msp.dev":
		return "kubernetes-coordinator"
	}
	return "msp-coordinator"
}

// BindExport binds other's export in this provider's workspace, accepting its
// permission claims: this provider becomes other's tenant (cascading).
func (p *Provider) BindExport(t testing.TB, other *Provider) {
	t.Helper()
	p.bind(t, p.Workspace, other)
	waitServed(t, p.Workspace, other.Export+"/v1alpha1")
	if _, err := bootstrap.Apply(context.Background(), bootstrap.Options{Config: p.env.Config}, p.Path, bootstrap.OrderingRBAC(p.Path, other.Export)...); err != nil {
		t.Fatalf("failed to let %s's coordinator order from %s: %v", p.Path, other.Path, err)
	}
}

func (p *Provider) bind(t testing.TB, ws *Workspace, export *Provider) {
	t.Helper()
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apis.kcp.io/v1alpha2",
		"kind":       "APIBinding",
		"metadata":   map[string]any{"name": export.Export},
		"spec": map[string]any{
			"reference":        map[string]any{"export": map[string]any{"path": export.Path, "name": export.Export}},
			"permissionClaims": []any{claim("secrets"), claim("events")},
		},
	}}
	if _, err := bootstrap.Apply(context.Background(), bootstrap.Options{Config: p.env.Config}, ws.Path, binding); err != nil {
		t.Fatalf("failed to bind %s in %s: %v", export.Export, ws.Path, err)
	}
}

// NewTenant creates a workspace under root:tenants that binds this provider's export,
// accepting its permission claims, and waits until the API is served there.
func (p *Provider) NewTenant(t testing.TB) *Workspace {
	t.Helper()
	ws := p.env.NewWorkspace(t, "root:tenants", UniqueName(t), nil)
	p.bind(t, ws, p)
	waitServed(t, ws, p.Export+"/v1alpha1")
	return ws
}

func claim(resource string) map[string]any {
	verbs := []any{"get", "list", "watch", "create", "update", "patch"}
	if resource == "secrets" {
		verbs = append(verbs, "delete")
	}
	return map[string]any{
		"group": "", "resource": resource, "verbs": verbs,
		"selector": map[string]any{"matchAll": true}, "state": "Accepted",
	}
}

// RuntimeSpec describes a runtime a test registers.
type RuntimeSpec struct {
	Name, Region, Country, Zone string
	// Capacity in "capabilities"; 0 leaves it unlimited.
	Capabilities int64
	Labels       map[string]string
	Taints       []platformv1alpha1.Taint
}

// AddRuntime registers a ServiceRuntime hosting PostgresDatabases and reports it Ready
// with a fresh heartbeat, as its servicelet would.
func (p *Provider) AddRuntime(t testing.TB, spec RuntimeSpec) *platformv1alpha1.ServiceRuntime {
	t.Helper()
	rt := platformv1alpha1.ServiceRuntimeSpec{
		Location:     platformv1alpha1.Location{Region: spec.Region, Country: spec.Country, Zone: spec.Zone},
		Capabilities: []platformv1alpha1.CapabilityKind{{Group: "postgres.msp.dev", Kind: "PostgresDatabase"}},
		Taints:       spec.Taints,
	}
	if spec.Capabilities > 0 {
		rt.Capacity = corev1.ResourceList{platformv1alpha1.ResourceCapabilities: *resource.NewQuantity(spec.Capabilities, resource.DecimalSI)}
	}
	return p.AddRuntimeWith(t, spec.Name, spec.Labels, rt)
}

// AddRuntimeWith registers a ServiceRuntime with any spec and reports it Ready with a
// fresh heartbeat, as its servicelet would. A running coordinator's runtime guard adds
// its finalizer meanwhile, so the report is retried on a conflict.
func (p *Provider) AddRuntimeWith(t testing.TB, name string, labels map[string]string, spec platformv1alpha1.ServiceRuntimeSpec) *platformv1alpha1.ServiceRuntime {
	t.Helper()
	ctx := context.Background()
	c := p.Client(t)
	rt := &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: spec}
	if err := c.Create(ctx, rt); err != nil {
		t.Fatalf("failed to create runtime %s: %v", name, err)
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(rt), rt); err != nil {
			return err
		}
		now := metav1.Now()
		rt.Status.LastHeartbeatTime = &now
		meta.SetStatusCondition(&rt.Status.Conditions, metav1.Condition{
			Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: platformv1alpha1.ReasonHeartbeatFresh, Message: "reported by the test",
		})
		return c.Status().Update(ctx, rt)
	})
	if err != nil {
		t.Fatalf("failed to report runtime %s ready: %v", name, err)
	}
	return rt
}

// Coordinator is a running coordinator process.
type Coordinator struct {
	*process
	// MetricsAddr is where it serves /metrics.
	MetricsAddr string
}

// StartCoordinator runs the provider's coordinator until the test ends, with extra
// flags. A long heartbeat timeout lets tests report runtimes Ready once.
func (p *Provider) StartCoordinator(t testing.TB, extraArgs ...string) *Coordinator {
	t.Helper()
	return p.StartCoordinatorWith(t, launch.Coordinator{Extra: extraArgs})
}

// StartCoordinatorWith runs the provider's coordinator until the test ends, with the
// provider's identities and these options (a heartbeat timeout of 1h unless set; a free
// metrics port).
func (p *Provider) StartCoordinatorWith(t testing.TB, opts launch.Coordinator) *Coordinator {
	t.Helper()
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := logDir(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", port)
	c := p.Identities.Coordinator()
	c.MetricsAddr, c.HeartbeatTimeout = metrics, time.Hour
	if opts.HeartbeatTimeout > 0 {
		c.HeartbeatTimeout = opts.HeartbeatTimeout
	}
	c.PprofAddr, c.LeaderElect, c.ReplicaID, c.RuntimeManager = opts.PprofAddr, opts.LeaderElect, opts.ReplicaID, opts.RuntimeManager
	// Extra flags for every coordinator, e.g. MSP_E2E_COORDINATOR_ARGS=--pprof-bind-address=127.0.0.1:6060
	c.Extra = append(opts.Extra, strings.Fields(os.Getenv("MSP_E2E_COORDINATOR_ARGS"))...)
	co := &Coordinator{
		process:     startProcess(t, p.coordinatorBinary(), filepath.Join(dir, fmt.Sprintf("coordinator-%d.log", port)), c.Args()...),
		MetricsAddr: metrics,
	}
	t.Cleanup(func() {
		co.Stop()
		co.logTail(t, "the coordinator")
	})
	return co
}

// coordinatorBinary is the coordinator's executable: Coordinator from the bin folder,
// or as it is when it is an absolute path (a provider module's own build).
func (p *Provider) coordinatorBinary() string {
	if filepath.IsAbs(p.Coordinator) {
		return p.Coordinator
	}
	return filepath.Join(p.env.Bin, p.Coordinator)
}

func waitServed(t testing.TB, ws *Workspace, gv string) {
	t.Helper()
	disco := discoveryFor(ws)
	Eventually(t, time.Minute, gv+" to be served in "+ws.Path, func(context.Context) (bool, string, error) {
		// The group version can answer before the binding's resources are listed in it,
		// and a create in that moment fails with "no matches for kind".
		list, err := disco.ServerResourcesForGroupVersion(gv)
		if err != nil {
			return false, "", err
		}
		return len(list.APIResources) > 0, "no resources listed yet", nil
	})
}
