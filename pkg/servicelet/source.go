package servicelet

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpinformers "github.com/kcp-dev/apimachinery/v2/third_party/informers"
	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/log"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/sdk/capability"
)

// Key identifies one capability behind one virtual workspace endpoint.
type Key struct {
	// URL is the endpoint (one per shard) the capability was seen through.
	URL string
	// Kind indexes Source's kinds.
	Kind int
	// Cluster, Namespace and Name identify the document.
	Cluster, Namespace, Name string
}

func (k Key) String() string {
	return fmt.Sprintf("%s/%s/%s", k.Cluster, k.Namespace, k.Name)
}

// Source watches, through every endpoint of the provider's APIExportEndpointSlice, only
// the capabilities labelled with this servicelet's runtime: the label selector goes to
// the server, so other runtimes' capabilities never reach this process.
type Source struct {
	cfg       *rest.Config
	slice     string
	kinds     []capability.Kind
	selector  labels.Selector
	queue     workqueue.TypedRateLimitingInterface[Key]
	pollEvery time.Duration

	mu        sync.Mutex
	endpoints map[string]*endpoint
	// sliceRead: the last read of the endpoint slice succeeded. A slice read with no
	// endpoints means no workspace binds the export yet: nothing to serve, and nothing
	// missing either.
	sliceRead bool
}

type endpoint struct {
	cancel    context.CancelFunc
	informers []kcpcache.ScopeableSharedIndexInformer
	// secrets holds the connection Secrets this runtime's servicelet wrote (they carry
	// the runtime label), so that a Secret deleted or edited by hand is repaired at once.
	secrets kcpcache.ScopeableSharedIndexInformer
	// writeCfg and httpClient address the endpoint; clients holds one dynamic client per
	// workspace written to, all sharing httpClient.
	writeCfg   *rest.Config
	httpClient *http.Client
	clients    map[string]dynamic.Interface
}

// NewSource watches the endpoints of slice (in the workspace cfg addresses) for the
// capabilities of kinds assigned to runtime, feeding their keys to queue.
func NewSource(cfg *rest.Config, slice, runtimeName string, kinds []capability.Kind, queue workqueue.TypedRateLimitingInterface[Key]) *Source {
	return &Source{
		cfg:       cfg,
		slice:     slice,
		kinds:     kinds,
		selector:  labels.SelectorFromSet(labels.Set{platformv1alpha1.LabelRuntime: runtimeName}),
		queue:     queue,
		pollEvery: 10 * time.Second,
		endpoints: map[string]*endpoint{},
	}
}

// Start follows the endpoint slice until ctx ends. Endpoints that appear get informers;
// endpoints that disappear are dropped. kcp being unreachable only delays this: the
// informers retry by themselves and nothing already running is touched.
func (s *Source) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("source")
	dyn, err := dynamic.NewForConfig(s.cfg)
	if err != nil {
		return err
	}
	sliceGVR := schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apiexportendpointslices"}
	for {
		slice, err := dyn.Resource(sliceGVR).Get(ctx, s.slice, metav1.GetOptions{})
		if err != nil {
			logger.V(1).Info("cannot read the endpoint slice yet", "slice", s.slice, "err", err.Error())
			s.setSliceRead(false)
		} else if urls, err := mcprovider.DefaultExtractURLsFromEndpointSlice(slice); err != nil {
			logger.Info("the endpoint slice's endpoints cannot be read; keeping the known ones", "slice", s.slice, "err", err.Error())
			s.setSliceRead(false)
		} else {
			s.sync(ctx, urls)
			s.setSliceRead(true)
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, ep := range s.endpoints {
				ep.cancel()
			}
			s.mu.Unlock()
			return nil
		case <-time.After(s.pollEvery):
		}
	}
}

func (s *Source) sync(ctx context.Context, urls []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, u := range urls {
		want[u] = true
		if _, ok := s.endpoints[u]; ok {
			continue
		}
		ep, err := s.watch(ctx, u)
		if err != nil {
			log.FromContext(ctx).Error(err, "failed to watch endpoint", "url", u)
			continue
		}
		s.endpoints[u] = ep
	}
	for u, ep := range s.endpoints {
		if !want[u] {
			ep.cancel()
			delete(s.endpoints, u)
		}
	}
}

// watch starts one informer per kind on the endpoint's wildcard cluster.
func (s *Source) watch(ctx context.Context, url string) (*endpoint, error) {
	cfg := rest.CopyConfig(s.cfg)
	cfg.Host = url + "/clusters/*"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	epCtx, cancel := context.WithCancel(ctx)
	ep := &endpoint{cancel: cancel}
	ep.writeCfg = rest.CopyConfig(s.cfg)
	ep.writeCfg.Host = url
	if ep.httpClient, err = rest.HTTPClientFor(ep.writeCfg); err != nil {
		cancel()
		return nil, err
	}
	ep.clients = map[string]dynamic.Interface{}
	for i, kind := range s.kinds {
		kindIndex := i
		inf, err := s.informer(epCtx, dyn.Resource(kind.GVK.GroupVersion().WithResource(kind.Resource)), func(u *unstructured.Unstructured) {
			s.queue.Add(Key{URL: url, Kind: kindIndex, Cluster: clusterOf(u), Namespace: u.GetNamespace(), Name: u.GetName()})
		})
		if err != nil {
			cancel()
			return nil, err
		}
		ep.informers = append(ep.informers, inf)
	}
	// The connection Secrets labelled with this runtime: a change to one (a tenant
	// deleting or editing it) queues its capability.
	ep.secrets, err = s.informer(epCtx, dyn.Resource(secretsGVR), func(u *unstructured.Unstructured) {
		name := u.GetAnnotations()[platformv1alpha1.AnnotationCapability]
		kind := u.GetLabels()[platformv1alpha1.LabelKind]
		for i, k := range s.kinds {
			if k.GVK.Kind == kind && name != "" {
				s.queue.Add(Key{URL: url, Kind: i, Cluster: clusterOf(u), Namespace: u.GetNamespace(), Name: name})
			}
		}
	})
	if err != nil {
		cancel()
		return nil, err
	}
	return ep, nil
}

