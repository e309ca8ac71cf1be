package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
)

var postgresKind = platformv1alpha1.CapabilityKind{Group: "postgres.msp.dev", Kind: "PostgresDatabase"}

// addRuntimeWith registers a ServiceRuntime with the given spec (PostgresDatabases unless
// it names kinds) and reports it Ready, as its servicelet would.
func addRuntimeWith(t *testing.T, p *framework.Provider, name string, spec platformv1alpha1.ServiceRuntimeSpec) {
	t.Helper()
	if len(spec.Capabilities) == 0 {
		spec.Capabilities = []platformv1alpha1.CapabilityKind{postgresKind}
	}
	p.AddRuntimeWith(t, name, nil, spec)
}

// resourceList builds a ResourceList from name, quantity pairs.
func resourceList(pairs ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(pairs); i += 2 {
		out[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return out
}

// sizedDatabase is a database of the given size (empty: the default) with spec.resources
// from name, quantity pairs.
func sizedDatabase(name, size string, resources ...string) *postgresv1alpha1.PostgresDatabase {
	db := database(name, platformv1alpha1.Placement{})
	db.Spec.Size = size
	if len(resources) > 0 {
		db.Spec.Resources = resourceList(resources...)
	}
	return db
}

// waitScheduled waits for the database's Scheduled condition to have the given status
// and a message satisfying ok, and returns the database and that condition.
func waitScheduled(t *testing.T, c client.Client, name string, status metav1.ConditionStatus, timeout time.Duration, ok func(msg string) bool) (*postgresv1alpha1.PostgresDatabase, *metav1.Condition) {
	t.Helper()
	db := &postgresv1alpha1.PostgresDatabase{}
	var cond *metav1.Condition
	framework.Eventually(t, timeout, "Scheduled of "+name+" to be "+string(status), func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, db); err != nil {
			return false, "", err
		}
		cond = meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionScheduled)
		if status == metav1.ConditionTrue && ok == nil && assigned(db) {
			return true, "", nil // placed: Scheduled=True comes with the servicelet's status
		}
		if cond == nil {
			return false, "no condition yet", nil
		}
		return cond.Status == status && (ok == nil || ok(cond.Message)), string(cond.Status) + " " + cond.Reason + ": " + cond.Message, nil
	})
	return db, cond
}

func messageIs(want string) func(string) bool { return func(msg string) bool { return msg == want } }

// A database's size counts as storage, and spec.resources cannot make it count for less:
// a 1Ti database that claims 1Mi does not land on a 20Gi runtime, and a 16Gi one that
// claims 16Mi counts as 16Gi against the runtime's capacity.
func TestPlacementKindRequestIsAFloor(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	addRuntimeWith(t, p, "small", platformv1alpha1.ServiceRuntimeSpec{
		Location: platformv1alpha1.Location{Region: "eu-de", Country: "DE"},
		Capacity: resourceList("capabilities", "10", "storage", "20Gi"),
	})
	p.StartCoordinator(t)
	c := p.NewTenant(t).Client(t)

	create(t, c, sizedDatabase("huge", "1Ti", "storage", "1Mi"))
	_, cond := waitScheduled(t, c, "huge", metav1.ConditionFalse, time.Minute, nil)
	if want := "0/1 runtimes fit: 1 insufficient storage"; cond.Reason != platformv1alpha1.ReasonUnschedulable || cond.Message != want {
		t.Errorf("huge: %s %q, want Unschedulable %q", cond.Reason, cond.Message, want)
	}

	create(t, c, sizedDatabase("first", "16Gi", "storage", "16Mi"))
	db, _ := waitScheduled(t, c, "first", metav1.ConditionTrue, time.Minute, nil)
	if db.Spec.RuntimeName != "small" {
		t.Fatalf("first landed on %q, want small", db.Spec.RuntimeName)
	}
	// first counts as 16Gi, not 16Mi: 8Gi more do not fit into 20Gi.
	create(t, c, sizedDatabase("second", "8Gi"))
	_, cond = waitScheduled(t, c, "second", metav1.ConditionFalse, time.Minute, nil)
	if want := "0/1 runtimes fit: 1 insufficient storage"; cond.Message != want {
		t.Errorf("second: %q, want %q", cond.Message, want)
	}

	// A runtime with room takes both, without anyone touching them.
	addRuntimeWith(t, p, "large", platformv1alpha1.ServiceRuntimeSpec{
		Location: platformv1alpha1.Location{Region: "eu-de", Country: "DE"},
		Capacity: resourceList("capabilities", "10", "storage", "2Ti"),
	})
	for _, name := range []string{"huge", "second"} {
		db, _ := waitScheduled(t, c, name, metav1.ConditionTrue, time.Minute, nil)
		if db.Spec.RuntimeName != "large" {
			t.Errorf("%s landed on %q, want large", name, db.Spec.RuntimeName)
		}
	}
}

