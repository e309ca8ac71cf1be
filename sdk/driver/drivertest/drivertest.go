// Package drivertest is the conformance suite of driver.Driver: every provider runs it
// in its own go test, against a real runtime, to show that its driver keeps the contract
// the servicelet relies on. The servicelet's reconciler calls Observe first; when the
// thing does not exist it calls Create and Observe again; when it exists but is not up
// to date it calls Update; on deletion it calls Delete, then Observe until the thing is
// gone. Only TenantErrors (and the Observation's messages) reach the tenant.
//
// A driver's test fills a Harness and calls Run:
//
//	func TestDriverSuite(t *testing.T) {
//		d := newDriver(t)
//		drivertest.Run(t, drivertest.Harness{
//			Driver: d,
//			New: func(t *testing.T, name string) *driver.Capability {
//				return capability(t, name, MySpec{Size: "1Gi"})
//			},
//			Drift: func(t *testing.T, c *driver.Capability) {
//				// change the thing on the runtime behind the driver's back
//			},
//			Invalid: func(t *testing.T) *driver.Capability {
//				return capability(t, "invalid", MySpec{Size: "-1"})
//			},
//		})
//	}
//
// The subtests run one after the other, each on capabilities of its own, which it
// deletes in t.Cleanup. They are, by name (the keys of Harness.Skip):
//
//   - "observe before create": Observe of a capability never created says
//     Exists=false, with no error.
//   - "create then observe": Create succeeds; Observe, given the connection details
//     Create returned (as the servicelet does), reports the thing Exists, UpToDate and
//     Ready within ReadyTimeout, without calling the credentials invalid, and again when
//     given Create's details merged with Observe's (the connection Secret). Its Status
//     names none of the platform's status fields.
//   - "create is idempotent": Create of what exists succeeds (or fails with a
//     TenantError), and the thing stays Exists and UpToDate. A second Create may issue
//     new credentials; the connection details the servicelet then keeps (the first
//     ones, with what the second Create returned merged over them) are valid.
//   - "update of what is in line": Update of a thing that is up to date succeeds and
//     leaves it Exists, UpToDate and Ready, its credentials valid.
//   - "delete": Delete succeeds and Observe reports Exists=false within ReadyTimeout;
//     its subtest "delete of what is gone" deletes again, which succeeds.
//   - "delete of what never existed": Delete succeeds.
//   - "drift is seen and repaired" (needs Harness.Drift): after Drift, Observe reports
//     UpToDate=false or Ready=false within ReadyTimeout, and after Update the thing is
//     Exists, UpToDate and Ready again within ReadyTimeout.
//   - "credentials are rotated" (a driver.CredentialRotator only): RotateCredentials
//     returns new connection details, which Observe accepts, and Observe reports the
//     credentials from before as invalid.
//   - "tenant-safe errors" (needs Harness.Invalid): Observe or else Create of the
//     invalid capability fails with a TenantError with a message, and Delete of it
//     succeeds (nothing was created; else the servicelet's finalizer would hold the
//     document for ever).
//   - "probe" (a driver.RuntimeProbe only): Probe returns nil.
//
// In every subtest, whatever a tenant could read (the message of every TenantError any
// call returns, Observation.Message and Observation.CredentialsInvalid) must not give
// away the provider's internals: an address of the host (127.0.0.1, localhost, ::1), a
// connection URL (postgres://), a connection string's password= or a Go stack trace,
// nor any of Harness.Internals.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/sdk/driver"
)

// DefaultReadyTimeout is Harness.ReadyTimeout when it is not set.
const DefaultReadyTimeout = time.Minute

