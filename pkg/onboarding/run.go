package onboarding

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// run tells whether the provider runs: its front door is configured, a coordinator holds
// its lease, and a runtime is Ready or a runtime class can order one.
func (r *Reconciler) run(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) (verdict, error) {
	ws := ProviderWorkspace(sp.Name)
	dyn := r.in(ws)
	st := onboardingv1alpha1.RunStatus{}
	defer func() { sp.Status.Run = st }()

	lease, err := dyn.Resource(gvrLease).Namespace("default").Get(ctx, CoordinatorLease(sp.Spec.Export), metav1.GetOptions{})
	if err != nil && !isNotFound(err) {
		return verdict{false, onboardingv1alpha1.ReasonNoCoordinator, err.Error()}, err
	}
	holder, fresh := "", false
	if err == nil {
		holder, fresh = leaseHeld(lease, r.now())
	}
	if !fresh {
		// Replicas that share the workspaces (--shard-workspaces) each keep a Lease.
		replicas, err := dyn.Resource(gvrLease).Namespace("default").List(ctx, metav1.ListOptions{LabelSelector: platformv1alpha1.LabelCoordinatorPeers + "=" + sp.Spec.Export})
		if err != nil {
			return verdict{false, onboardingv1alpha1.ReasonNoCoordinator, err.Error()}, err
		}
		var live []string
		for i := range replicas.Items {
			if id, ok := leaseHeld(&replicas.Items[i], r.now()); ok {
				live = append(live, id)
			}
		}
		if len(live) > 0 {
			sort.Strings(live)
			holder, fresh = strings.Join(live, ", "), true
		}
	}
	if fresh {
		st.Coordinator = holder
	}
	runtimes, err := dyn.Resource(gvrRuntime).List(ctx, metav1.ListOptions{})
	if err != nil {
		return verdict{false, onboardingv1alpha1.ReasonNoRuntime, fmt.Sprintf("cannot list the ServiceRuntimes of %s: %v", ws, err)}, err
	}
	for _, rt := range runtimes.Items {
		if conditionTrue(&rt, "Ready") {
			st.ReadyRuntimes++
		}
	}
	classes, err := dyn.Resource(gvrRuntimeClass).List(ctx, metav1.ListOptions{})
	if err != nil {
		return verdict{false, onboardingv1alpha1.ReasonNoRuntime, fmt.Sprintf("cannot list the ServiceRuntimeClasses of %s: %v", ws, err)}, err
	}
	for _, c := range classes.Items {
		if conditionTrue(&c, "Ready") {
			st.RuntimeClasses++
		}
	}
	switch {
	case sp.Spec.Run.FrontDoor == nil:
		return verdict{false, onboardingv1alpha1.ReasonNoFrontDoor, "spec.run.frontDoor is not set: servicelets have nowhere to connect, and the provider's kinds are not admitted; run msp-frontdoor and set its URL and CA bundle"}, nil
	case !fresh:
		why := "no coordinator holds the Lease default/" + CoordinatorLease(sp.Spec.Export) + " in " + ws
		if holder != "" {
			why = fmt.Sprintf("the coordinator %s stopped renewing the Lease default/%s in %s", holder, CoordinatorLease(sp.Spec.Export), ws)
		}
		return verdict{false, onboardingv1alpha1.ReasonNoCoordinator, why + ": start the provider's coordinator with --leader-elect (or its replicas with --shard-workspaces)"}, nil
	case st.ReadyRuntimes == 0 && st.RuntimeClasses == 0:
		return verdict{false, onboardingv1alpha1.ReasonNoRuntime, fmt.Sprintf("the coordinator %s leads, but no ServiceRuntime is Ready (%d registered) and no ServiceRuntimeClass can order one (%d defined): start a servicelet, or define a runtime class", holder, len(runtimes.Items), len(classes.Items))}, nil
	}
	parts := []string{fmt.Sprintf("the coordinator %s leads", holder), fmt.Sprintf("%d of %d runtimes Ready", st.ReadyRuntimes, len(runtimes.Items))}
	if st.RuntimeClasses > 0 {
		parts = append(parts, fmt.Sprintf("%d runtime classes can order more", st.RuntimeClasses))
	}
	return verdict{true, onboardingv1alpha1.ReasonRunning, strings.Join(parts, "; ")}, nil
}

// leaseHeld returns a Lease's holder and whether it renewed within its duration.
func leaseHeld(lease *unstructured.Unstructured, now time.Time) (string, bool) {
	holder, _, _ := unstructured.NestedString(lease.Object, "spec", "holderIdentity")
	renew, _, _ := unstructured.NestedString(lease.Object, "spec", "renewTime")
	secs, _, _ := unstructured.NestedInt64(lease.Object, "spec", "leaseDurationSeconds")
	if holder == "" || renew == "" {
		return holder, false
	}
	t, err := time.Parse(time.RFC3339Nano, renew)
	if err != nil {
		return holder, false
	}
	if secs <= 0 {
		secs = 15
	}
	// Twice the duration: kcp may be slow to take a renewal, and a coordinator that
	// misses one renewal still leads.
	return holder, now.Sub(t) <= 2*time.Duration(secs)*time.Second
}

func conditionTrue(u *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == condType {
			return m["status"] == "True"
		}
	}
	return false
}