// A resource the tenant names in spec.resources must be offered: a runtime whose
// capacity does not list it does not fit, as a node without an extended resource. The
// database's own storage (its size) is limited only where the runtime lists storage.
func TestPlacementRequiresOfferedResources(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	// plain does not meter storage; metered does, and has little of it.
	addRuntimeWith(t, p, "plain", platformv1alpha1.ServiceRuntimeSpec{
		Location: platformv1alpha1.Location{Region: "eu-de", Country: "DE"},
		Capacity: resourceList("capabilities", "10"),
	})
	addRuntimeWith(t, p, "metered", platformv1alpha1.ServiceRuntimeSpec{
		Location: platformv1alpha1.Location{Region: "eu-fr", Country: "FR"},
		Capacity: resourceList("capabilities", "10", "storage", "10Gi"),
	})
	p.StartCoordinator(t)
	c := p.NewTenant(t).Client(t)

	create(t, c,
		sizedDatabase("sized", "50Gi"),                       // its own storage: only metered is limited by it
		sizedDatabase("named-storage", "", "storage", "5Gi"), // named: only metered offers storage
		sizedDatabase("gpu", "", "gpu", "1"),                 // named: nobody offers gpu
	)
	for _, tc := range []struct{ name, want string }{{"sized", "plain"}, {"named-storage", "metered"}} {
		db, _ := waitScheduled(t, c, tc.name, metav1.ConditionTrue, time.Minute, nil)
		if db.Spec.RuntimeName != tc.want {
			t.Errorf("%s landed on %q, want %s", tc.name, db.Spec.RuntimeName, tc.want)
		}
	}
	want := "0/2 runtimes fit: 2 resource not offered"
	_, cond := waitScheduled(t, c, "gpu", metav1.ConditionFalse, time.Minute, nil)
	if cond.Reason != platformv1alpha1.ReasonUnschedulable || cond.Message != want {
		t.Errorf("gpu: %s %q, want Unschedulable %q", cond.Reason, cond.Message, want)
	}

	addRuntimeWith(t, p, "gpu-1", platformv1alpha1.ServiceRuntimeSpec{
		Location: platformv1alpha1.Location{Region: "us-east", Country: "US"},
		Capacity: resourceList("capabilities", "10", "gpu", "4"),
	})
	db, _ := waitScheduled(t, c, "gpu", metav1.ConditionTrue, time.Minute, nil)
	if db.Spec.RuntimeName != "gpu-1" {
		t.Errorf("gpu landed on %q, want gpu-1", db.Spec.RuntimeName)
	}
}