// Harness is what the suite needs of one driver on a runtime it may use for the test.
type Harness struct {
	// Driver is the driver under test. Required.
	Driver driver.Driver

	// New returns a fresh capability document of the driver's kind, as the servicelet
	// would hand it over: assigned to the runtime (spec.runtimeName and Spec set),
	// generation 1, with Cluster set and ConnectionDetails nil. name is a DNS label
	// that the suite uses once per Run; New derives the document's name from it (a
	// prefix of the harness's own keeps two Runs on one runtime apart). Every call must
	// return a new *driver.Capability: the suite changes its ConnectionDetails.
	// Required.
	New func(t *testing.T, name string) *driver.Capability

	// Drift, when set, changes the thing behind c on the runtime behind the driver's
	// back (drops an extension of a database, edits a file, stops a process) without
	// removing it, so that the driver's Observe should see it differ from its spec (or
	// not be ready) and its Update should repair it. c carries the connection details
	// the servicelet would hold. Drift must return once the change is made. When nil,
	// the subtest "drift is seen and repaired" is skipped.
	Drift func(t *testing.T, c *driver.Capability)

	// Invalid, when set, returns a capability the driver must refuse with a
	// TenantError from Observe or Create (a name that is taken or reserved on the
	// runtime, a size it cannot offer). When nil, the subtest "tenant-safe errors" is
	// skipped.
	Invalid func(t *testing.T) *driver.Capability

	// ReadyTimeout bounds every wait for the driver to reach a state (Ready after
	// Create, gone after Delete, drift seen and repaired), during which Observe is
	// polled, and every single call to the driver. Drivers may provision
	// asynchronously. Defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration

	// Internals are further strings a tenant must never read in a message: the admin
	// credentials of the runtime, its data folder, an internal host name.
	Internals []string

	// Skip names subtests (by their names above) to leave out, each with the reason,
	// which the subtest reports through t.Skip. It is for known bugs of the driver (the
	// reason names the bug, so that it is fixed and the entry dropped), not for
	// relaxing the contract. A name that is no subtest of the suite fails the Run.
	Skip map[string]string
}

// leaks are what no message for a tenant may contain, whatever the provider.
var leaks = []string{"127.0.0.1", "localhost", "[::1]", "postgres://", "postgresql://", "password=", "goroutine ", "panic:"}

// platformStatus are the JSON names of the platform's status fields, which
// Observation.Status must not name.
var platformStatus = func() map[string]bool {
	fields := map[string]bool{}
	st := reflect.TypeFor[platformv1alpha1.CapabilityStatus]()
	for i := range st.NumField() {
		if name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			fields[name] = true
		}
	}
	return fields
}()

// Run runs the suite against h.Driver, each subtest through t.Run (see the package
// documentation).
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Driver == nil || h.New == nil {
		t.Fatal("drivertest: Harness.Driver and Harness.New are required")
	}
	if h.ReadyTimeout <= 0 {
		h.ReadyTimeout = DefaultReadyTimeout
	}
	s := &suite{h: h}
	subtests := []subtest{
		{"observe before create", s.observeBeforeCreate},
		{"create then observe", s.createThenObserve},
		{"create is idempotent", s.createIsIdempotent},
		{"update of what is in line", s.updateInLine},
		{"delete", s.deleteThenGone},
		{"delete of what never existed", s.deleteNeverExisted},
		{"drift is seen and repaired", s.drift},
		{"credentials are rotated", s.rotate},
		{"tenant-safe errors", s.tenantSafeErrors},
		{"probe", s.probe},
	}
	for _, name := range slices.Sorted(maps.Keys(h.Skip)) {
		if !slices.ContainsFunc(subtests, func(st subtest) bool { return st.name == name }) {
			t.Errorf("drivertest: Harness.Skip names %q, which is no subtest of the suite", name)
		}
	}
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) {
			if why, ok := h.Skip[st.name]; ok {
				t.Skipf("left out by the harness: %s", why)
			}
			st.run(t)
		})
	}
}

type suite struct{ h Harness }

// subtest is one subtest of the suite, by its name.
type subtest struct {
	name string
	run  func(t *testing.T)
}

// inLine says whether the thing is what the servicelet reports as available.
func inLine(o driver.Observation) bool { return o.Exists && o.UpToDate && o.Ready }

// describe is an observation in a failure message.
func describe(o driver.Observation) string {
	s := fmt.Sprintf("Exists=%v UpToDate=%v Ready=%v", o.Exists, o.UpToDate, o.Ready)
	if o.Message != "" {
		s += fmt.Sprintf(" Message=%q", o.Message)
	}
	if o.CredentialsInvalid != "" {
		s += fmt.Sprintf(" CredentialsInvalid=%q", o.CredentialsInvalid)
	}
	return s
}

// merge is what the servicelet keeps in the connection Secret: later details over
// earlier ones.
func merge(all ...driver.ConnectionDetails) driver.ConnectionDetails {
	out := driver.ConnectionDetails{}
	for _, d := range all {
		maps.Copy(out, d)
	}
	return out
}

