package scheduler

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/location"
)

// maxOffered is how many values of one dimension a location hint lists.
const maxOffered = 20

// LocationHint tells a tenant whose capability fits nowhere because of where it may
// run what the provider offers, e.g. "this provider offers regions eu-de, eu-fr and
// countries DE, FR". Tenants cannot list the runtimes, so without it they could only
// guess. It returns "" unless the location filter rejected a runtime in res.
//
// The offer is made of the locations of every runtime that hosts the capability's kind
// (whatever its state) and of every runtime class whose runtimes would host it (where
// the runtime manager could order one; not a class whose driver it does not run). It lists regions, and the countries, zones and
// clouds when the capability's placement constrains them; never a runtime's name.
func LocationHint(res *framework.Result, c *framework.Capability, runtimes []*platformv1alpha1.ServiceRuntime, classes []*platformv1alpha1.ServiceRuntimeClass) string {
	if res == nil || res.Chosen != nil || !locationRejected(res.Reasons) {
		return ""
	}
	var locs []platformv1alpha1.Location
	for _, rt := range runtimes {
		if rt.DeletionTimestamp == nil && hostsKind(rt.Spec.Capabilities, c.GroupKind) {
			locs = append(locs, rt.Spec.Location)
		}
	}
	for _, class := range classes {
		if class.DeletionTimestamp == nil && hostsKind(class.Spec.Capabilities, c.GroupKind) && !cannotOrder(class) {
			locs = append(locs, class.Spec.Locations...)
		}
	}
	p := &c.Spec.Placement
	dims := []struct {
		name  string
		shown bool
		value func(platformv1alpha1.Location) string
	}{
		{"regions", true, func(l platformv1alpha1.Location) string { return l.Region }},
		{"countries", len(p.Countries) > 0, func(l platformv1alpha1.Location) string { return l.Country }},
		{"zones", len(p.Zones) > 0, func(l platformv1alpha1.Location) string { return l.Zone }},
		{"clouds", len(p.Clouds) > 0, func(l platformv1alpha1.Location) string { return l.Cloud }},
	}
	var parts []string
	for _, d := range dims {
		if !d.shown {
			continue
		}
		var values []string
		for _, l := range locs {
			if v := d.value(l); v != "" {
				values = append(values, v)
			}
		}
		slices.Sort(values)
		values = slices.Compact(values)
		switch {
		case len(values) == 0:
			parts = append(parts, "no "+d.name)
		case len(values) > maxOffered:
			parts = append(parts, fmt.Sprintf("%s %s and %d more", d.name, strings.Join(values[:maxOffered], ", "), len(values)-maxOffered))
		default:
			parts = append(parts, d.name+" "+strings.Join(values, ", "))
		}
	}
	return "this provider offers " + strings.Join(parts, " and ")
}

// locationRejected reports whether any runtime failed the location filter.
func locationRejected(reasons map[string]int) bool {
	for _, r := range []string{location.ReasonRegionNotAllowed, location.ReasonCountryNotAllowed, location.ReasonZoneNotAllowed, location.ReasonCloudNotAllowed} {
		if reasons[r] > 0 {
			return true
		}
	}
	return false
}

func hostsKind(kinds []platformv1alpha1.CapabilityKind, gk schema.GroupKind) bool {
	for _, k := range kinds {
		if k.Group == gk.Group && k.Kind == gk.Kind {
			return true
		}
	}
	return false
}

// ClassLister returns the provider's ServiceRuntimeClasses; callers must not modify them.
type ClassLister interface {
	List(ctx context.Context) ([]*platformv1alpha1.ServiceRuntimeClass, error)
}

// CachedClasses lists ServiceRuntimeClasses from an informer cache of the provider
// workspace, for the scheduler's location hints.
type CachedClasses struct {
	notifier
	cache cache.Cache
	reg   toolscache.ResourceEventHandlerRegistration
}

// NewCachedClasses watches the ServiceRuntimeClasses in c. The Waker it is given (see
// ChangeNotifier; New gives it the scheduler) is woken when a class appears, goes or
// changes where or what it can order, so that waiting capabilities are told about it.
func NewCachedClasses(ctx context.Context, c cache.Cache) (*CachedClasses, error) {
	inf, err := c.GetInformer(ctx, &platformv1alpha1.ServiceRuntimeClass{})
	if err != nil {
		return nil, fmt.Errorf("failed to watch ServiceRuntimeClasses: %w", err)
	}
	cc := &CachedClasses{cache: c}
	onChange := cc.changed
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { onChange() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*platformv1alpha1.ServiceRuntimeClass)
			n, ok2 := newObj.(*platformv1alpha1.ServiceRuntimeClass)
			if !ok1 || !ok2 || !reflect.DeepEqual(o.Spec.Locations, n.Spec.Locations) || !reflect.DeepEqual(o.Spec.Capabilities, n.Spec.Capabilities) {
				onChange()
			}
		},
		DeleteFunc: func(any) { onChange() },
	})
	if err != nil {
		return nil, err
	}
	cc.reg = reg
	return cc, nil
}

// List returns the classes, shared with the cache: callers must not modify them. Until
// the cache has listed them it returns none rather than wait.
func (c *CachedClasses) List(ctx context.Context) ([]*platformv1alpha1.ServiceRuntimeClass, error) {
	if !c.reg.HasSynced() {
		return nil, nil
	}
	var list platformv1alpha1.ServiceRuntimeClassList
	if err := c.cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("failed to list ServiceRuntimeClasses: %w", err)
	}
	out := make([]*platformv1alpha1.ServiceRuntimeClass, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// cannotOrder says that the runtime manager reported it cannot order runtimes of the
// class (its procurement driver is not there).
func cannotOrder(class *platformv1alpha1.ServiceRuntimeClass) bool {
	c := meta.FindStatusCondition(class.Status.Conditions, platformv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == platformv1alpha1.ReasonDriverUnavailable
}
