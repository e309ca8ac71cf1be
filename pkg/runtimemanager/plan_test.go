package runtimemanager

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
)

var pgKind = schema.GroupKind{Group: "postgres.msp.dev", Kind: "PostgresDatabase"}

func class(name string, capacity int64, max int32, locs ...platformv1alpha1.Location) *platformv1alpha1.ServiceRuntimeClass {
	return &platformv1alpha1.ServiceRuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: platformv1alpha1.ServiceRuntimeClassSpec{
			Capabilities: []platformv1alpha1.CapabilityKind{{Group: pgKind.Group, Kind: pgKind.Kind}},
			Locations:    locs,
			Capacity:     corev1.ResourceList{platformv1alpha1.ResourceCapabilities: *resource.NewQuantity(capacity, resource.DecimalSI)},
			MaxRuntimes:  max,
			Driver:       platformv1alpha1.RuntimeDriver{Name: "local"},
		},
	}
}

func pending(n int, placement platformv1alpha1.Placement) []scheduler.Pending {
	var out []scheduler.Pending
	for i := 0; i < n; i++ {
		spec := platformv1alpha1.CapabilitySpec{Placement: placement}
		out = append(out, scheduler.Pending{
			Key: fmt.Sprintf("c|%02d", i),
			Capability: &framework.Capability{Cluster: "c", Name: fmt.Sprint(i), GroupKind: pgKind, Spec: spec,
				Requests: framework.RequestsOf(&spec, nil)},
		})
	}
	return out
}

var de = platformv1alpha1.Location{Region: "eu-de", Country: "DE"}
var fr = platformv1alpha1.Location{Region: "eu-fr", Country: "FR"}

func TestMakePlan(t *testing.T) {
	fw, err := plugins.NewFramework(plugins.Options{HeartbeatTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	provisioning := func(name string, count int) []*framework.RuntimeInfo {
		c := class("small", 2, 10, de)
		rt := &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: Spec(c, de)}
		return []*framework.RuntimeInfo{{Runtime: rt, Count: count, Allocated: corev1.ResourceList{
			platformv1alpha1.ResourceCapabilities: *resource.NewQuantity(int64(count), resource.DecimalSI)}}}
	}
	tests := []struct {
		name         string
		pending      []scheduler.Pending
		classes      []*platformv1alpha1.ServiceRuntimeClass
		existing     map[string]int
		runtimes     []*framework.RuntimeInfo
		provisioning map[string]bool
		wantOrders   []string // class/region per order
		wantWaiting  map[string]int
	}{
		{
			name:        "six capabilities, two per runtime: exactly three orders",
			pending:     pending(6, platformv1alpha1.Placement{}),
			classes:     []*platformv1alpha1.ServiceRuntimeClass{class("small", 2, 10, de)},
			wantOrders:  []string{"small/eu-de", "small/eu-de", "small/eu-de"},
			wantWaiting: map[string]int{"waiting for a new runtime of class small in eu-de": 6},
		},
		{
			name:        "the location the capability allows",
			pending:     pending(1, platformv1alpha1.Placement{Countries: []string{"FR"}}),
			classes:     []*platformv1alpha1.ServiceRuntimeClass{class("small", 2, 10, de, fr)},
			wantOrders:  []string{"small/eu-fr"},
			wantWaiting: map[string]int{"waiting for a new runtime of class small in eu-fr": 1},
		},
		{
			name:        "the class's maximum, counting what exists",
			pending:     pending(5, platformv1alpha1.Placement{}),
			classes:     []*platformv1alpha1.ServiceRuntimeClass{class("small", 2, 2, de)},
			existing:    map[string]int{"small": 1},
			wantOrders:  []string{"small/eu-de"},
			wantWaiting: map[string]int{"waiting for a new runtime of class small in eu-de": 2, "runtime class small has reached its maximum of 2 runtimes": 3},
		},
		{
			name:         "a runtime being provisioned takes what fits first",
			pending:      pending(3, platformv1alpha1.Placement{}),
			classes:      []*platformv1alpha1.ServiceRuntimeClass{class("small", 2, 10, de)},
			existing:     map[string]int{"small": 1},
			runtimes:     provisioning("small-abc", 1),
			provisioning: map[string]bool{"small-abc": true},
			wantOrders:   []string{"small/eu-de"},
			wantWaiting:  map[string]int{"waiting for runtime small-abc of class small to become ready": 1, "waiting for a new runtime of class small in eu-de": 2},
		},
		{
			name:        "a Ready runtime with room takes them: the scheduler places them, no order",
			pending:     pending(1, platformv1alpha1.Placement{}),
			classes:     []*platformv1alpha1.ServiceRuntimeClass{class("small", 2, 10, de)},
			existing:    map[string]int{"small": 1},
			runtimes:    []*framework.RuntimeInfo{asReady(provisioning("small-ready", 0)[0], now)},
			wantWaiting: map[string]int{},
		},
		{
			name:        "nothing any class offers fits: no order, no explanation",
			pending:     pending(2, platformv1alpha1.Placement{Countries: []string{"US"}}),
			classes:     []*platformv1alpha1.ServiceRuntimeClass{class("small", 2, 10, de)},
			wantWaiting: map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			existing := tt.existing
			if existing == nil {
				existing = map[string]int{}
			}
			plan := MakePlan(context.Background(), fw, tt.pending, tt.classes, existing, tt.runtimes, tt.provisioning, now)
			var orders []string
			for _, o := range plan.Orders {
				orders = append(orders, o.Class.Name+"/"+o.Location.Region)
			}
			if strings.Join(orders, ",") != strings.Join(tt.wantOrders, ",") {
				t.Errorf("orders = %v, want %v", orders, tt.wantOrders)
			}
			got := map[string]int{}
			for _, w := range plan.Waiting {
				got[w.Message]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantWaiting) {
				t.Errorf("waiting = %v, want %v", got, tt.wantWaiting)
			}
		})
	}
}
