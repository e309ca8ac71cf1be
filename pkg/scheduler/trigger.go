package scheduler

import (
	"context"
	"sync"

	"k8s.io/client-go/util/workqueue"
	mcreconcile "sigs.k8s.io/multicluster-runtime/pkg/reconcile"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// trigger is a controller source that the scheduler feeds itself: it puts capabilities
// that waited for a runtime back on their controller's queue when something changed.
type trigger struct {
	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[mcreconcile.Request]
	pending []mcreconcile.Request
}

// Start is called by the controller with its queue.
func (t *trigger) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[mcreconcile.Request]) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = q
	for _, r := range t.pending {
		q.Add(r)
	}
	t.pending = nil
	return nil
}

func (t *trigger) add(r mcreconcile.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queue == nil {
		t.pending = append(t.pending, r)
		return
	}
	t.queue.Add(r)
}

// waiting is a capability that nothing fitted, with its retry count.
type waiting struct {
	req        mcreconcile.Request
	kindIndex  int
	attempts   int
	reason     string
	message    string
	capability *framework.Capability
}

// waitingSet holds the capabilities that wait for a runtime, so that a change of the
// runtimes can retry exactly them.
type waitingSet struct {
	mu    sync.Mutex
	items map[string]*waiting
}

func newWaitingSet() *waitingSet { return &waitingSet{items: map[string]*waiting{}} }

// add records another failed attempt and returns how many there were.
func (w *waitingSet) add(key string, kindIndex int, req mcreconcile.Request, reason, message string, c *framework.Capability) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	it, ok := w.items[key]
	if !ok {
		it = &waiting{req: req, kindIndex: kindIndex}
		w.items[key] = it
	}
	it.attempts++
	it.reason, it.message, it.capability = reason, message, c
	return it.attempts
}

func (w *waitingSet) remove(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.items, key)
}

func (w *waitingSet) all() []waiting {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]waiting, 0, len(w.items))
	for _, it := range w.items {
		out = append(out, *it)
	}
	return out
}

func (w *waitingSet) snapshot() map[string]waiting {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]waiting, len(w.items))
	for k, it := range w.items {
		out[k] = *it
	}
	return out
}

func (w *waitingSet) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.items)
}
