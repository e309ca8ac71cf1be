package conditions

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUnstructured(t *testing.T) {
	at := time.Date(2026, 11, 21, 7, 0, 0, 0, time.FixedZone("CET", 3600))
	got := Unstructured(metav1.Condition{
		Type: "Ready", Status: metav1.ConditionTrue, Reason: "Available", Message: "ok",
		ObservedGeneration: 3, LastTransitionTime: metav1.NewTime(at),
	})
	want := map[string]any{
		"type": "Ready", "status": "True", "reason": "Available", "message": "ok",
		"observedGeneration": int64(3), "lastTransitionTime": "2026-11-21T06:00:00Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