// A capability that fits nowhere because of where it may run is told what the provider
// offers: the locations of the runtimes that host its kind and of the runtime classes
// for it, never a runtime's name; other reasons get no such hint.
func TestPlacementTellsWhatTheProviderOffers(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	pc := p.Client(t)
	p.AddRuntime(t, framework.RuntimeSpec{Name: "de-1", Region: "eu-de", Country: "DE", Capabilities: 10})
	p.AddRuntime(t, framework.RuntimeSpec{Name: "fr-1", Region: "eu-fr", Country: "FR", Capabilities: 10})
	// Another kind's runtime and class are not offered to PostgresDatabases.
	addRuntimeWith(t, p, "redis-ch", platformv1alpha1.ServiceRuntimeSpec{
		Location:     platformv1alpha1.Location{Region: "eu-ch", Country: "CH"},
		Capabilities: []platformv1alpha1.CapabilityKind{{Group: "redis.msp.dev", Kind: "RedisCache"}},
	})
	redis := runtimeClass("redis", 5, 0, 3, time.Hour, platformv1alpha1.Location{Region: "eu-at", Country: "AT"})
	redis.Spec.Capabilities = []platformv1alpha1.CapabilityKind{{Group: "redis.msp.dev", Kind: "RedisCache"}}
	// No runtime manager runs: the class is what it could order.
	create(t, pc, runtimeClass("pg", 5, 0, 3, time.Hour, platformv1alpha1.Location{Region: "us-east", Country: "US"}), redis)
	p.StartCoordinator(t)
	c := p.NewTenant(t).Client(t)

	create(t, c,
		database("in-switzerland", platformv1alpha1.Placement{Countries: []string{"CH"}}),
		database("in-japan", platformv1alpha1.Placement{Regions: []string{"ap-jp"}}),
		sizedDatabase("gpu", "", "gpu", "1"),
	)
	for _, tc := range []struct{ name, want string }{
		{"in-switzerland", "0/3 runtimes fit: 2 country not allowed, 1 does not host this kind; this provider offers regions eu-de, eu-fr, us-east and countries DE, FR, US"},
		{"in-japan", "0/3 runtimes fit: 2 region not allowed, 1 does not host this kind; this provider offers regions eu-de, eu-fr, us-east"},
		{"gpu", "0/3 runtimes fit: 2 resource not offered, 1 does not host this kind"},
	} {
		_, cond := waitScheduled(t, c, tc.name, metav1.ConditionFalse, time.Minute, nil)
		if cond.Reason != platformv1alpha1.ReasonUnschedulable || cond.Message != tc.want {
			t.Errorf("%s: %s %q\nwant Unschedulable %q", tc.name, cond.Reason, cond.Message, tc.want)
		}
		for _, rt := range []string{"de-1", "fr-1", "redis-ch", "pg", "redis"} {
			if strings.Contains(cond.Message, " "+rt+" ") || strings.HasSuffix(cond.Message, " "+rt) {
				t.Errorf("%s: the message names %s: %q", tc.name, rt, cond.Message)
			}
		}
	}

	// msp-explain says the same.
	manifest := framework.TempFile(t, "db.yaml", "apiVersion: postgres.msp.dev/v1alpha1\nkind: PostgresDatabase\nmetadata: {name: probe}\nspec:\n  placement: {countries: [CH]}\n")
	out, err := exec.Command(filepath.Join(env.Bin, "msp-explain"), "-f", manifest, "--kubeconfig", env.Kubeconfig(),
		"--workspace", p.Path, "--heartbeat-timeout", "1h").CombinedOutput()
	if err != nil {
		t.Fatalf("msp-explain: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "this provider offers regions eu-de, eu-fr, us-east and countries DE, FR, US") {
		t.Errorf("msp-explain does not say what the provider offers:\n%s", out)
	}

	// A class that can order in Switzerland changes what the waiting capability is told.
	create(t, pc, runtimeClass("pg-ch", 5, 0, 3, time.Hour, platformv1alpha1.Location{Region: "eu-ch", Country: "CH"}))
	waitScheduled(t, c, "in-switzerland", metav1.ConditionFalse, time.Minute,
		messageIs("0/3 runtimes fit: 2 country not allowed, 1 does not host this kind; this provider offers regions eu-ch, eu-de, eu-fr, us-east and countries CH, DE, FR, US"))
}
