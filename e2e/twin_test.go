package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
)

// A runtime's twin costs kcp one stored write per heartbeat interval, while capabilities
// arrive on the runtime as much as when it is idle: what the runtime hosts rides the next
// heartbeat. The servicelet's /metrics tell what it did.
func TestTwinWritesOncePerHeartbeat(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	const interval, window, load = 3 * time.Second, 15 * time.Second, 20
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "counted", Region: "eu-de", Country: "DE",
		Args: []string{"--heartbeat-interval=" + interval.String()}})
	c := p.NewTenantUsingRuntimes(t).Client(t)
	pc := p.Client(t)
	rt := &platformv1alpha1.ServiceRuntime{}
	framework.Eventually(t, time.Minute, "runtime counted to report", func(ctx context.Context) (bool, string, error) {
		err := pc.Get(ctx, client.ObjectKey{Name: "counted"}, rt)
		return err == nil && rt.Status.LastHeartbeatTime != nil, "", client.IgnoreNotFound(err)
	})

	// Every stored write of the twin is one MODIFIED event of a watch on it.
	ctx, cancel := context.WithTimeout(context.Background(), window+30*time.Second)
	defer cancel()
	w, err := dynamic.NewForConfigOrDie(p.Config).Resource(platformv1alpha1.SchemeGroupVersion.WithResource("serviceruntimes")).
		Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=counted", ResourceVersion: rt.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	start := time.Now()
	counted := make(chan int)
	go func() {
		n := 0
		deadline := time.After(window)
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					counted <- -1
					return
				}
				if ev.Type == watch.Modified {
					n++
				}
			case <-deadline:
				counted <- n
				return
			}
		}
	}()

	// The load: capabilities arrive on the runtime through the first half of the window.
	for i := 0; i < load; i++ {
		create(t, c, onRuntime(fmt.Sprintf("load-%d", i), "counted"))
		time.Sleep(window / 2 / load)
	}
	writes := <-counted
	if writes < 0 {
		t.Fatal("the watch on the twin ended early")
	}
	// One heartbeat per interval, and one more for the phase of the first.
	if most := int(window/interval) + 1; writes > most {
		t.Errorf("the twin was written %d times in %s with capabilities arriving, want at most %d (one per %s heartbeat)", writes, window, most, interval)
	} else if least := int(window/interval) - 1; writes < least {
		t.Errorf("the twin was written %d times in %s, want at least %d: is the heartbeat written?", writes, window, least)
	} else {
		t.Logf("the twin was written %d times in %s (heartbeat interval %s) while %d capabilities arrived", writes, time.Since(start).Round(time.Second), interval, load)
	}

	for i := 0; i < load; i++ {
		waitCondition(t, c, fmt.Sprintf("load-%d", i), platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)
	}
	framework.Eventually(t, 2*interval+10*time.Second, "the twin to count the runtime's capabilities", func(ctx context.Context) (bool, string, error) {
		err := pc.Get(ctx, client.ObjectKey{Name: "counted"}, rt)
		return err == nil && rt.Status.CapabilityCount == load, fmt.Sprintf("capabilityCount %d", rt.Status.CapabilityCount), err
	})

	// The servicelet's metrics.
	framework.Eventually(t, 30*time.Second, "the servicelet's metrics to tell what it did", func(ctx context.Context) (bool, string, error) {
		m, err := framework.Scrape(ctx, sl.DebugAddr)
		if err != nil {
			return false, "", err
		}
		got := fmt.Sprintf("reconciles ok %v, create→Ready observed %v, capabilities %v, queue depth %v, heartbeat writes %v",
			m[`msp_servicelet_reconciles_total{result="ok"}`], m["msp_servicelet_create_to_ready_seconds_count"],
			m["msp_servicelet_capabilities"], m["msp_servicelet_queue_depth"], m[`msp_servicelet_twin_writes_total{reason="heartbeat"}`])
		_, hasDepth := m["msp_servicelet_queue_depth"]
		return m[`msp_servicelet_reconciles_total{result="ok"}`] >= load && m["msp_servicelet_create_to_ready_seconds_count"] == load &&
			m["msp_servicelet_capabilities"] == load && hasDepth &&
			m[`msp_servicelet_twin_writes_total{reason="heartbeat"}`] >= float64(writes), got, nil
	})
}
