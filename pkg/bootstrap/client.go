package bootstrap

import (
	"context"
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// clientSet hands out one client per workspace, all built from one base config.
type clientSet struct {
	base *rest.Config
	ws   map[string]*workspaceClient
}

func newClientSet(cfg *rest.Config) *clientSet {
	return &clientSet{base: kcpconfig.Base(cfg), ws: map[string]*workspaceClient{}}
}

func (c *clientSet) forWorkspace(path string) *workspaceClient {
	if w, ok := c.ws[path]; ok {
		return w
	}
	cfg := kcpconfig.ForWorkspace(c.base, path)
	disco := memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg))
	w := &workspaceClient{
		dynamic: dynamic.NewForConfigOrDie(cfg),
		disco:   disco,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(disco),
	}
	c.ws[path] = w
	return w
}

type workspaceClient struct {
	dynamic dynamic.Interface
	disco   discovery.CachedDiscoveryInterface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// resource finds the REST resource of obj, waiting for its API to be served: right after
// an APIBinding is bound, discovery can lag for a moment.
func (w *workspaceClient) resource(ctx context.Context, gvk schema.GroupVersionKind, namespace string, timeout, interval time.Duration) (dynamic.ResourceInterface, error) {
	var mapping *meta.RESTMapping
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) {
		m, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			w.mapper.Reset()
			return false, nil
		}
		if err != nil {
			return false, err
		}
		mapping = m
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("API %s is not served: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if namespace == "" {
			namespace = metav1.NamespaceDefault
		}
		return w.dynamic.Resource(mapping.Resource).Namespace(namespace), nil
	}
	return w.dynamic.Resource(mapping.Resource), nil
}

// apply server-side applies obj and tells whether that created, changed or kept it.
func (w *workspaceClient) apply(ctx context.Context, obj *unstructured.Unstructured, timeout, interval time.Duration) (Change, error) {
	ri, err := w.resource(ctx, obj.GroupVersionKind(), obj.GetNamespace(), timeout, interval)
	if err != nil {
		return "", err
	}
	before, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	exists := err == nil
	if err != nil && !isNotFound(err) {
		return "", err
	}
	// An APIResourceSchema's name changes whenever its content does and kcp keeps its
	// spec immutable, so one that exists is the one wanted. Applying it again would
	// rewrite it anyway, as the server normalizes the embedded OpenAPI schema.
	if exists && obj.GetKind() == "APIResourceSchema" {
		return Unchanged, nil
	}
	after, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return "", err
	}
	switch {
	case !exists:
		return Created, nil
	case before.GetResourceVersion() != after.GetResourceVersion() && !apiequality.Semantic.DeepEqual(content(before), content(after)):
		return Updated, nil
	default:
		return Unchanged, nil
	}
}

// content is an object without what every write changes: kcp bumps the resourceVersion
// of some RBAC objects on a server-side apply that changes nothing in them.
func content(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	return c.Object
}

func (w *workspaceClient) get(ctx context.Context, obj *unstructured.Unstructured, timeout, interval time.Duration) (*unstructured.Unstructured, error) {
	ri, err := w.resource(ctx, obj.GroupVersionKind(), obj.GetNamespace(), timeout, interval)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
}
