package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/conditions"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/metrics"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/sdk/capability"
)

// notSyncedRetry is how soon a capability is retried while the caches are still filling.
const notSyncedRetry = 200 * time.Millisecond

// document is the platform's part of any capability kind.
type document struct {
	Spec   platformv1alpha1.CapabilitySpec   `json:"spec"`
	Status platformv1alpha1.CapabilityStatus `json:"status"`
}

type reconciler struct {
	s         *Scheduler
	kind      capability.Kind
	kindIndex int
}

// Reconcile fetches one capability and hands it over: to validation when it names a
// runtime already, to a scheduling decision when it does not.
func (r *reconciler) Reconcile(ctx context.Context, req mcreconcile.Request) (reconcile.Result, error) {
	s := r.s
	if s.opts.Owns != nil && !s.opts.Owns(req.ClusterName) {
		// Another replica reconciles this workspace (the Fleet brings every one's events).
		return reconcile.Result{}, nil
	}
	if !s.observer.Synced() || !s.opts.Runtimes.Synced() {
		return reconcile.Result{RequeueAfter: notSyncedRetry}, nil
	}
	store, err := s.workspaces.Workspace(ctx, req.ClusterName)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to get workspace %s: %w", req.ClusterName, err)
	}
	gk := r.kind.GVK.GroupKind()
	key := capabilityKey(req.ClusterName.String(), gk, req.Namespace, req.Name)
	log := log.FromContext(ctx).WithValues("cluster", req.ClusterName, "capability", req.NamespacedName.String())
	ctx = logIntoContext(ctx, log)

	// The cache, not the server: a read through the virtual workspace costs kcp an
	// authorization round of its own, and a stale copy is harmless (the assignment is
	// guarded by the resourceVersion it was decided on).
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.kind.GVK)
	if err := store.Get(ctx, req.NamespacedName, u); err != nil {
		if apierrors.IsNotFound(err) {
			s.waiting.remove(key)
			s.written.Delete(key)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("failed to get capability: %w", err)
	}
	if u.GetDeletionTimestamp() != nil {
		s.waiting.remove(key)
		return reconcile.Result{}, nil
	}
	var doc document
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &doc); err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to read the capability contract of %s: %w", req.NamespacedName, err)
	}
	c := &framework.Capability{
		Cluster:   req.ClusterName.String(),
		Namespace: u.GetNamespace(),
		Name:      u.GetName(),
		GroupKind: gk,
		Spec:      doc.Spec,
		Requests:  RequestsOf(u, r.kind),
		Named:     NamedOf(u),
	}
	if s.opts.ShardRegion != nil {
		c.ShardRegion = s.opts.ShardRegion(req.ClusterName)
	}
	w := &writer{store: store, obj: u, doc: &doc, now: s.opts.Now}

	if doc.Spec.RuntimeName != "" {
		return r.reconcileAssigned(ctx, key, req, c, w)
	}
	return r.schedule(ctx, key, req, c, w)
}

