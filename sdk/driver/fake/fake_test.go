package fake

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/sdk/driver"
)

func capability(name string) *driver.Capability {
	u := &unstructured.Unstructured{}
	u.SetKind("Thing")
	u.SetNamespace("default")
	u.SetName(name)
	return &driver.Capability{Object: u, Cluster: "c1"}
}

func TestNilFieldsGiveZeroResults(t *testing.T) {
	ctx := context.Background()
	d := &Driver{}
	c := capability("a")
	if obs, err := d.Observe(ctx, c); err != nil || obs.Exists || obs.UpToDate || obs.Ready {
		t.Errorf("Observe = %+v, %v; want Observation{}, nil", obs, err)
	}
	if details, err := d.Create(ctx, c); err != nil || details != nil {
		t.Errorf("Create = %v, %v; want nil, nil", details, err)
	}
	if details, err := d.RotateCredentials(ctx, c); err != nil || details != nil {
		t.Errorf("RotateCredentials = %v, %v; want nil, nil", details, err)
	}
	for _, tc := range []struct {
		method string
		call   func() error
	}{
		{MethodUpdate, func() error { return d.Update(ctx, c) }},
		{MethodDelete, func() error { return d.Delete(ctx, c) }},
		{MethodProbe, func() error { return d.Probe(ctx) }},
	} {
		if err := tc.call(); err != nil {
			t.Errorf("%s = %v, want nil", tc.method, err)
		}
	}
}

func TestFieldsAreCalledAndCallsRecorded(t *testing.T) {
	ctx := context.Background()
	errGone := errors.New("gone")
	d := &Driver{
		ObserveFn: func(_ context.Context, c *driver.Capability) (driver.Observation, error) {
			return driver.Observation{Exists: true, Message: c.Object.GetName()}, nil
		},
		CreateFn: func(context.Context, *driver.Capability) (driver.ConnectionDetails, error) {
			return driver.ConnectionDetails{"token": []byte("t")}, nil
		},
		UpdateFn: func(context.Context, *driver.Capability) error { return driver.NewTenantError("no") },
		DeleteFn: func(context.Context, *driver.Capability) error { return errGone },
		RotateFn: func(context.Context, *driver.Capability) (driver.ConnectionDetails, error) {
			return driver.ConnectionDetails{"token": []byte("u")}, nil
		},
		ProbeFn: func(context.Context) error { return errGone },
	}
	a, b := capability("a"), capability("b")
	if obs, err := d.Observe(ctx, a); err != nil || !obs.Exists || obs.Message != "a" {
		t.Errorf("Observe = %+v, %v; want ObserveFn's answer", obs, err)
	}
	if details, _ := d.Create(ctx, a); string(details["token"]) != "t" {
		t.Errorf("Create = %v, want CreateFn's answer", details)
	}
	var te *driver.TenantError
	if err := d.Update(ctx, b); !errors.As(err, &te) {
		t.Errorf("Update = %v, want UpdateFn's TenantError", err)
	}
	if err := d.Delete(ctx, b); !errors.Is(err, errGone) {
		t.Errorf("Delete = %v, want DeleteFn's error", err)
	}
	if details, _ := d.RotateCredentials(ctx, b); string(details["token"]) != "u" {
		t.Errorf("RotateCredentials = %v, want RotateFn's answer", details)
	}
	if err := d.Probe(ctx); !errors.Is(err, errGone) {
		t.Errorf("Probe = %v, want ProbeFn's error", err)
	}
	_, _ = d.Observe(ctx, b)

	want := []Call{
		{MethodObserve, "c1", "default", "a"},
		{MethodCreate, "c1", "default", "a"},
		{MethodUpdate, "c1", "default", "b"},
		{MethodDelete, "c1", "default", "b"},
		{MethodRotateCredentials, "c1", "default", "b"},
		{Method: MethodProbe},
		{MethodObserve, "c1", "default", "b"},
	}
	if diff := cmp.Diff(want, d.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
	for method, n := range map[string]int{MethodObserve: 2, MethodCreate: 1, MethodProbe: 1, "Nothing": 0} {
		if got := d.CallsTo(method); got != n {
			t.Errorf("CallsTo(%q) = %d, want %d", method, got, n)
		}
	}
	d.Reset()
	if got := d.Calls(); len(got) != 0 {
		t.Errorf("Calls after Reset = %v, want none", got)
	}
}

func TestConcurrentCalls(t *testing.T) {
	d := &Driver{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = d.Observe(context.Background(), capability("a"))
			}
		})
	}
	wg.Wait()
	if n := d.CallsTo(MethodObserve); n != 800 {
		t.Errorf("CallsTo(Observe) = %d, want 800", n)
	}
}
