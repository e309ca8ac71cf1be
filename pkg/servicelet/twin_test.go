package servicelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWriteDue(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const interval = time.Minute
	ready, down := "True|HeartbeatFresh", "False|RuntimeUnavailable"
	tests := []struct {
		name      string
		lastWrite time.Time
		now       time.Time
		written   string
		verdict   string
		want      string
	}{
		{"first report", time.Time{}, t0, "", ready, writeHeartbeat},
		{"idle, within the interval", t0, t0.Add(59 * time.Second), ready, ready, ""},
		{"idle, the interval passed", t0, t0.Add(interval), ready, ready, writeHeartbeat},
		{"the runtime went down", t0, t0.Add(time.Second), ready, down, writeVerdict},
		{"the runtime is back", t0, t0.Add(time.Second), down, ready, writeVerdict},
		{"still down, within the interval", t0, t0.Add(10 * time.Second), down, down, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := writeDue(tt.lastWrite, tt.now, interval, tt.written, tt.verdict); got != tt.want {
				t.Errorf("writeDue() = %q, want %q", got, tt.want)
			}
		})
	}
}

// Under load, what a runtime hosts changes all the time; none of it is a reason to write
// before the interval passed: a minute of changes costs one write.
func TestWriteDueIgnoresWhatTheRuntimeHosts(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	writes, last := 0, time.Time{}
	for now := t0; now.Before(t0.Add(10 * time.Minute)); now = now.Add(100 * time.Millisecond) {
		if writeDue(last, now, time.Minute, "True|HeartbeatFresh", "True|HeartbeatFresh") != "" {
			writes++
			last = now
		}
	}
	if writes != 10 {
		t.Errorf("%d writes in ten minutes at a 1m interval, want 10", writes)
	}
}

// A change of the capacity the runtime reports is written at once, like a change of its
// Ready verdict; the same capacity in other units or map order is no change.
func TestVerdictCarriesTheReportedCapacity(t *testing.T) {
	ready := metav1.Condition{Status: metav1.ConditionTrue, Reason: "HeartbeatFresh"}
	at := func(pairs ...string) observation {
		o := observation{cond: ready}
		if len(pairs) > 0 {
			o.capacity = corev1.ResourceList{}
		}
		for i := 0; i < len(pairs); i += 2 {
			o.capacity[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
		}
		return o
	}
	if at().verdict() != "True|HeartbeatFresh" {
		t.Errorf("verdict without a reported capacity = %q", at().verdict())
	}
	two, twoAgain := at("cpu", "2", "memory", "8Gi"), at("memory", "8192Mi", "cpu", "2000m")
	if two.verdict() != twoAgain.verdict() {
		t.Errorf("the same capacity gives two verdicts: %q and %q", two.verdict(), twoAgain.verdict())
	}
	if one := at("cpu", "1", "memory", "8Gi"); one.verdict() == two.verdict() {
		t.Errorf("a node lost leaves the verdict as it was: %q", one.verdict())
	}
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	if got := writeDue(t0, t0.Add(time.Second), time.Minute, two.verdict(), at("cpu", "4", "memory", "8Gi").verdict()); got != writeVerdict {
		t.Errorf("writeDue() after the capacity changed = %q, want %q", got, writeVerdict)
	}
}
