package coordinator

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/kcp-dev/logicalcluster/v3"
	mcpcache "github.com/kcp-dev/multicluster-provider/pkg/cache"
	mcrecorder "github.com/kcp-dev/multicluster-provider/pkg/events/recorder"
	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"
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
// per virtual-workspace endpoint, built with pruneForCache. multicluster-provider v0.8.0
// builds its wildcard cache with a Scheme alone (no transform), so every capability
// would be kept with its managedFields; its NewCluster hook lets the coordinator hand
// each workspace's scoped cluster a cache of its own making instead. The provider's own
// cache then holds only the APIBindings it engages workspaces by.
type tenantCaches struct {
	ctx    context.Context
	scheme *runtime.Scheme
	log    logr.Logger

	mu     sync.Mutex
	byHost map[string]mcpcache.WildcardCache
}

func newTenantCaches(ctx context.Context, scheme *runtime.Scheme, log logr.Logger) *tenantCaches {
	return &tenantCaches{ctx: ctx, scheme: scheme, log: log, byHost: map[string]mcpcache.WildcardCache{}}
}

// endpoint returns the cache of the endpoint cfg addresses, building and starting it
// the first time.
func (t *tenantCaches) endpoint(cfg *rest.Config) (mcpcache.WildcardCache, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byHost[cfg.Host]; ok {
		return c, nil
	}
	c, err := mcpcache.NewWildcardCache(cfg, cache.Options{Scheme: t.scheme, DefaultTransform: pruneForCache})
	if err != nil {
		return nil, fmt.Errorf("failed to build the cache of %s: %w", cfg.Host, err)
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
	c, err := t.endpoint(cfg)
	if err != nil {
		return nil, err
	}
	return mcpcache.NewScopedCluster(cfg, name, c, scheme, rec)
}

var _ mcprovider.NewClusterFunc = (*tenantCaches)(nil).newCluster
