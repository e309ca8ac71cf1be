package frontdoor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/msp-dev/msp/pkg/exports"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpinformers "github.com/kcp-dev/apimachinery/v2/third_party/informers"
	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// annotationCluster is the annotation kcp names an object's logical cluster in.
const annotationCluster = "kcp.io/cluster"

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

// discoverExport reads the kinds the export serves (each resource's schema names its
// kind and storage version) and the provider workspace's logical cluster name, from the
// export's kcp.io/cluster annotation or, failing that, its endpoint slice's URL.
func discoverExport(ctx context.Context, provider *rest.Config, export string) ([]kind, string, error) {
	dyn, err := dynamic.NewForConfig(provider)
	if err != nil {
		return nil, "", err
	}
	ex, err := dyn.Resource(schema.GroupVersionResource{Group: groupKCPAPIs, Version: "v1alpha2", Resource: "apiexports"}).Get(ctx, export, metav1.GetOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("failed to read the APIExport %s: %w", export, err)
	}
	kinds, err := exportKinds(ctx, dyn, ex)
	if err != nil {
		return nil, "", err
	}
	cluster := ex.GetAnnotations()[annotationCluster]
	if cluster == "" {
		if cluster, err = sliceCluster(ctx, dyn, export); err != nil {
			return nil, "", err
		}
	}
	return kinds, cluster, nil
}

// exportKinds lists the kinds the export serves (see exports.Served), as the policy keeps them.
func exportKinds(ctx context.Context, dyn dynamic.Interface, ex *unstructured.Unstructured) ([]kind, error) {
	schemas := dyn.Resource(schema.GroupVersionResource{Group: groupKCPAPIs, Version: "v1alpha1", Resource: "apiresourceschemas"})
	served, err := exports.Served(ctx, ex, func(ctx context.Context, name string) (*unstructured.Unstructured, error) {
		return schemas.Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	out := make([]kind, len(served))
	for i, k := range served {
		out[i] = kind{gvk: k.GVK, resource: k.Resource}
	}
	return out, nil
}

// sliceCluster reads the provider's cluster from the endpoint slice's first URL,
// .../services/apiexport/<cluster>/<export>.
func sliceCluster(ctx context.Context, dyn dynamic.Interface, export string) (string, error) {
	slice, err := dyn.Resource(schema.GroupVersionResource{Group: groupKCPAPIs, Version: "v1alpha1", Resource: "apiexportendpointslices"}).Get(ctx, export, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to read the APIExportEndpointSlice %s: %w", export, err)
	}
	if c := slice.GetAnnotations()[annotationCluster]; c != "" {
		return c, nil
	}
	urls, err := mcprovider.DefaultExtractURLsFromEndpointSlice(slice)
	if err != nil {
		return "", err
	}
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil {
			if rest, ok := strings.CutPrefix(u.Path, virtualWorkspacePrefix); ok {
				if c, _, _ := strings.Cut(rest, "/"); c != "" {
					return c, nil
				}
			}
		}
	}
	return "", fmt.Errorf("cannot tell the logical cluster of the provider workspace: the APIExport %s has no %s annotation and its endpoint slice no endpoints yet", export, annotationCluster)
}

// caches are the front door's own view, through the real virtual workspace with its own
// identity: every capability and connection Secret labelled with a runtime (what is not
// labelled is nobody's), and the servicelets' ServiceAccounts.
type caches struct {
	vwConfig   *rest.Config // the virtual workspace, without /clusters
	httpClient *http.Client
	kinds      map[schema.GroupVersionResource]kcpcache.ScopeableSharedIndexInformer
	secrets    kcpcache.ScopeableSharedIndexInformer
	accounts   toolscache.SharedIndexInformer

	mu      sync.Mutex
	clients map[string]*dynamic.DynamicClient // per logical cluster, for live reads
}

// startCaches starts the informers of one virtual-workspace endpoint (host: a shard's,
// or kcp's) until ctx ends. accounts is the servicelets' ServiceAccounts' informer,
// shared by every endpoint's caches (see startAccounts).
func startCaches(ctx context.Context, base *rest.Config, host, vwPath string, kinds []kind, accounts toolscache.SharedIndexInformer) (*caches, error) {
	vw := rest.CopyConfig(base)
	vw.Host = strings.TrimSuffix(host, "/") + vwPath
	vw.QPS, vw.Burst = 100, 200
	httpClient, err := rest.HTTPClientFor(vw)
	if err != nil {
		return nil, err
	}
	c := &caches{vwConfig: vw, httpClient: httpClient, kinds: map[schema.GroupVersionResource]kcpcache.ScopeableSharedIndexInformer{}, clients: map[string]*dynamic.DynamicClient{}, accounts: accounts}
	all, err := c.client("*")
	if err != nil {
		return nil, err
	}
	for _, k := range kinds {
		c.kinds[k.gvr()] = labelledInformer(ctx, all.Resource(k.gvr()))
	}
	c.secrets = labelledInformer(ctx, all.Resource(secretsGVR))
	return c, nil
}

// startAccounts watches the servicelets' ServiceAccounts in the provider workspace (see
// serviceAccountInformer).
func startAccounts(ctx context.Context, provider *rest.Config, revoke func(runtime string)) (toolscache.SharedIndexInformer, error) {
	cs, err := kubernetes.NewForConfig(provider)
	if err != nil {
		return nil, err
	}
	return serviceAccountInformer(ctx, cs, revoke)
}

// labelledInformer runs, until ctx ends, a wildcard informer on ri of the objects that
// carry the runtime label.
func labelledInformer(ctx context.Context, ri dynamic.NamespaceableResourceInterface) kcpcache.ScopeableSharedIndexInformer {
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = platformv1alpha1.LabelRuntime
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = platformv1alpha1.LabelRuntime
			return ri.Watch(ctx, o)
		},
	}
	inf := kcpinformers.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, toolscache.Indexers{})
	go inf.RunWithContext(ctx)
	return inf
}

