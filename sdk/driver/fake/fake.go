// Package fake is a driver.Driver made of function fields, for the unit tests of code
// that calls a driver (a provider's wiring, a servicelet-like loop, a driver that
// delegates to another). A test sets the fields it cares about, leaves the others nil,
// and afterwards asks which calls were made:
//
//	d := &fake.Driver{
//		ObserveFn: func(context.Context, *driver.Capability) (driver.Observation, error) {
//			return driver.Observation{Exists: true, UpToDate: false, Ready: true}, nil
//		},
//	}
//	// ... run the code under test against d ...
//	if n := d.CallsTo(fake.MethodUpdate); n != 1 {
//		t.Errorf("Update called %d times, want 1", n)
//	}
//
// To test a driver's own business logic, run it against drivertest instead.
package fake

import (
	"context"
	"slices"
	"sync"

	"github.com/msp-dev/msp/sdk/driver"
)

// Names of the methods, as recorded in Call.Method.
const (
	MethodObserve           = "Observe"
	MethodCreate            = "Create"
	MethodUpdate            = "Update"
	MethodDelete            = "Delete"
	MethodRotateCredentials = "RotateCredentials"
	MethodProbe             = "Probe"
)

// Driver is a driver.Driver, a driver.CredentialRotator and a driver.RuntimeProbe whose
// methods call its function fields. A nil field gives the zero result: Observe reports
// that the thing does not exist (Observation{}, nil), Create returns no connection
// details and RotateCredentials none, and Update, Delete and Probe succeed.
//
// Every call is recorded, in order, before its field is called; Calls and CallsTo read
// the record. Set the fields before the driver is first used and do not change them
// afterwards; the methods and the record are then safe for concurrent use. A Driver must
// not be copied after first use.
type Driver struct {
	// ObserveFn answers Observe.
	ObserveFn func(ctx context.Context, c *driver.Capability) (driver.Observation, error)
	// CreateFn answers Create.
	CreateFn func(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error)
	// UpdateFn answers Update.
	UpdateFn func(ctx context.Context, c *driver.Capability) error
	// DeleteFn answers Delete.
	DeleteFn func(ctx context.Context, c *driver.Capability) error
	// RotateFn answers RotateCredentials.
	RotateFn func(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error)
	// ProbeFn answers Probe.
	ProbeFn func(ctx context.Context) error

	mu    sync.Mutex
	calls []Call
}

var (
	_ driver.Driver            = (*Driver)(nil)
	_ driver.CredentialRotator = (*Driver)(nil)
	_ driver.RuntimeProbe      = (*Driver)(nil)
)

// Call is one recorded call: the method's name (one of the Method constants) and the
// capability it was called for. Probe concerns no capability; its Cluster, Namespace and
// Name are empty.
type Call struct {
	Method    string
	Cluster   string
	Namespace string
	Name      string
}

// Observe records the call and returns ObserveFn's answer, or Observation{} and nil.
func (d *Driver) Observe(ctx context.Context, c *driver.Capability) (driver.Observation, error) {
	d.record(MethodObserve, c)
	if d.ObserveFn == nil {
		return driver.Observation{}, nil
	}
	return d.ObserveFn(ctx, c)
}

// Create records the call and returns CreateFn's answer, or nil and nil.
func (d *Driver) Create(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	d.record(MethodCreate, c)
	if d.CreateFn == nil {
		return nil, nil
	}
	return d.CreateFn(ctx, c)
}

// Update records the call and returns UpdateFn's answer, or nil.
func (d *Driver) Update(ctx context.Context, c *driver.Capability) error {
	d.record(MethodUpdate, c)
	if d.UpdateFn == nil {
		return nil
	}
	return d.UpdateFn(ctx, c)
}

// Delete records the call and returns DeleteFn's answer, or nil.
func (d *Driver) Delete(ctx context.Context, c *driver.Capability) error {
	d.record(MethodDelete, c)
	if d.DeleteFn == nil {
		return nil
	}
	return d.DeleteFn(ctx, c)
}

// RotateCredentials records the call and returns RotateFn's answer, or nil and nil.
func (d *Driver) RotateCredentials(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	d.record(MethodRotateCredentials, c)
	if d.RotateFn == nil {
		return nil, nil
	}
	return d.RotateFn(ctx, c)
}

// Probe records the call and returns ProbeFn's answer, or nil.
func (d *Driver) Probe(ctx context.Context) error {
	d.record(MethodProbe, nil)
	if d.ProbeFn == nil {
		return nil
	}
	return d.ProbeFn(ctx)
}

// Calls returns a copy of the calls recorded so far, oldest first.
func (d *Driver) Calls() []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// CallsTo returns how many calls to method (a Method constant) were recorded.
func (d *Driver) CallsTo(method string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

// Reset forgets the calls recorded so far; the function fields stay.
func (d *Driver) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = nil
}

func (d *Driver) record(method string, c *driver.Capability) {
	call := Call{Method: method}
	if c != nil {
		call.Cluster = c.Cluster
		if c.Object != nil {
			call.Namespace, call.Name = c.Object.GetNamespace(), c.Object.GetName()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, call)
}