// reconcileAssigned completes an assignment: it labels the capability for its runtime's
// servicelet and reports Scheduled. A runtime the consumer named is checked first; one
// that does not exist or does not fit gets a condition saying so, and the capability is
// never moved elsewhere by itself.
func (r *reconciler) reconcileAssigned(ctx context.Context, key string, req mcreconcile.Request, c *framework.Capability, w *writer) (reconcile.Result, error) {
	s := r.s
	runtimeName := c.Spec.RuntimeName
	labelled := w.obj.GetLabels()[platformv1alpha1.LabelRuntime] == runtimeName
	cond := meta.FindStatusCondition(w.doc.Status.Conditions, platformv1alpha1.ConditionScheduled)
	if labelled && (cond != nil && cond.Status == metav1.ConditionTrue || hasServiceletFinalizer(w.obj) && !w.waited()) {
		// Approved: the servicelet reports Scheduled=True (or has).
		s.waiting.remove(key)
		s.written.Delete(key)
		return reconcile.Result{}, nil
	}
	if done, ok := s.written.Load(key); ok && done == runtimeName && labelled {
		// This scheduler wrote the assignment and its condition; the cache has not
		// caught up with the condition yet. Writing it again would only cost a request.
		return reconcile.Result{}, nil
	}

	// A runtime the consumer named (the scheduler labels only what it placed or checked)
	// must be one its workspace may use; asked before anything about the runtime is told.
	if !labelled && s.opts.Permits != nil {
		ok, err := s.opts.Permits(ctx, c.Cluster, runtimeName)
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("failed to check whether runtime %s may be used: %w", runtimeName, err)
		}
		if !ok {
			msg := fmt.Sprintf("spec.runtimeName names runtime %s, which this workspace may not use: ask the provider to grant the verb use on serviceruntimes %s to %s, or delete and recreate the capability without runtimeName to let the scheduler choose",
				runtimeName, runtimeName, identity.TenantSubject(c.Cluster))
			return r.wait(ctx, key, c, req, w, platformv1alpha1.ReasonRuntimeNotPermitted, msg, nil)
		}
	}
	runtimes, err := s.opts.Runtimes.List(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	infos := s.acct.Snapshot(runtimes, key, framework.TenantKey(c.Cluster, c.GroupKind))
	var target *framework.RuntimeInfo
	for _, info := range infos {
		if info.Name() == runtimeName {
			target = info
		}
	}
	if target == nil {
		msg := fmt.Sprintf("runtime %s does not exist; the capability stays pending until it does (runtimeName cannot be changed, delete and recreate to choose another)", runtimeName)
		return r.wait(ctx, key, c, req, w, platformv1alpha1.ReasonRuntimeNotFound, msg, nil)
	}
	// Checked before Scheduled=True is reported, also when the label is there: a label
	// set by hand must not skip the constraints (and the runtime's servicelet leaves the
	// capability alone until this scheduler reports). The capability itself is not
	// counted on the runtime in this check.
	if st := s.opts.Framework.Check(ctx, c, target); st != nil {
		if st.Code == framework.Error {
			return reconcile.Result{}, fmt.Errorf("failed to check runtime %s: %w", runtimeName, st.Err)
		}
		msg := fmt.Sprintf("runtime %s does not fit: %s; the capability stays pending (runtimeName cannot be changed, delete and recreate to choose another)", runtimeName, st.Reason)
		return r.wait(ctx, key, c, req, w, platformv1alpha1.ReasonRuntimeDoesNotFit, msg, nil)
	}
	if !labelled || !hasServiceletFinalizer(w.obj) {
		s.acct.Observe(key, runtimeName, c.Requests, framework.TenantKey(c.Cluster, c.GroupKind))
		if err := w.label(ctx, runtimeName); err != nil {
			if apierrors.IsConflict(err) {
				return reconcile.Result{Requeue: true}, nil
			}
			return reconcile.Result{}, err
		}
	}
	s.waiting.remove(key)
	if !w.waited() {
		s.written.Store(key, runtimeName)
		return reconcile.Result{}, nil
	}
	msg := fmt.Sprintf("assigned to runtime %s in region %s", runtimeName, target.Runtime.Spec.Location.Region)
	if err := w.status(ctx, metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, msg, &target.Runtime.Spec.Location, nil); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, nil
}

