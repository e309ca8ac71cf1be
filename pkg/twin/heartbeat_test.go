package twin

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

func readyRuntime(name string, heartbeat time.Time) *platformv1alpha1.ServiceRuntime {
	return &platformv1alpha1.ServiceRuntime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: platformv1alpha1.ServiceRuntimeStatus{
			LastHeartbeatTime: &metav1.Time{Time: heartbeat},
			Conditions: []metav1.Condition{{
				Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
				Reason: platformv1alpha1.ReasonHeartbeatFresh, LastTransitionTime: metav1.Time{Time: heartbeat},
			}},
		},
	}
}

func TestHeartbeatMonitor(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	const timeout, tolerance = 40 * time.Second, 5 * time.Minute
	tests := []struct {
		name      string
		runtimes  []*platformv1alpha1.ServiceRuntime
		wantReady bool
	}{
		{
			name:      "fresh",
			runtimes:  []*platformv1alpha1.ServiceRuntime{readyRuntime("rt", now.Add(-10*time.Second)), readyRuntime("other", now)},
			wantReady: true,
		},
		{
			name:     "silent among runtimes that report",
			runtimes: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt", now.Add(-50*time.Second)), readyRuntime("other", now.Add(-time.Second))},
		},
		{
			name:      "every runtime late alike: kcp lags, the runtime stays Ready",
			runtimes:  []*platformv1alpha1.ServiceRuntime{readyRuntime("rt", now.Add(-90*time.Second)), readyRuntime("other", now.Add(-85*time.Second))},
			wantReady: true,
		},
		{
			name:     "every runtime silent past the tolerance",
			runtimes: []*platformv1alpha1.ServiceRuntime{readyRuntime("rt", now.Add(-6*time.Minute)), readyRuntime("other", now.Add(-6*time.Minute))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := make([]client.Object, len(tt.runtimes))
			for i, rt := range tt.runtimes {
				objs[i] = rt
			}
			c := fake.NewClientBuilder().WithScheme(scheme()).WithObjects(objs...).
				WithStatusSubresource(&platformv1alpha1.ServiceRuntime{}).Build()
			h := &HeartbeatMonitor{Client: c, Timeout: timeout, Tolerance: tolerance, Now: func() time.Time { return now }}
			res, err := h.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: "rt"}})
			if err != nil {
				t.Fatal(err)
			}
			rt := &platformv1alpha1.ServiceRuntime{}
			if err := c.Get(context.Background(), client.ObjectKey{Name: "rt"}, rt); err != nil {
				t.Fatal(err)
			}
			cond := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
			if ready := cond.Status == metav1.ConditionTrue; ready != tt.wantReady {
				t.Fatalf("Ready = %v (%s: %s), want %v", ready, cond.Reason, cond.Message, tt.wantReady)
			}
			if !tt.wantReady && cond.Reason != platformv1alpha1.ReasonHeartbeatMissed {
				t.Errorf("reason %q, want %q", cond.Reason, platformv1alpha1.ReasonHeartbeatMissed)
			}
			if tt.wantReady && res.RequeueAfter <= 0 {
				t.Errorf("a Ready runtime must be looked at again; got %+v", res)
			}
		})
	}
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(platformv1alpha1.AddToScheme(s))
	return s
}
