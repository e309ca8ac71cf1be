// Package runtimemanager is the service runtime manager of a provider's coordinator:
// when the scheduler finds no runtime for a capability, it orders the fewest runtimes
// from the provider's ServiceRuntimeClasses that make the waiting capabilities fit; it
// removes runtimes of a class that stayed empty for the class's grace period, down to the
// class's minimum (zero scales to zero). A procurement driver per class brings ordered
// runtimes to life and tears removed ones down.
package runtimemanager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Finalizer keeps a managed runtime until its procurement driver has torn it down.
const Finalizer = "platform.msp.dev/procurement"

// LabelClass carries a managed runtime's class, for selection.
const LabelClass = "platform.msp.dev/runtime-class"

// Procurer brings a class's runtimes to life and tears them down. Both calls must be
// idempotent and must not block on slow work: the manager calls them again.
type Procurer interface {
	// Order provisions rt (created with the class's spec) until its servicelet reports.
	Order(ctx context.Context, rt *platformv1alpha1.ServiceRuntime, class *platformv1alpha1.ServiceRuntimeClass) error
	// Release tears rt down; it returns true once nothing of it is left.
	Release(ctx context.Context, rt *platformv1alpha1.ServiceRuntime) (bool, error)
}

// Scheduler is what the manager needs of the scheduler: what waits, what each runtime
// hosts, and somewhere to put its explanations. *scheduler.Scheduler is one.
type Scheduler interface {
	// Pending returns the capabilities that nothing fits right now.
	Pending() []scheduler.Pending
	// Snapshot returns the runtimes with what the scheduler counts on each.
	Snapshot(runtimes []*platformv1alpha1.ServiceRuntime) []*framework.RuntimeInfo
	// RuntimeLoad returns how many capabilities count on a runtime.
	RuntimeLoad(runtime string) int
	WaitRecorder
}

// WaitRecorder takes the manager's explanations of the capabilities that wait: the
// manager hands them down after each pass, rather than the scheduler calling up into
// the manager for them.
type WaitRecorder interface {
	// SetWaitReasons replaces the explanations, by capability key.
	SetWaitReasons(reasons map[string]scheduler.WaitReason)
	// WakeWaiting retries the waiting capabilities, so that their conditions say what
	// the manager said.
	WakeWaiting()
}

var _ Scheduler = (*scheduler.Scheduler)(nil)

// Options configure the manager. Zero values take the documented defaults.
type Options struct {
	// Client reads and writes the provider workspace. Required.
	Client client.Client
	// Scheduler tells what waits and what each runtime hosts, and is told why what
	// waits waits. Required.
	Scheduler Scheduler
	// Framework checks whether a capability fits a runtime. Required.
	Framework *framework.Framework
	// Procurers by driver name ("local", "cascading").
	Procurers map[string]Procurer
	// Interval between passes. Defaults to 2s.
	Interval time.Duration
	// Cooldown is the least time between two removals in one class, so that a class does
	// not flap. Defaults to 30s.
	Cooldown time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Log is the logger.
	Log logr.Logger
}

// Manager orders and removes runtimes.
type Manager struct {
	opts Options

	mu      sync.Mutex
	waiting map[string]scheduler.WaitReason
	// ordered holds the runtimes this manager created until its cache shows them, so
	// that a pass right after an order does not order again.
	ordered     map[string]orderedRuntime
	emptySince  map[string]time.Time
	lastRemoval map[string]time.Time
	// scaled is the pass's record of what changed in each class: runtimes ordered (+)
	// and removed (-); the class's status is written once at the end of the pass.
	scaled map[string]int
}

