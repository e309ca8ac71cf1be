// Package capability describes a provider's capability kinds to msp: which kind it is,
// and what one object of it asks of the runtime it is placed on.
//
// Every capability kind embeds the platform's capability contract
// (platform.msp.dev/v1alpha1 CapabilitySpec and CapabilityStatus: the assignment,
// placement, resources, conditions, connection Secret, deletion policy). The scheduler,
// the runtime manager and the servicelet work on any such kind as an unstructured
// object; a Kind adds only what is particular to it.
package capability

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// RequestsFunc returns what one object of a kind uses on its runtime besides its slot
// (the "capabilities" resource every capability counts against), for example a
// database's size as "storage". It is added to what the tenant wrote in
// spec.resources, as a floor. It must not fail: for a value admission should have
// refused, it returns nothing rather than a guess.
type RequestsFunc func(*unstructured.Unstructured) corev1.ResourceList

// Kind is one capability kind.
type Kind struct {
	// GVK is the kind's group, version and kind. A provider may leave the version
	// empty; discovery fills in the version its APIExport serves.
	GVK schema.GroupVersionKind
	// Resource is the plural resource name; discovery fills it in.
	Resource string
	// Requests is the kind's own requests. Optional.
	Requests RequestsFunc
}

// GVR is the kind's resource.
func (k Kind) GVR() schema.GroupVersionResource {
	return k.GVK.GroupVersion().WithResource(k.Resource)
}

// RequestsOf returns the kind's own requests of u; nil when the kind has none.
func (k Kind) RequestsOf(u *unstructured.Unstructured) corev1.ResourceList {
	if k.Requests == nil {
		return nil
	}
	return k.Requests(u)
}

// Select returns the served kinds that a provider declared (by group and kind), with
// the declared Requests; with nothing declared, every served kind. The second result
// lists the served kinds left out.
func Select(served []Kind, declared []Kind) (selected []Kind, left []Kind) {
	if len(declared) == 0 {
		return served, nil
	}
	for _, s := range served {
		found := false
		for _, d := range declared {
			if d.GVK.GroupKind() == s.GVK.GroupKind() {
				s.Requests, found = d.Requests, true
			}
		}
		if found {
			selected = append(selected, s)
		} else {
			left = append(left, s)
		}
	}
	return selected, left
}