// informer runs, until ctx ends, an informer on ri restricted server-side to this
// runtime's label, calling changed with every object added, updated or deleted.
func (s *Source) informer(ctx context.Context, ri dynamic.NamespaceableResourceInterface, changed func(*unstructured.Unstructured)) (kcpcache.ScopeableSharedIndexInformer, error) {
	selector := s.selector.String()
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return ri.Watch(ctx, o)
		},
	}
	inf := kcpinformers.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, toolscache.Indexers{})
	handle := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if u, ok := obj.(*unstructured.Unstructured); ok {
			changed(u)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
		DeleteFunc: handle,
	}); err != nil {
		return nil, err
	}
	go inf.RunWithContext(ctx)
	return inf, nil
}

// CachedSecret returns the Secret named name in key's workspace and namespace as the
// cache holds it, and whether the cache can tell (false until the Secrets are listed;
// then nil means there is none).
func (s *Source) CachedSecret(key Key, name string) (*unstructured.Unstructured, bool) {
	s.mu.Lock()
	ep := s.endpoints[key.URL]
	s.mu.Unlock()
	if ep == nil || ep.secrets == nil || !ep.secrets.HasSynced() {
		return nil, false
	}
	obj, ok, err := ep.secrets.GetIndexer().GetByKey(kcpcache.ToClusterAwareKey(key.Cluster, key.Namespace, name))
	if err != nil {
		return nil, false
	}
	if !ok {
		return nil, true
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u, true
}

func clusterOf(u *unstructured.Unstructured) string {
	return u.GetAnnotations()["kcp.io/cluster"]
}

// Get returns the cached document of key, or nil.
func (s *Source) Get(key Key) *unstructured.Unstructured {
	s.mu.Lock()
	ep := s.endpoints[key.URL]
	s.mu.Unlock()
	if ep == nil || key.Kind >= len(ep.informers) {
		return nil
	}
	obj, ok, err := ep.informers[key.Kind].GetIndexer().GetByKey(kcpcache.ToClusterAwareKey(key.Cluster, key.Namespace, key.Name))
	if err != nil || !ok {
		return nil
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u
}

// Client returns a dynamic client on key's workspace, through key's endpoint.
func (s *Source) Client(key Key) (dynamic.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.endpoints[key.URL]
	if ep == nil {
		return nil, fmt.Errorf("endpoint %s is gone", key.URL)
	}
	if c, ok := ep.clients[key.Cluster]; ok {
		return c, nil
	}
	cfg := rest.CopyConfig(ep.writeCfg)
	cfg.Host = key.URL + "/clusters/" + key.Cluster
	c, err := dynamic.NewForConfigAndClient(cfg, ep.httpClient)
	if err != nil {
		return nil, err
	}
	ep.clients[key.Cluster] = c
	return c, nil
}

// Cached is one capability in the source's cache.
type Cached struct {
	Key    Key
	Object *unstructured.Unstructured
}

// List returns every cached capability, sorted by key.
func (s *Source) List() []Cached {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Cached
	for url, ep := range s.endpoints {
		for i, inf := range ep.informers {
			for _, obj := range inf.GetStore().List() {
				u, ok := obj.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				out = append(out, Cached{Key: Key{URL: url, Kind: i, Cluster: clusterOf(u), Namespace: u.GetNamespace(), Name: u.GetName()}, Object: u})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// Len is how many capabilities the cache holds.
func (s *Source) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ep := range s.endpoints {
		for _, inf := range ep.informers {
			n += len(inf.GetStore().ListKeys())
		}
	}
	return n
}

func (s *Source) setSliceRead(ok bool) {
	s.mu.Lock()
	s.sliceRead = ok
	s.mu.Unlock()
}

// Synced tells whether the source sees everything assigned to the runtime: every
// endpoint's informers have synced, or the endpoint slice says that no workspace binds
// the export (a provider without tenants yet, whose runtimes are still usable).
func (s *Source) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.endpoints) == 0 {
		return s.sliceRead
	}
	for _, ep := range s.endpoints {
		for _, inf := range ep.informers {
			if !inf.HasSynced() {
				return false
			}
		}
	}
	return true
}

// Kinds returns the kinds the source serves.
func (s *Source) Kinds() []capability.Kind { return s.kinds }

// GVR returns the resource of kind index i.
func (s *Source) GVR(i int) schema.GroupVersionResource {
	return s.kinds[i].GVR()
}