// fresh returns h.New's capability for name, to be deleted when the test ends.
func (s *suite) fresh(t *testing.T, name string) *driver.Capability {
	t.Helper()
	c := s.h.New(t, name)
	if c == nil || c.Object == nil {
		t.Fatalf("drivertest: Harness.New(%q) returned no capability document", name)
	}
	s.deleteOnCleanup(t, c)
	return c
}

// deleteOnCleanup deletes c when the test ends and waits until it is gone.
func (s *suite) deleteOnCleanup(t *testing.T, c *driver.Capability) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.ReadyTimeout)
		defer cancel()
		if err := s.h.Driver.Delete(ctx, c); err != nil {
			t.Errorf("cleanup: Delete of %s: %v", c.Object.GetName(), err)
			return
		}
		for {
			obs, err := s.h.Driver.Observe(ctx, c)
			switch {
			case err != nil:
				t.Errorf("cleanup: Observe after Delete of %s: %v", c.Object.GetName(), err)
				return
			case !obs.Exists:
				return
			}
			select {
			case <-ctx.Done():
				t.Errorf("cleanup: %s still exists %v after Delete", c.Object.GetName(), s.h.ReadyTimeout)
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

// ctx bounds one call to the driver.
func (s *suite) ctx(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), s.h.ReadyTimeout)
}

// screen checks what a tenant would read of err, returned by call.
func (s *suite) screen(t *testing.T, call string, err error) {
	t.Helper()
	var te *driver.TenantError
	if !errors.As(err, &te) {
		return
	}
	if strings.TrimSpace(te.Message) == "" {
		t.Errorf("%s: a TenantError with no message, want one the tenant can act on", call)
	}
	s.screenText(t, call+": the TenantError's message", te.Message)
}

// screenObservation checks the observation's messages, which reach the tenant.
func (s *suite) screenObservation(t *testing.T, call string, o driver.Observation) {
	t.Helper()
	s.screenText(t, call+": Observation.Message", o.Message)
	s.screenText(t, call+": Observation.CredentialsInvalid", o.CredentialsInvalid)
	for k := range o.Status {
		if platformStatus[k] {
			t.Errorf("%s: Observation.Status names the platform's status field %q, want only the kind's own", call, k)
		}
	}
}

func (s *suite) screenText(t *testing.T, where, msg string) {
	t.Helper()
	if msg == "" {
		return
	}
	for _, leak := range append(slices.Clone(leaks), s.h.Internals...) {
		if leak != "" && strings.Contains(strings.ToLower(msg), strings.ToLower(leak)) {
			t.Errorf("%s is %q, which gives the provider's internals (%q) away to the tenant", where, msg, leak)
		}
	}
}

func (s *suite) tryObserve(t *testing.T, c *driver.Capability, when string) (driver.Observation, error) {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	obs, err := s.h.Driver.Observe(ctx, c)
	call := strings.TrimSpace("Observe " + when)
	s.screen(t, call, err)
	if err == nil {
		s.screenObservation(t, call, obs)
	}
	return obs, err
}

func (s *suite) tryCreate(t *testing.T, c *driver.Capability, when string) (driver.ConnectionDetails, error) {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	details, err := s.h.Driver.Create(ctx, c)
	s.screen(t, strings.TrimSpace("Create "+when), err)
	return details, err
}

func (s *suite) tryUpdate(t *testing.T, c *driver.Capability, when string) error {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	err := s.h.Driver.Update(ctx, c)
	s.screen(t, strings.TrimSpace("Update "+when), err)
	return err
}

func (s *suite) tryDelete(t *testing.T, c *driver.Capability, when string) error {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	err := s.h.Driver.Delete(ctx, c)
	s.screen(t, strings.TrimSpace("Delete "+when), err)
	return err
}

// observe is Observe that must succeed.
func (s *suite) observe(t *testing.T, c *driver.Capability, when string) driver.Observation {
	t.Helper()
	obs, err := s.tryObserve(t, c, when)
	if err != nil {
		t.Fatalf("Observe %s: %v", when, err)
	}
	return obs
}