// schedule decides where an unassigned capability goes and writes the decision.
func (r *reconciler) schedule(ctx context.Context, key string, req mcreconcile.Request, c *framework.Capability, w *writer) (reconcile.Result, error) {
	s := r.s
	if _, ok := s.written.Load(key); ok {
		// This scheduler assigned it already and the cache does not show it yet. Deciding
		// again would conflict, and forgetting that decision's assumption would count
		// its runtime emptier than it is: look again once the cache has caught up.
		return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	runtimes, err := s.opts.Runtimes.List(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	tenantKey := framework.TenantKey(c.Cluster, c.GroupKind)

	// The decision and its assumption happen under one lock, so the next decision
	// counts this one even before the write lands.
	s.decide.Lock()
	start := time.Now()
	snap := &framework.Snapshot{Runtimes: s.acct.Snapshot(runtimes, key, tenantKey), Now: s.opts.Now()}
	res, err := s.opts.Framework.Schedule(ctx, c, snap)
	metrics.SchedulingDecisionSeconds.Observe(time.Since(start).Seconds())
	if err == nil && res.Chosen != nil {
		s.acct.Assume(key, res.Chosen.Name(), c.Requests, tenantKey, s.opts.Now())
	}
	s.decide.Unlock()
	if err != nil {
		metrics.SchedulingAttempts.WithLabelValues(metrics.ResultError).Inc()
		return reconcile.Result{}, err
	}
	report := schedulingReport(res, s.opts.Now())
	if res.Chosen == nil {
		metrics.SchedulingAttempts.WithLabelValues(metrics.ResultUnschedulable).Inc()
		res.Hint = LocationHint(res, c, runtimes, s.classes(ctx))
		return r.wait(ctx, key, c, req, w, platformv1alpha1.ReasonUnschedulable, res.Message(), report)
	}

	chosen := res.Chosen.Runtime
	if s.opts.Reservations != nil {
		if err := s.reserve(ctx, key, tenantKey, c, chosen, runtimes); err != nil {
			s.acct.Forget(key)
			var full *noRoomError
			if errors.As(err, &full) || apierrors.IsConflict(err) {
				// Another replica filled the runtime first: decide again, counting it.
				log.FromContext(ctx).V(1).Info("reservation refused, deciding again", "err", err.Error())
				metrics.SchedulingAttempts.WithLabelValues(metrics.ResultConflict).Inc()
				return reconcile.Result{Requeue: true}, nil
			}
			metrics.SchedulingAttempts.WithLabelValues(metrics.ResultError).Inc()
			return reconcile.Result{}, fmt.Errorf("failed to reserve room on runtime %s: %w", chosen.Name, err)
		}
	}
	if err := w.assign(ctx, chosen.Name); err != nil {
		s.acct.Forget(key)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
			// Someone else changed the capability first (another coordinator assigned it,
			// the tenant edited or deleted it): look again at what is there now.
			metrics.SchedulingAttempts.WithLabelValues(metrics.ResultConflict).Inc()
			return reconcile.Result{Requeue: true}, nil
		}
		metrics.SchedulingAttempts.WithLabelValues(metrics.ResultError).Inc()
		return reconcile.Result{}, err
	}
	metrics.SchedulingAttempts.WithLabelValues(metrics.ResultScheduled).Inc()
	metrics.CreateToAssignedSeconds.Observe(s.opts.Now().Sub(w.obj.GetCreationTimestamp().Time).Seconds())
	s.waiting.remove(key)

	msg := fmt.Sprintf("assigned to runtime %s in region %s (%d/%d runtimes fit)", chosen.Name, chosen.Spec.Location.Region, res.Feasible, res.Evaluated)
	if s.opts.NormalEvents {
		w.store.Event(ctx, w.obj, corev1.EventTypeNormal, EventScheduled, msg)
	}
	if w.waited() {
		// It waited before: say at once that the wait is over, rather than leave the
		// old reason standing until the servicelet's first status write.
		if err := w.status(ctx, metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, msg, &chosen.Spec.Location, report); err != nil {
			// The assignment stands; the next reconcile completes the status.
			return reconcile.Result{}, err
		}
	}
	s.written.Store(key, chosen.Name)
	return reconcile.Result{}, nil
}

// classes lists the provider's runtime classes for a location hint; none when there is
// no lister or it fails (the hint is a courtesy, not worth a retry).
func (s *Scheduler) classes(ctx context.Context) []*platformv1alpha1.ServiceRuntimeClass {
	if s.opts.Classes == nil {
		return nil
	}
	classes, err := s.opts.Classes.List(ctx)
	if err != nil {
		log.FromContext(ctx).V(1).Info("cannot list runtime classes for the location hint", "err", err)
		return nil
	}
	return classes
}

// wait reports why the capability is not placed and retries it with backoff; a change
// of the runtimes or freed capacity retries it at once.
func (r *reconciler) wait(ctx context.Context, key string, c *framework.Capability, req mcreconcile.Request, w *writer, reason, msg string, report *platformv1alpha1.SchedulingStatus) (reconcile.Result, error) {
	s := r.s
	attempts := s.waiting.add(key, r.kindIndex, req, reason, msg, c)
	if reason == platformv1alpha1.ReasonUnschedulable {
		// The runtime manager may have ordered a runtime for it, or know why it cannot.
		if why, ok := s.waitReason(key); ok {
			reason, msg = why.Reason, why.Message+" (now "+msg+")"
		}
	}
	old := meta.FindStatusCondition(w.doc.Status.Conditions, platformv1alpha1.ConditionScheduled)
	if old == nil || old.Reason != reason || old.Message != msg {
		w.store.Event(ctx, w.obj, corev1.EventTypeWarning, EventFailedScheduling, msg)
		log.FromContext(ctx).V(1).Info("not scheduled", "reason", reason, "message", msg)
	}
	if err := w.status(ctx, metav1.ConditionFalse, reason, msg, nil, report); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: backoff(attempts, s.opts.InitialBackoff, s.opts.MaxBackoff)}, nil
}

