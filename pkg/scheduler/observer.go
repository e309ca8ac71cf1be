package scheduler

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/sdk/capability"
)

// observer keeps the accounting current: in every engaged workspace it follows the
// capabilities of every kind and records which runtime each one counts on. It runs apart
// from the controllers' queues, so the accounting is complete before a decision even
// when the queue has not reached the assigned capabilities yet.
type observer struct {
	kinds []capability.Kind
	acct  *Accounting
	// waker is told when capacity was freed.
	waker Waker

	mu     sync.Mutex
	synced []toolscache.ResourceEventHandlerRegistration
}

// Start implements manager.Runnable; the work happens in Engage.
func (o *observer) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Engage follows the capabilities of a newly engaged workspace until it is disengaged.
func (o *observer) Engage(ctx context.Context, name multicluster.ClusterName, cl cluster.Cluster) error {
	clusterName := name.String()
	var regs []toolscache.ResourceEventHandlerRegistration
	var informers []interface {
		RemoveEventHandler(toolscache.ResourceEventHandlerRegistration) error
	}
	for _, kind := range o.kinds {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(kind.GVK)
		inf, err := cl.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("failed to get the %s informer of %s: %w", kind.GVK.Kind, clusterName, err)
		}
		reg, err := inf.AddEventHandler(o.handler(clusterName, kind))
		if err != nil {
			return fmt.Errorf("failed to watch %s in %s: %w", kind.GVK.Kind, clusterName, err)
		}
		regs = append(regs, reg)
		informers = append(informers, inf)
	}
	o.mu.Lock()
	o.synced = append(o.synced, regs...)
	o.mu.Unlock()

	go func() {
		<-ctx.Done()
		for i, inf := range informers {
			if err := inf.RemoveEventHandler(regs[i]); err != nil {
				log.FromContext(ctx).V(1).Info("failed to remove handler", "cluster", clusterName, "err", err)
			}
		}
		o.mu.Lock()
		kept := o.synced[:0]
		for _, r := range o.synced {
			if !containsReg(regs, r) {
				kept = append(kept, r)
			}
		}
		o.synced = kept
		o.mu.Unlock()
		o.acct.DeletePrefix(clusterName + "|")
		o.waker.WakeWaiting()
	}()
	return nil
}

// Synced reports whether every engaged workspace's capabilities have been counted.
func (o *observer) Synced() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.synced {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

func (o *observer) handler(clusterName string, kind capability.Kind) toolscache.ResourceEventHandler {
	gk := kind.GVK.GroupKind()
	tenantKey := framework.TenantKey(clusterName, gk)
	record := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		key := capabilityKey(clusterName, gk, u.GetNamespace(), u.GetName())
		runtime, _, _ := unstructured.NestedString(u.Object, "spec", "runtimeName")
		before := o.acct.RuntimeOf(key)
		o.acct.Observe(key, runtime, RequestsOf(u, kind), tenantKey)
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
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			key := capabilityKey(clusterName, gk, u.GetNamespace(), u.GetName())
			freed := o.acct.RuntimeOf(key) != ""
			o.acct.Delete(key)
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

func containsReg(list []toolscache.ResourceEventHandlerRegistration, r toolscache.ResourceEventHandlerRegistration) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}