// await polls Observe until done holds, for at most ReadyTimeout, and returns the
// observation that made it hold.
func (s *suite) await(t *testing.T, c *driver.Capability, when, want string, done func(driver.Observation) bool) driver.Observation {
	t.Helper()
	deadline := time.Now().Add(s.h.ReadyTimeout)
	pause := 20 * time.Millisecond
	for {
		obs := s.observe(t, c, when)
		if done(obs) {
			return obs
		}
		if time.Now().After(deadline) {
			t.Fatalf("Observe %s: %s for %v, want %s", when, describe(obs), s.h.ReadyTimeout, want)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("Observe %s: %v", when, t.Context().Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// createReady creates c, waits until it is in line, and returns the connection details
// the servicelet then keeps; c carries them.
func (s *suite) createReady(t *testing.T, c *driver.Capability) driver.ConnectionDetails {
	t.Helper()
	details, err := s.tryCreate(t, c, "")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	c.ConnectionDetails = details // as the servicelet does before it observes again
	obs := s.await(t, c, "after Create", "Exists, UpToDate and Ready", inLine)
	if obs.CredentialsInvalid != "" {
		t.Errorf("Observe after Create, given Create's connection details: CredentialsInvalid=%q, want none", obs.CredentialsInvalid)
	}
	c.ConnectionDetails = merge(details, obs.ConnectionDetails)
	return c.ConnectionDetails
}

func (s *suite) observeBeforeCreate(t *testing.T) {
	c := s.fresh(t, "dt-observe")
	if obs := s.observe(t, c, "before Create"); obs.Exists {
		t.Errorf("Observe before Create: Exists=true, want false")
	}
}

func (s *suite) createThenObserve(t *testing.T) {
	c := s.fresh(t, "dt-create")
	secret := s.createReady(t, c)
	if len(secret) == 0 {
		t.Log("the driver reports no connection details")
	} else {
		t.Logf("connection details: %s", strings.Join(slices.Sorted(maps.Keys(secret)), ", "))
	}
	obs := s.observe(t, c, "given the connection details of Create and Observe")
	if !inLine(obs) {
		t.Errorf("Observe given the connection details of Create and Observe: %s, want Exists, UpToDate and Ready", describe(obs))
	}
	if obs.CredentialsInvalid != "" {
		t.Errorf("Observe given the connection details of Create and Observe: CredentialsInvalid=%q, want none", obs.CredentialsInvalid)
	}
}

func (s *suite) createIsIdempotent(t *testing.T) {
	c := s.fresh(t, "dt-idempotent")
	secret := s.createReady(t, c)
	again, err := s.tryCreate(t, c, "of what exists")
	var te *driver.TenantError
	switch {
	case err == nil:
		secret = merge(secret, again) // the servicelet writes what Create returns
	case errors.As(err, &te):
		t.Logf("Create of what exists failed with a TenantError: %v", err)
	default:
		t.Fatalf("Create of what exists: %v, want success or a TenantError", err)
	}
	c.ConnectionDetails = secret
	obs := s.observe(t, c, "after a second Create")
	if !obs.Exists || !obs.UpToDate {
		t.Errorf("Observe after a second Create: %s, want Exists and UpToDate", describe(obs))
	}
	if obs.CredentialsInvalid != "" {
		t.Errorf("Observe after a second Create, given the connection details the servicelet keeps: CredentialsInvalid=%q, want none", obs.CredentialsInvalid)
	}
	s.await(t, c, "after a second Create", "Exists, UpToDate and Ready", inLine)
}

func (s *suite) updateInLine(t *testing.T) {
	c := s.fresh(t, "dt-update")
	s.createReady(t, c)
	if err := s.tryUpdate(t, c, "of what is in line"); err != nil {
		t.Fatalf("Update of what is in line: %v", err)
	}
	obs := s.observe(t, c, "after Update of what is in line")
	if !inLine(obs) {
		t.Errorf("Observe after Update of what is in line: %s, want Exists, UpToDate and Ready", describe(obs))
	}
	if obs.CredentialsInvalid != "" {
		t.Errorf("Observe after Update of what is in line: CredentialsInvalid=%q, want none", obs.CredentialsInvalid)
	}
}

func (s *suite) deleteThenGone(t *testing.T) {
	c := s.fresh(t, "dt-delete")
	s.createReady(t, c)
	if err := s.tryDelete(t, c, ""); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	s.await(t, c, "after Delete", "Exists=false", func(o driver.Observation) bool { return !o.Exists })
	t.Run("delete of what is gone", func(t *testing.T) {
		if err := s.tryDelete(t, c, "of what is gone"); err != nil {
			t.Errorf("Delete of what is gone: %v, want success", err)
		}
		if obs := s.observe(t, c, "after a second Delete"); obs.Exists {
			t.Errorf("Observe after a second Delete: Exists=true, want false")
		}
	})
}

func (s *suite) deleteNeverExisted(t *testing.T) {
	c := s.fresh(t, "dt-never")
	if err := s.tryDelete(t, c, "of what never existed"); err != nil {
		t.Errorf("Delete of what never existed: %v, want success", err)
	}
	if obs := s.observe(t, c, "after Delete of what never existed"); obs.Exists {
		t.Errorf("Observe after Delete of what never existed: Exists=true, want false")
	}
}

func (s *suite) drift(t *testing.T) {
	if s.h.Drift == nil {
		t.Skip("the harness has no Drift")
	}
	c := s.fresh(t, "dt-drift")
	s.createReady(t, c)
	s.h.Drift(t, c)
	obs := s.await(t, c, "after Drift", "UpToDate=false or Ready=false",
		func(o driver.Observation) bool { return !inLine(o) })
	if !obs.Exists {
		t.Fatalf("Observe after Drift: Exists=false; Drift must change the thing, not remove it (the servicelet would create it anew)")
	}
	if obs.UpToDate {
		t.Logf("Observe after Drift: %s; the servicelet calls Update only when UpToDate=false, else it waits for Ready", describe(obs))
	}
	if err := s.tryUpdate(t, c, "after Drift"); err != nil {
		t.Fatalf("Update after Drift: %v", err)
	}
	s.await(t, c, "after Drift and Update", "Exists, UpToDate and Ready", inLine)
}

func (s *suite) rotate(t *testing.T) {
	r, ok := s.h.Driver.(driver.CredentialRotator)
	if !ok {
		t.Skip("the driver is not a driver.CredentialRotator")
	}
	c := s.fresh(t, "dt-rotate")
	old := s.createReady(t, c)
	ctx, cancel := s.ctx(t)
	defer cancel()
	details, err := r.RotateCredentials(ctx, c)
	s.screen(t, "RotateCredentials", err)
	if err != nil {
		t.Fatalf("RotateCredentials: %v", err)
	}
	if len(details) == 0 {
		t.Fatalf("RotateCredentials returned no connection details, want the new credentials")
	}
	c.ConnectionDetails = merge(old, details)
	obs := s.observe(t, c, "given the rotated credentials")
	if !obs.Exists || obs.CredentialsInvalid != "" {
		t.Errorf("Observe given the rotated credentials: %s, want Exists and no CredentialsInvalid", describe(obs))
	}
	c.ConnectionDetails = old
	if obs := s.observe(t, c, "given the credentials from before RotateCredentials"); obs.CredentialsInvalid == "" {
		t.Errorf("Observe given the credentials from before RotateCredentials: CredentialsInvalid empty, want them reported invalid (RotateCredentials must make the old ones stop working)")
	}
}

func (s *suite) tenantSafeErrors(t *testing.T) {
	if s.h.Invalid == nil {
		t.Skip("the harness has no Invalid")
	}
	c := s.h.Invalid(t)
	if c == nil || c.Object == nil {
		t.Fatal("drivertest: Harness.Invalid returned no capability document")
	}
	s.deleteOnCleanup(t, c)
	call := "Observe"
	obs, err := s.tryObserve(t, c, "of Harness.Invalid's capability")
	if err == nil {
		if obs.Exists {
			t.Errorf("Observe of Harness.Invalid's capability: Exists=true, want false")
		}
		call = "Create"
		_, err = s.tryCreate(t, c, "of Harness.Invalid's capability")
	}
	var te *driver.TenantError
	if !errors.As(err, &te) {
		t.Fatalf("%s of Harness.Invalid's capability: %v, want a TenantError", call, err)
	}
	t.Logf("the tenant reads: %s", te.Message)
	if err := s.tryDelete(t, c, "of what "+call+" refused"); err != nil {
		t.Errorf("Delete of what %s refused: %v, want success (nothing was created, and the servicelet's finalizer waits for Delete)", call, err)
	}
}

func (s *suite) probe(t *testing.T) {
	p, ok := s.h.Driver.(driver.RuntimeProbe)
	if !ok {
		t.Skip("the driver is not a driver.RuntimeProbe")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	if err := p.Probe(ctx); err != nil {
		t.Errorf("Probe: %v, want nil", err)
	}
}
