// Package noop is a driver.Driver that brings nothing to life: what it is asked to create
// exists at once, is up to date and ready, and has no connection details. It serves
// where a kind needs a driver but no runtime (a demo, a benchmark of the platform
// itself, the servicelet's tests), and as the smallest driver that passes drivertest.
//
// It remembers, in memory, what it created, so that Observe tells the truth about
// existence: before Create and after Delete the thing does not exist. What it remembers
// is lost with the process; a servicelet that restarts on a noop driver creates every
// capability again, which is invisible to tenants since nothing is there to lose.
package noop

import (
	"context"
	"sync"

	"github.com/msp-dev/msp/sdk/driver"
)

// Driver is the no-op driver, a driver.Driver and a driver.RuntimeProbe. Its zero value
// is ready to use; it is safe for concurrent use and must not be copied after first use.
// Things are told apart by logical cluster, API group, kind, namespace and name, so one
// Driver may serve several kinds.
type Driver struct {
	mu     sync.Mutex
	things map[key]struct{}
}

var (
	_ driver.Driver       = (*Driver)(nil)
	_ driver.RuntimeProbe = (*Driver)(nil)
)

type key struct {
	cluster, group, kind, namespace, name string
}

func keyOf(c *driver.Capability) key {
	gk := c.Object.GroupVersionKind().GroupKind()
	return key{cluster: c.Cluster, group: gk.Group, kind: gk.Kind, namespace: c.Object.GetNamespace(), name: c.Object.GetName()}
}

// Observe reports a thing Create made, and not deleted since, as existing, up to date
// and ready; any other as not existing.
func (d *Driver) Observe(_ context.Context, c *driver.Capability) (driver.Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.things[keyOf(c)]; !ok {
		return driver.Observation{}, nil
	}
	return driver.Observation{Exists: true, UpToDate: true, Ready: true}, nil
}

// Create remembers the thing. It returns no connection details.
func (d *Driver) Create(_ context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.things == nil {
		d.things = map[key]struct{}{}
	}
	d.things[keyOf(c)] = struct{}{}
	return nil, nil
}

// Update succeeds: a no-op thing is always in line with its spec.
func (d *Driver) Update(context.Context, *driver.Capability) error { return nil }

// Delete forgets the thing; forgetting what it never had succeeds.
func (d *Driver) Delete(_ context.Context, c *driver.Capability) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.things, keyOf(c))
	return nil
}

// Probe succeeds: there is no runtime to be down.
func (d *Driver) Probe(context.Context) error { return nil }