// serviceAccountInformer watches the ServiceAccounts of the servicelets' namespace in the
// provider workspace and calls revoke when a servicelet's one goes or changes its UID.
func serviceAccountInformer(ctx context.Context, cs kubernetes.Interface, revoke func(string)) (toolscache.SharedIndexInformer, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ServiceletNamespace))
	inf := factory.Core().V1().ServiceAccounts().Informer()
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.ServiceAccount)
			n, ok2 := newObj.(*corev1.ServiceAccount)
			if ok1 && ok2 && o.UID != n.UID {
				revokeAccount(o.Name, revoke)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if sa, ok := obj.(*corev1.ServiceAccount); ok {
				revokeAccount(sa.Name, revoke)
			}
		},
	}); err != nil {
		return nil, err
	}
	go inf.RunWithContext(ctx)
	return inf, nil
}

func revokeAccount(name string, revoke func(string)) {
	if runtime, ok := strings.CutPrefix(name, serviceAccountPrefix); ok && runtime != "" {
		revoke(runtime)
	}
}

// synced says whether every informer has listed once.
func (c *caches) synced() bool {
	if !c.secrets.HasSynced() || !c.accounts.HasSynced() {
		return false
	}
	for _, inf := range c.kinds {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// serviceAccountUID returns the UID of runtime's servicelet's ServiceAccount; known is
// false while the cache cannot tell, exists false when it has none.
func (c *caches) serviceAccountUID(runtime string) (uid string, exists, known bool) {
	return accountUID(c.accounts, runtime)
}

// accountUID reads runtime's servicelet's ServiceAccount's UID from the accounts' informer.
func accountUID(accounts toolscache.SharedIndexInformer, runtime string) (uid string, exists, known bool) {
	if !accounts.HasSynced() {
		return "", false, false
	}
	obj, ok, err := accounts.GetIndexer().GetByKey(ServiceletNamespace + "/" + ServiceAccountName(runtime))
	if err != nil {
		return "", false, false
	}
	if !ok {
		return "", false, true
	}
	sa, _ := obj.(*corev1.ServiceAccount)
	if sa == nil {
		return "", false, false
	}
	return string(sa.UID), true, true
}

// client returns a dynamic client on one logical cluster ("*": all) of the virtual
// workspace.
func (c *caches) client(cluster string) (*dynamic.DynamicClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.clients[cluster]; ok {
		return d, nil
	}
	cfg := rest.CopyConfig(c.vwConfig)
	cfg.Host += "/clusters/" + cluster
	d, err := dynamic.NewForConfigAndClient(cfg, c.httpClient)
	if err != nil {
		return nil, err
	}
	c.clients[cluster] = d
	return d, nil
}

func (c *caches) capability(ctx context.Context, k kind, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error) {
	inf := c.kinds[k.gvr()]
	if inf == nil {
		return nil, fmt.Errorf("%s is not a kind of the export", k.gvk.Kind)
	}
	return c.get(ctx, inf, k.gvr(), cluster, namespace, name, fresh)
}

func (c *caches) secret(ctx context.Context, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error) {
	return c.get(ctx, c.secrets, secretsGVR, cluster, namespace, name, fresh)
}

// get reads one object from inf's cache (nil when it has none or is not synced), or
// from kcp when fresh is set (nil when kcp has none).
func (c *caches) get(ctx context.Context, inf kcpcache.ScopeableSharedIndexInformer, gvr schema.GroupVersionResource, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error) {
	if !fresh {
		if !inf.HasSynced() {
			return nil, nil
		}
		obj, ok, err := inf.GetIndexer().GetByKey(kcpcache.ToClusterAwareKey(cluster, namespace, name))
		if err != nil || !ok {
			return nil, nil
		}
		u, _ := obj.(*unstructured.Unstructured)
		return u, nil
	}
	if name == "" || cluster == "" || cluster == "*" {
		return nil, nil
	}
	d, err := c.client(cluster)
	if err != nil {
		return nil, err
	}
	u, err := d.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}