func backoff(attempts int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

func schedulingReport(res *framework.Result, now time.Time) *platformv1alpha1.SchedulingStatus {
	rep := &platformv1alpha1.SchedulingStatus{
		LastUpdateTime: &metav1.Time{Time: now},
		Evaluated:      int32(res.Evaluated),
		Feasible:       int32(res.Feasible),
	}
	for _, c := range res.Candidates {
		rep.Candidates = append(rep.Candidates, platformv1alpha1.SchedulingCandidate{
			Runtime: c.Runtime.Name(), Region: c.Runtime.Runtime.Spec.Location.Region, Score: c.Score,
		})
	}
	return rep
}

// writer writes the scheduler's part of one capability.
type writer struct {
	store capabilityStore
	obj   *unstructured.Unstructured
	doc   *document
	now   func() time.Time
}

// assign writes the decision: the runtime's name, the label its servicelet selects by
// and the servicelet's finalizer, in one patch guarded by the resourceVersion the
// decision was made on. The label and the finalizer together are the scheduler's word
// that the runtime may act: its servicelet starts at once and reports Scheduled=True
// with its first status write, so that placing a capability costs one write here.
func (w *writer) assign(ctx context.Context, runtimeName string) error {
	meta := w.approval(runtimeName)
	return w.patch(ctx, map[string]any{"metadata": meta, "spec": map[string]any{"runtimeName": runtimeName}})
}

// label approves a capability whose runtimeName a consumer set: the runtime label and
// the servicelet's finalizer.
func (w *writer) label(ctx context.Context, runtimeName string) error {
	return w.patch(ctx, map[string]any{"metadata": w.approval(runtimeName)})
}

// approval is the metadata of an assignment: the label, the servicelet's finalizer
// (a merge patch replaces the list: the resourceVersion guard keeps other owners'
// finalizers) and that guard.
func (w *writer) approval(runtimeName string) map[string]any {
	meta := map[string]any{
		"resourceVersion": w.obj.GetResourceVersion(),
		"labels":          map[string]any{platformv1alpha1.LabelRuntime: runtimeName},
	}
	if !hasServiceletFinalizer(w.obj) {
		fins := []any{}
		for _, f := range w.obj.GetFinalizers() {
			fins = append(fins, f)
		}
		meta["finalizers"] = append(fins, platformv1alpha1.FinalizerServicelet)
	}
	return meta
}

func hasServiceletFinalizer(obj *unstructured.Unstructured) bool {
	return slices.Contains(obj.GetFinalizers(), platformv1alpha1.FinalizerServicelet)
}

// waited tells whether the document carries a Scheduled condition that is not True: it
// waited before, and that condition would stand until the servicelet's first status.
func (w *writer) waited() bool {
	c := meta.FindStatusCondition(w.doc.Status.Conditions, platformv1alpha1.ConditionScheduled)
	return c != nil && c.Status != metav1.ConditionTrue
}

func (w *writer) patch(ctx context.Context, patch map[string]any) error {
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := w.store.Patch(ctx, w.obj, raw); err != nil {
		return fmt.Errorf("failed to patch capability: %w", err)
	}
	return nil
}

// status applies the scheduler's part of the status (the Scheduled condition, the
// location, the scheduling report) with server-side apply, so the servicelet's
// conditions are left alone. Nothing is written when nothing would change.
func (w *writer) status(ctx context.Context, status metav1.ConditionStatus, reason, msg string, location *platformv1alpha1.Location, report *platformv1alpha1.SchedulingStatus) error {
	old := meta.FindStatusCondition(w.doc.Status.Conditions, platformv1alpha1.ConditionScheduled)
	cond := metav1.Condition{
		Type:               platformv1alpha1.ConditionScheduled,
		Status:             status,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: w.obj.GetGeneration(),
		LastTransitionTime: metav1.Time{Time: w.now()},
	}
	if old != nil && old.Status == status {
		cond.LastTransitionTime = old.LastTransitionTime
		if old.Reason == reason && old.Message == msg && old.ObservedGeneration == cond.ObservedGeneration &&
			sameLocation(w.doc.Status.Location, location) && (report == nil || sameReport(w.doc.Status.Scheduling, report)) {
			return nil
		}
	}
	if report != nil && w.doc.Status.Scheduling != nil && sameReport(w.doc.Status.Scheduling, report) {
		report.LastUpdateTime = w.doc.Status.Scheduling.LastUpdateTime
	}
	st := map[string]any{"conditions": []any{conditions.Unstructured(cond)}}
	if location != nil {
		loc, err := runtime.DefaultUnstructuredConverter.ToUnstructured(location)
		if err != nil {
			return err
		}
		st["location"] = loc
	}
	if report == nil && w.doc.Status.Scheduling != nil {
		report = w.doc.Status.Scheduling // keep what we reported before
	}
	if report != nil {
		rep, err := runtime.DefaultUnstructuredConverter.ToUnstructured(report)
		if err != nil {
			return err
		}
		st["scheduling"] = rep
	}
	apply := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": w.obj.GetAPIVersion(),
		"kind":       w.obj.GetKind(),
		"metadata":   map[string]any{"name": w.obj.GetName(), "namespace": w.obj.GetNamespace()},
		"status":     st,
	}}
	err := w.store.ApplyStatus(ctx, apply)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to write the Scheduled condition: %w", err)
	}
	return nil
}

func sameLocation(a, b *platformv1alpha1.Location) bool {
	if a == nil || b == nil {
		return a == b || b == nil
	}
	return *a == *b
}

func sameReport(a, b *platformv1alpha1.SchedulingStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Evaluated != b.Evaluated || a.Feasible != b.Feasible || len(a.Candidates) != len(b.Candidates) {
		return false
	}
	for i := range a.Candidates {
		if a.Candidates[i] != b.Candidates[i] {
			return false
		}
	}
	return true
}

// parseResources reads a resource list from unstructured content, skipping entries that
// are not quantities (admission rejects those anyway).
func parseResources(raw map[string]any) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, v := range raw {
		q, err := resource.ParseQuantity(fmt.Sprint(v))
		if err != nil {
			continue
		}
		out[corev1.ResourceName(name)] = q
	}
	return out
}
