package coordinator

import (
	"context"
	"fmt"
	"net/url"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/kcp-dev/logicalcluster/v3"
	mcpcache "github.com/kcp-dev/multicluster-provider/pkg/cache"
	mcrecorder "github.com/kcp-dev/multicluster-provider/pkg/events/recorder"
	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"

	"github.com/msp-dev/msp/pkg/scheduler"
)

// lastApplied is kubectl's copy of what a tenant applied: never read by the coordinator.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// pruneForCache drops what the coordinator never reads from an object before a cache
// keeps it: metadata.managedFields (a record per writer, often larger than the spec) and
// kubectl's last-applied annotation. The scheduler writes by merge patch and by
// server-side apply of its own fields, neither of which needs them.
func pruneForCache(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil // not an object (a tombstone): as it is
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		if _, ok := a[lastApplied]; ok {
			delete(a, lastApplied)
			m.SetAnnotations(a)
		}
	}
	return obj, nil
}

// tenantCaches are the coordinator's own wildcard caches of the tenant workspaces, one
// per virtual-workspace endpoint, built with pruneForCache, and the scheduler's Fleet
// over them.
//
// multicluster-provider v0.8.0 builds its wildcard cache with a Scheme alone (no
// transform), so every capability would be kept with its managedFields; its NewCluster
// hook lets the coordinator hand each workspace's scoped cluster a cache of its own
// making instead. The provider's own cache then holds only the APIBindings it engages
// workspaces by. As the Fleet, the caches take one handler per kind on each endpoint's
// informer, not one per workspace (see scheduler.Fleet).
type tenantCaches struct {
	ctx    context.Context
	scheme *runtime.Scheme
	log    logr.Logger

	mu       sync.Mutex
	byHost   map[string]mcpcache.WildcardCache
	handlers []*fleetHandler
	// endpoint is the virtual-workspace host (a kcp shard's) each workspace was
	// engaged through, by logical cluster.
	endpoint map[string]string
}

func newTenantCaches(ctx context.Context, scheme *runtime.Scheme, log logr.Logger) *tenantCaches {
	return &tenantCaches{ctx: ctx, scheme: scheme, log: log, byHost: map[string]mcpcache.WildcardCache{}, endpoint: map[string]string{}}
}

// fleetHandler is one handler of the Fleet, with its registration on each endpoint.
type fleetHandler struct {
	gvk schema.GroupVersionKind
	h   toolscache.ResourceEventHandler

	mu   sync.Mutex
	regs []toolscache.ResourceEventHandlerRegistration
}

// attach adds the handler to the informer of its kind on one endpoint's cache.
func (f *fleetHandler) attach(ctx context.Context, c mcpcache.WildcardCache) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(f.gvk)
	inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	reg, err := inf.AddEventHandler(f.h)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.regs = append(f.regs, reg)
	f.mu.Unlock()
	return nil
}

// HasSynced implements scheduler.Registration.
func (f *fleetHandler) HasSynced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.regs {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

// AddEventHandler implements scheduler.Fleet: h is added on every endpoint's cache now
// and on every endpoint's that is built later.
func (t *tenantCaches) AddEventHandler(ctx context.Context, gvk schema.GroupVersionKind, h toolscache.ResourceEventHandler) (scheduler.Registration, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := &fleetHandler{gvk: gvk, h: h}
	for host, c := range t.byHost {
		if err := f.attach(t.ctx, c); err != nil {
			return nil, fmt.Errorf("failed to follow %s on %s: %w", gvk.Kind, host, err)
		}
	}
	t.handlers = append(t.handlers, f)
	return f, nil
}

// hostOf returns the virtual-workspace host (a kcp shard's) a workspace was engaged
// through; "" when it is not known.
func (t *tenantCaches) hostOf(cluster string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.endpoint[cluster]
}

// cacheOf returns the cache of the endpoint cfg addresses, building it with the
// Fleet's handlers and starting it the first time.
func (t *tenantCaches) cacheOf(cfg *rest.Config) (mcpcache.WildcardCache, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byHost[cfg.Host]; ok {
		return c, nil
	}
	c, err := mcpcache.NewWildcardCache(cfg, cache.Options{Scheme: t.scheme, DefaultTransform: pruneForCache})
	if err != nil {
		return nil, fmt.Errorf("failed to build the cache of %s: %w", cfg.Host, err)
	}
	for _, f := range t.handlers {
		if err := f.attach(t.ctx, c); err != nil {
			return nil, fmt.Errorf("failed to follow %s on %s: %w", f.gvk.Kind, cfg.Host, err)
		}
	}
	go func() {
		if err := c.Start(t.ctx); err != nil {
			t.log.Error(err, "the cache of a virtual-workspace endpoint stopped", "url", cfg.Host)
		}
	}()
	t.byHost[cfg.Host] = c
	return c, nil
}

// newCluster is the provider's NewCluster: the workspace's scoped cluster on this
// endpoint's pruned cache.
func (t *tenantCaches) newCluster(cfg *rest.Config, name logicalcluster.Name, _ mcpcache.WildcardCache, scheme *runtime.Scheme, rec mcrecorder.EventRecorderGetter) (*mcpcache.ScopedCluster, error) {
	c, err := t.cacheOf(cfg)
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(cfg.Host); err == nil {
		t.mu.Lock()
		t.endpoint[name.String()] = u.Host
		t.mu.Unlock()
	}
	return mcpcache.NewScopedCluster(cfg, name, c, scheme, rec)
}

var (
	_ mcprovider.NewClusterFunc = (*tenantCaches)(nil).newCluster
	_ scheduler.Fleet           = (*tenantCaches)(nil)
)
