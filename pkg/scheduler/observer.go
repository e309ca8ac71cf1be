package scheduler

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	runtimeconv "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	"github.com/kcp-dev/logicalcluster/v3"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/sdk/capability"
)

// observer keeps the accounting current: it follows the capabilities of every kind in
// every bound workspace, one handler per kind on the Fleet, and records which runtime
// each one counts on. It runs apart from the controllers' queues, so the accounting is
// complete before a decision even when the queue has not reached the assigned
// capabilities yet.
type observer struct {
	kinds []capability.Kind
	acct  *Accounting
	// waker is told when capacity was freed.
	waker Waker
	// fleet is what it follows; nil follows nothing (unit tests of the reconciler).
	fleet Fleet
	// requeue puts a capability of kinds[kindIndex] on its controller's queue.
	requeue func(kindIndex int, req mcreconcile.Request)
	// bound, when set, tells a workspace another replica took over from one that is
	// gone (see Options.Bound).
	bound func(multicluster.ClusterName) bool
	// others, when set, collects the capabilities that wait with Unschedulable in any
	// workspace (see othersPending).
	others *othersPending

	mu      sync.Mutex
	started bool
	regs    []Registration
}

// Start follows the kinds on the Fleet until ctx ends.
func (o *observer) Start(ctx context.Context) error {
	if o.fleet != nil {
		var regs []Registration
		for _, kind := range o.kinds {
			reg, err := o.fleet.AddEventHandler(ctx, kind.GVK, o.handler(kind))
			if err != nil {
				return fmt.Errorf("failed to follow %s in the tenant workspaces: %w", kind.GVK.Kind, err)
			}
			regs = append(regs, reg)
		}
		o.mu.Lock()
		o.regs, o.started = regs, true
		o.mu.Unlock()
	}
	<-ctx.Done()
	return nil
}

// Engage queues a newly engaged workspace's capabilities: the events the Fleet brought
// before the workspace was engaged found no workspace to reconcile in. When it is
// disengaged because it is gone, what its capabilities counted is forgotten; one that
// another replica took over keeps counting.
func (o *observer) Engage(ctx context.Context, name multicluster.ClusterName, cl cluster.Cluster) error {
	for i, kind := range o.kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(kind.GVK.GroupVersion().WithKind(kind.GVK.Kind + "List"))
		if err := cl.GetCache().List(ctx, list); err != nil {
			return fmt.Errorf("failed to list the %s of %s: %w", kind.GVK.Kind, name, err)
		}
		if o.requeue == nil {
			continue
		}
		for _, u := range list.Items {
			o.requeue(i, mcreconcile.Request{ClusterName: name, Request: reconcile.Request{NamespacedName: types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}}})
		}
	}
	// A callback, not a goroutine per workspace waiting for the end.
	context.AfterFunc(ctx, func() {
		if o.bound != nil && o.bound(name) {
			return
		}
		o.acct.DeletePrefix(name.String() + "|")
		o.waker.WakeWaiting()
	})
	return nil
}

// Synced reports whether the capabilities of every workspace have been counted.
func (o *observer) Synced() bool {
	if o.fleet == nil {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.started {
		return false
	}
	for _, r := range o.regs {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

func (o *observer) handler(kind capability.Kind) toolscache.ResourceEventHandler {
	gk := kind.GVK.GroupKind()
	keyOf := func(obj any) (*unstructured.Unstructured, string, string, bool) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return nil, "", "", false
		}
		cluster := logicalcluster.From(u).String()
		if cluster == "" {
			return nil, "", "", false
		}
		return u, cluster, capabilityKey(cluster, gk, u.GetNamespace(), u.GetName()), true
	}
	record := func(obj any) {
		u, cluster, key, ok := keyOf(obj)
		if !ok {
			return
		}
		runtime, _, _ := unstructured.NestedString(u.Object, "spec", "runtimeName")
		if o.others != nil {
			o.others.record(key, cluster, gk, u, runtime, kind)
		}
		before := o.acct.RuntimeOf(key)
		o.acct.Observe(key, runtime, RequestsOf(u, kind), framework.TenantKey(cluster, gk))
		if before != "" && runtime == "" {
			o.waker.WakeWaiting()
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { record(obj) },
		UpdateFunc: func(_, obj any) { record(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			_, _, key, ok := keyOf(obj)
			if !ok {
				return
			}
			freed := o.acct.RuntimeOf(key) != ""
			o.acct.Delete(key)
			if o.others != nil {
				o.others.forget(key)
			}
			if freed {
				o.waker.WakeWaiting()
			}
		},
	}
}

// RequestsOf is what a capability document of the given kind uses on its runtime: the
// kind's own requests and spec.resources, the larger where both name a resource, plus
// one "capabilities" (see framework.RequestsOf). The scheduler's accounting, explain and
// the servicelet's report of a runtime's allocation all count with it.
func RequestsOf(u *unstructured.Unstructured, kind capability.Kind) corev1.ResourceList {
	spec := resourcesOf(u)
	return framework.RequestsOf(&spec, kind.RequestsOf(u))
}

// NamedOf is what a capability document names in spec.resources, which a runtime must
// offer (see framework.Capability.Named).
func NamedOf(u *unstructured.Unstructured) []corev1.ResourceName {
	spec := resourcesOf(u)
	return framework.NamedResources(&spec)
}

// resourcesOf reads a document's spec.resources.
func resourcesOf(u *unstructured.Unstructured) platformv1alpha1.CapabilitySpec {
	var spec platformv1alpha1.CapabilitySpec
	if raw, ok, _ := unstructured.NestedMap(u.Object, "spec", "resources"); ok {
		spec.Resources = parseResources(raw)
	}
	return spec
}

// othersPending are the capabilities of every workspace that wait because nothing fits
// them, as their documents say (reason Unschedulable). With replicas that share the
// workspaces, a replica's own waiting set covers only its workspaces; the runtime
// manager, which runs on one of them, plans for these too.
type othersPending struct {
	mu    sync.Mutex
	items map[string]Pending
}

func newOthersPending() *othersPending { return &othersPending{items: map[string]Pending{}} }

func (p *othersPending) record(key, cluster string, gk schema.GroupKind, u *unstructured.Unstructured, runtime string, kind capability.Kind) {
	var cond *metav1.Condition
	if runtime == "" && u.GetDeletionTimestamp() == nil {
		var doc document
		if err := runtimeconv.DefaultUnstructuredConverter.FromUnstructured(u.Object, &doc); err == nil {
			if c := meta.FindStatusCondition(doc.Status.Conditions, platformv1alpha1.ConditionScheduled); c != nil && c.Reason == platformv1alpha1.ReasonUnschedulable {
				cond = c
				p.mu.Lock()
				p.items[key] = Pending{Key: key, Reason: c.Reason, Message: c.Message, Capability: &framework.Capability{
					Cluster: cluster, Namespace: u.GetNamespace(), Name: u.GetName(), GroupKind: gk,
					Spec: doc.Spec, Requests: RequestsOf(u, kind), Named: NamedOf(u),
				}}
				p.mu.Unlock()
			}
		}
	}
	if cond == nil {
		p.forget(key)
	}
}

func (p *othersPending) forget(key string) {
	p.mu.Lock()
	delete(p.items, key)
	p.mu.Unlock()
}

// list returns the waiting capabilities whose keys skip does not hold.
func (p *othersPending) list(skip func(key string) bool) []Pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Pending
	for key, item := range p.items {
		if !skip(key) {
			out = append(out, item)
		}
	}
	return out
}