// New returns a manager; its passes explain waiting capabilities to the scheduler.
func New(opts Options) (*Manager, error) {
	if opts.Client == nil || opts.Scheduler == nil || opts.Framework == nil {
		return nil, errors.New("runtimemanager: a client, the scheduler and a framework are required")
	}
	if opts.Interval == 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Cooldown == 0 {
		opts.Cooldown = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	m := &Manager{opts: opts, waiting: map[string]scheduler.WaitReason{}, ordered: map[string]orderedRuntime{},
		emptySince: map[string]time.Time{}, lastRemoval: map[string]time.Time{}}
	return m, nil
}

// Start runs passes until ctx ends (a manager.Runnable; it runs on the leader only).
func (m *Manager) Start(ctx context.Context) error {
	tick := time.NewTicker(m.opts.Interval)
	defer tick.Stop()
	for {
		if err := m.Pass(ctx); err != nil && ctx.Err() == nil {
			m.opts.Log.Error(err, "runtime manager pass failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// NeedLeaderElection: only the active coordinator orders and removes runtimes.
func (m *Manager) NeedLeaderElection() bool { return true }

// Pass does one round: drive procurement, order for waiting capabilities, remove what
// stayed empty, report on the classes.
func (m *Manager) Pass(ctx context.Context) error {
	var classList platformv1alpha1.ServiceRuntimeClassList
	if err := m.opts.Client.List(ctx, &classList); err != nil {
		return fmt.Errorf("failed to list ServiceRuntimeClasses: %w", err)
	}
	var rtList platformv1alpha1.ServiceRuntimeList
	if err := m.opts.Client.List(ctx, &rtList); err != nil {
		return fmt.Errorf("failed to list ServiceRuntimes: %w", err)
	}
	m.mu.Lock()
	seen := map[string]bool{}
	for _, rt := range rtList.Items {
		seen[rt.Name] = true
	}
	for name, o := range m.ordered {
		if seen[name] || m.opts.Now().Sub(o.at) > time.Minute {
			delete(m.ordered, name)
		} else {
			rtList.Items = append(rtList.Items, *o.rt.DeepCopy())
		}
	}
	m.mu.Unlock()
	classes := map[string]*platformv1alpha1.ServiceRuntimeClass{}
	var classSlice []*platformv1alpha1.ServiceRuntimeClass
	for i := range classList.Items {
		c := &classList.Items[i]
		classes[c.Name] = c
		classSlice = append(classSlice, c)
	}
	managed := map[string][]*platformv1alpha1.ServiceRuntime{}
	for i := range rtList.Items {
		rt := &rtList.Items[i]
		if rt.Spec.RuntimeClassName != "" {
			managed[rt.Spec.RuntimeClassName] = append(managed[rt.Spec.RuntimeClassName], rt)
		}
	}
	m.scaled = map[string]int{}

	var errs []error
	// 1. Procurement: bring ordered runtimes to life, tear removed ones down.
	for className, rts := range managed {
		for _, rt := range rts {
			if err := m.procure(ctx, rt, classes[className]); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// 2. Scale up: the fewest new runtimes for what waits, then each class's minimum.
	all := make([]*platformv1alpha1.ServiceRuntime, len(rtList.Items))
	for i := range rtList.Items {
		all[i] = &rtList.Items[i]
	}
	if err := m.scaleUp(ctx, classSlice, managed, all); err != nil {
		errs = append(errs, err)
	}

	// 3. Scale down: runtimes that stayed empty for the grace period.
	for _, class := range classSlice {
		if err := m.scaleDown(ctx, class, managed[class.Name]); err != nil {
			errs = append(errs, err)
		}
	}

	// 4. Each class's status: its runtimes as this pass leaves them, whether it can order.
	for _, class := range classSlice {
		if err := m.classStatus(ctx, class, managed[class.Name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// classStatus writes a class's status when it changed: how many of its runtimes exist
// (those this pass left, with its orders and removals), when it last scaled, and whether
// this coordinator runs its procurement driver (Ready).
func (m *Manager) classStatus(ctx context.Context, class *platformv1alpha1.ServiceRuntimeClass, rts []*platformv1alpha1.ServiceRuntime) error {
	n := m.scaled[class.Name]
	for _, rt := range rts {
		if rt.DeletionTimestamp == nil {
			n++
		}
	}
	want := class.DeepCopy()
	want.Status.Runtimes = int32(max(n, 0))
	if _, scaled := m.scaled[class.Name]; scaled {
		now := metav1.NewTime(m.opts.Now())
		want.Status.LastScaleTime = &now
	}
	ready := metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: platformv1alpha1.ReasonDriverAvailable,
		Message: fmt.Sprintf("the %s procurement driver orders and removes runtimes of this class", class.Spec.Driver.Name)}
	if _, ok := m.opts.Procurers[class.Spec.Driver.Name]; !ok {
		ready.Status, ready.Reason = metav1.ConditionFalse, platformv1alpha1.ReasonDriverUnavailable
		ready.Message = fmt.Sprintf("the coordinator runs no procurement driver %q (it runs: %s): no runtime of this class is ordered or removed",
			class.Spec.Driver.Name, m.driverNames())
	}
	ready.ObservedGeneration = class.Generation
	meta.SetStatusCondition(&want.Status.Conditions, ready)
	if equality.Semantic.DeepEqual(want.Status, class.Status) {
		return nil
	}
	if err := m.opts.Client.Status().Patch(ctx, want, client.MergeFrom(class)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to update the status of class %s: %w", class.Name, err)
	}
	return nil
}

// driverNames lists the procurement drivers this manager runs, for messages.
func (m *Manager) driverNames() string {
	names := slices.Sorted(maps.Keys(m.opts.Procurers))
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (m *Manager) procure(ctx context.Context, rt *platformv1alpha1.ServiceRuntime, class *platformv1alpha1.ServiceRuntimeClass) error {
	if !controllerutil.ContainsFinalizer(rt, Finalizer) {
		return nil // not ordered by this manager
	}
	driver := ""
	if class != nil {
		driver = class.Spec.Driver.Name
	}
	if d := rt.Annotations[annotationDriver]; d != "" {
		driver = d
	}
	p := m.opts.Procurers[driver]
	if rt.DeletionTimestamp != nil {
		if p == nil {
			// Dropping the finalizer would leave whatever the driver made behind,
			// unreleased and forgotten; a coordinator that runs the driver releases it.
			return fmt.Errorf("runtime %s is being removed, but it was ordered with the procurement driver %q, which this coordinator does not run (it runs: %s): it is kept until one that runs it releases it",
				rt.Name, driver, m.driverNames())
		}
		if n := m.opts.Scheduler.RuntimeLoad(rt.Name); n > 0 {
			// Removed by hand while it hosts capabilities: its servicelet keeps serving
			// them (the tenants' deletions go through it) until the runtime guard lets
			// the runtime go; only then is it released.
			m.opts.Log.V(1).Info("runtime being removed still hosts capabilities; not released yet", "runtime", rt.Name, "capabilities", n)
			if err := p.Order(ctx, rt, class); err != nil {
				return fmt.Errorf("failed to keep runtime %s running while it drains: %w", rt.Name, err)
			}
			return nil
		}
		done, err := p.Release(ctx, rt)
		if err != nil {
			return fmt.Errorf("failed to release runtime %s: %w", rt.Name, err)
		}
		if !done {
			return nil
		}
		patch := client.MergeFrom(rt.DeepCopy())
		controllerutil.RemoveFinalizer(rt, Finalizer)
		if err := m.opts.Client.Patch(ctx, rt, patch); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		m.opts.Log.Info("runtime removed", "runtime", rt.Name, "class", rt.Spec.RuntimeClassName)
		return nil
	}
	if class == nil || p == nil {
		return nil
	}
	if err := p.Order(ctx, rt, class); err != nil {
		return fmt.Errorf("failed to provision runtime %s: %w", rt.Name, err)
	}
	return nil
}

const (
	annotationDriver = "platform.msp.dev/procurement-driver"
	// annotationParameters keeps the class's driver parameters as the runtime was
	// ordered with, so that it is released the same way after the class changed or went.
	annotationParameters = "platform.msp.dev/procurement-parameters"
)

func driverAnnotations(d platformv1alpha1.RuntimeDriver) map[string]string {
	a := map[string]string{annotationDriver: d.Name}
	if d.Parameters != nil && len(d.Parameters.Raw) > 0 {
		a[annotationParameters] = string(d.Parameters.Raw)
	}
	return a
}

// orderedRuntime is a runtime this manager created, not yet seen in its cache.
type orderedRuntime struct {
	rt *platformv1alpha1.ServiceRuntime
	at time.Time
}

func (m *Manager) scaleUp(ctx context.Context, classes []*platformv1alpha1.ServiceRuntimeClass, managed map[string][]*platformv1alpha1.ServiceRuntime, all []*platformv1alpha1.ServiceRuntime) error {
	now := m.opts.Now()
	existing := map[string]int{}
	provisioning := map[string]bool{}
	for name, rts := range managed {
		for _, rt := range rts {
			if rt.DeletionTimestamp != nil {
				continue
			}
			existing[name]++
			if !isReady(rt) {
				provisioning[rt.Name] = true
			}
		}
	}
	var live []*platformv1alpha1.ServiceRuntime
	for _, rt := range all {
		if rt.DeletionTimestamp == nil {
			live = append(live, rt)
		}
	}
	// Every runtime with what it hosts, as the scheduler counts it.
	infos := m.opts.Scheduler.Snapshot(live)
	usable := make([]*platformv1alpha1.ServiceRuntimeClass, 0, len(classes))
	for _, c := range classes {
		if _, ok := m.opts.Procurers[c.Spec.Driver.Name]; ok {
			usable = append(usable, c)
		}
	}
	plan := MakePlan(ctx, m.opts.Framework, m.opts.Scheduler.Pending(), usable, existing, infos, provisioning, now)

	// Each class's minimum.
	for _, c := range usable {
		for i := existing[c.Name] + countOrders(plan, c.Name); i < int(c.Spec.MinRuntimes); i++ {
			plan.Orders = append(plan.Orders, &Order{Class: c, Location: c.Spec.Locations[i%len(c.Spec.Locations)]})
		}
	}

	var errs []error
	for _, o := range plan.Orders {
		rt, err := m.order(ctx, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, key := range o.For {
			if w, ok := plan.Waiting[key]; ok && w.Reason == platformv1alpha1.ReasonWaitingForRuntime {
				plan.Waiting[key] = scheduler.WaitReason{Reason: w.Reason, Message: fmt.Sprintf("waiting for runtime %s of class %s, ordered for it", rt.Name, o.Class.Name)}
			}
		}
	}
	m.mu.Lock()
	changed := !maps.Equal(m.waiting, plan.Waiting)
	m.waiting = plan.Waiting
	m.mu.Unlock()
	m.opts.Scheduler.SetWaitReasons(plan.Waiting)
	if changed {
		m.opts.Scheduler.WakeWaiting() // rewrite the conditions of what waits
	}
	return errors.Join(errs...)
}

func countOrders(p *Plan, class string) int {
	n := 0
	for _, o := range p.Orders {
		if o.Class.Name == class {
			n++
		}
	}
	return n
}

// order creates the ServiceRuntime of a new runtime; its procurement starts on the next
// pass (and at once here).
func (m *Manager) order(ctx context.Context, o *Order) (*platformv1alpha1.ServiceRuntime, error) {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	labels := map[string]string{LabelClass: o.Class.Name}
	for k, v := range o.Class.Spec.Labels {
		labels[k] = v
	}
	rt := &platformv1alpha1.ServiceRuntime{
		ObjectMeta: metav1.ObjectMeta{
			Name:        o.Class.Name + "-" + hex.EncodeToString(b),
			Labels:      labels,
			Annotations: driverAnnotations(o.Class.Spec.Driver),
			Finalizers:  []string{Finalizer},
		},
		Spec: Spec(o.Class, o.Location),
	}
	if err := m.opts.Client.Create(ctx, rt); err != nil {
		return nil, fmt.Errorf("failed to order a runtime of class %s: %w", o.Class.Name, err)
	}
	m.mu.Lock()
	m.ordered[rt.Name] = orderedRuntime{rt: rt.DeepCopy(), at: m.opts.Now()}
	m.mu.Unlock()
	m.opts.Log.Info("runtime ordered", "runtime", rt.Name, "class", o.Class.Name, "region", o.Location.Region, "for", len(o.For))
	m.scaled[o.Class.Name]++
	if p := m.opts.Procurers[o.Class.Spec.Driver.Name]; p != nil {
		if err := p.Order(ctx, rt, o.Class); err != nil {
			return rt, fmt.Errorf("failed to provision runtime %s: %w", rt.Name, err)
		}
	}
	return rt, nil
}

// scaleDown removes a class's runtimes that stayed empty for its grace period, above its
// minimum, at most one per cooldown. A runtime is cordoned first and removed on a later
// pass only if it is still empty, so a capability assigned meanwhile keeps its runtime.
func (m *Manager) scaleDown(ctx context.Context, class *platformv1alpha1.ServiceRuntimeClass, rts []*platformv1alpha1.ServiceRuntime) error {
	now := m.opts.Now()
	// live counts the runtimes not being removed; leaving those of them this manager
	// cordoned for removal, which must not take the class below its minimum.
	live, leaving := 0, 0
	for _, rt := range rts {
		if rt.DeletionTimestamp == nil {
			live++
			if cordonedForRemoval(rt) {
				leaving++
			}
		}
	}
	sort.Slice(rts, func(i, j int) bool { return rts[i].Name < rts[j].Name })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rt := range rts {
		if rt.DeletionTimestamp != nil || !controllerutil.ContainsFinalizer(rt, Finalizer) {
			continue
		}
		if m.opts.Scheduler.RuntimeLoad(rt.Name) > 0 || !isReady(rt) {
			delete(m.emptySince, rt.Name)
			if rt.Spec.Unschedulable && rt.Annotations[annotationCordoned] == "true" {
				if err := m.setCordon(ctx, rt, false); err != nil {
					return err
				}
			}
			continue
		}
		since, ok := m.emptySince[rt.Name]
		if !ok {
			m.emptySince[rt.Name] = now
			continue
		}
		grace := class.Spec.ScaleDownAfter.Duration
		minimum := int(class.Spec.MinRuntimes)
		if live <= minimum && cordonedForRemoval(rt) {
			// Cordoned while another runtime was still there; now it is one of the
			// minimum and must take capabilities again.
			if err := m.setCordon(ctx, rt, false); err != nil {
				return err
			}
			leaving--
			continue
		}
		if now.Sub(since) < grace || live <= minimum || now.Sub(m.lastRemoval[class.Name]) < m.opts.Cooldown {
			continue
		}
		if !rt.Spec.Unschedulable {
			if live-leaving <= minimum {
				continue // the runtimes already leaving take the class to its minimum
			}
			if err := m.setCordon(ctx, rt, true); err != nil {
				return err
			}
			leaving++
			continue // removed on a later pass if still empty
		}
		if err := m.opts.Client.Delete(ctx, rt); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to remove runtime %s: %w", rt.Name, err)
		}
		m.opts.Log.Info("removing empty runtime", "runtime", rt.Name, "class", class.Name, "emptyFor", now.Sub(since).Round(time.Second))
		m.lastRemoval[class.Name] = now
		delete(m.emptySince, rt.Name)
		live--
		if cordonedForRemoval(rt) {
			leaving--
		}
		m.scaled[class.Name]--
	}
	return nil
}

const annotationCordoned = "platform.msp.dev/cordoned-for-removal"

// cordonedForRemoval says that this manager cordoned rt to remove it.
func cordonedForRemoval(rt *platformv1alpha1.ServiceRuntime) bool {
	return rt.Spec.Unschedulable && rt.Annotations[annotationCordoned] == "true"
}

func (m *Manager) setCordon(ctx context.Context, rt *platformv1alpha1.ServiceRuntime, on bool) error {
	patch := client.MergeFrom(rt.DeepCopy())
	rt.Spec.Unschedulable = on
	if rt.Annotations == nil {
		rt.Annotations = map[string]string{}
	}
	if on {
		rt.Annotations[annotationCordoned] = "true"
	} else {
		delete(rt.Annotations, annotationCordoned)
	}
	if err := m.opts.Client.Patch(ctx, rt, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to cordon runtime %s: %w", rt.Name, err)
	}
	return nil
}

func isReady(rt *platformv1alpha1.ServiceRuntime) bool {
	c := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue
}
