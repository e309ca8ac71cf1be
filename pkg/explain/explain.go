// Package explain is a dry run of a provider's scheduler: what it would do with a
// capability that is not created, against the runtimes and everything placed on them
// right now (msp-explain).
package explain

import (
	"context"
	"fmt"
	"time"

	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/exports"
	"github.com/msp-dev/msp/pkg/scheduler"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/runtimeready"
	"github.com/msp-dev/msp/sdk/capability"
)

// Options configure a dry run of the scheduler.
type Options struct {
	// Config addresses the provider workspace. Required.
	Config *rest.Config
	// Export is the provider's APIExport; EndpointSlice defaults to it.
	Export, EndpointSlice string
	// Cluster is the logical cluster the capability would be created in, for the
	// spread of one tenant's capabilities; optional.
	Cluster string
	// HeartbeatTimeout, HeartbeatLagTolerance and Weights as for the coordinator (0: 150s,
	// 0: 5m, nil: defaults).
	HeartbeatTimeout      time.Duration
	HeartbeatLagTolerance time.Duration
	Weights               map[string]int64
	// Kinds are the provider's kinds with their requests (see Options.Kinds).
	Kinds []capability.Kind
}

// Explanation is what the scheduler would do with a capability right now.
type Explanation struct {
	*framework.Result
	// Runtimes are all runtimes with what they host, sorted by name.
	Runtimes []*framework.RuntimeInfo
	// Capabilities is how many capabilities of the export's kinds exist.
	Capabilities int
}

// Explain evaluates doc, a capability that is not created, against the provider's
// runtimes and everything already placed on them, through every endpoint of the
// export's virtual workspace. Nothing is written.
func Explain(ctx context.Context, opts Options, doc *unstructured.Unstructured) (*Explanation, error) {
	if opts.EndpointSlice == "" {
		opts.EndpointSlice = opts.Export
	}
	if opts.HeartbeatTimeout == 0 {
		opts.HeartbeatTimeout = runtimeready.DefaultHeartbeatTimeout
	}
	served, err := exports.Kinds(ctx, opts.Config, opts.Export)
	if err != nil {
		return nil, err
	}
	kinds, _ := capability.Select(served, opts.Kinds)
	var kind *capability.Kind
	for i, k := range kinds {
		if k.GVK.GroupKind() == doc.GroupVersionKind().GroupKind() {
			kind = &kinds[i]
		}
	}
	if kind == nil {
		return nil, fmt.Errorf("APIExport %s does not serve %s", opts.Export, doc.GroupVersionKind().GroupKind())
	}

	c, err := client.New(opts.Config, client.Options{Scheme: scheduler.Scheme()})
	if err != nil {
		return nil, err
	}
	var rtList platformv1alpha1.ServiceRuntimeList
	if err := c.List(ctx, &rtList); err != nil {
		return nil, fmt.Errorf("failed to list ServiceRuntimes: %w", err)
	}
	runtimes := make([]*platformv1alpha1.ServiceRuntime, len(rtList.Items))
	for i := range rtList.Items {
		runtimes[i] = &rtList.Items[i]
	}

	acct := scheduler.NewAccounting()
	urls, err := endpointURLs(ctx, c, opts.EndpointSlice)
	if err != nil {
		return nil, err
	}
	count := 0
	for _, url := range urls {
		cfg := rest.CopyConfig(opts.Config)
		cfg.Host = url + "/clusters/*"
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		for _, k := range kinds {
			list, err := dyn.Resource(k.GVK.GroupVersion().WithResource(k.Resource)).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("failed to list %s through %s: %w", k.Resource, url, err)
			}

			for i := range list.Items {
				item := &list.Items[i]
				cluster := item.GetAnnotations()["kcp.io/cluster"]
				runtimeName, _, _ := unstructured.NestedString(item.Object, "spec", "runtimeName")
				key := cluster + "|" + k.GVK.GroupKind().String() + "|" + item.GetNamespace() + "/" + item.GetName()
				acct.Observe(key, runtimeName, scheduler.RequestsOf(item, k), framework.TenantKey(cluster, k.GVK.GroupKind()))
				count++
			}
		}
	}

	var spec struct {
		Spec platformv1alpha1.CapabilitySpec `json:"spec"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(doc.Object, &spec); err != nil {
		return nil, fmt.Errorf("the manifest does not follow the capability contract: %w", err)
	}
	capability := &framework.Capability{
		Cluster: opts.Cluster, Namespace: doc.GetNamespace(), Name: doc.GetName(),
		GroupKind: kind.GVK.GroupKind(), Spec: spec.Spec,
		Requests: scheduler.RequestsOf(doc, *kind),
		Named:    scheduler.NamedOf(doc),
	}
	tenantKey := framework.TenantKey(opts.Cluster, kind.GVK.GroupKind())
	infos := acct.Snapshot(runtimes, "", tenantKey)
	fw, err := plugins.NewFramework(plugins.Options{HeartbeatTimeout: opts.HeartbeatTimeout, HeartbeatLagTolerance: runtimeready.LagTolerance(opts.HeartbeatLagTolerance), Weights: opts.Weights})
	if err != nil {
		return nil, err
	}
	res, err := fw.Explain(ctx, capability, &framework.Snapshot{Runtimes: infos, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	if res.Chosen == nil {
		// As the scheduler tells the tenant. Without the classes (not readable here),
		// the hint names the runtimes' locations only.
		var classList platformv1alpha1.ServiceRuntimeClassList
		var classes []*platformv1alpha1.ServiceRuntimeClass
		if err := c.List(ctx, &classList); err == nil {
			for i := range classList.Items {
				classes = append(classes, &classList.Items[i])
			}
		}
		res.Hint = scheduler.LocationHint(res, capability, runtimes, classes)
	}
	return &Explanation{Result: res, Runtimes: infos, Capabilities: count}, nil
}

func endpointURLs(ctx context.Context, c client.Client, name string) ([]string, error) {
	slice := &unstructured.Unstructured{}
	slice.SetAPIVersion("apis.kcp.io/v1alpha1")
	slice.SetKind("APIExportEndpointSlice")
	if err := c.Get(ctx, client.ObjectKey{Name: name}, slice); err != nil {
		return nil, fmt.Errorf("failed to read APIExportEndpointSlice %s: %w", name, err)
	}
	return mcprovider.DefaultExtractURLsFromEndpointSlice(slice)
}
