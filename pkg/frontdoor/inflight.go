package frontdoor

import (
	"context"
	"errors"
	"sync"
)

// errRevoked is the cause of the contexts of a revoked servicelet's requests.
var errRevoked = errors.New("the servicelet's ServiceAccount was deleted or replaced")

// inflight tracks the requests being forwarded, per runtime, so that revoking a runtime
// cuts them: kcp keeps an open watch alive long after its credential was revoked.
type inflight struct {
	mu        sync.Mutex
	next      uint64
	byRuntime map[string]map[uint64]context.CancelCauseFunc
}

func newInflight() *inflight {
	return &inflight{byRuntime: map[string]map[uint64]context.CancelCauseFunc{}}
}

// track returns a context for one request of runtime, ended by revoke, and the function
// to call when the request is done.
func (t *inflight) track(ctx context.Context, runtime string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	t.mu.Lock()
	t.next++
	id := t.next
	if t.byRuntime[runtime] == nil {
		t.byRuntime[runtime] = map[uint64]context.CancelCauseFunc{}
	}
	t.byRuntime[runtime][id] = cancel
	t.mu.Unlock()
	return ctx, func() {
		t.mu.Lock()
		delete(t.byRuntime[runtime], id)
		if len(t.byRuntime[runtime]) == 0 {
			delete(t.byRuntime, runtime)
		}
		t.mu.Unlock()
		cancel(context.Canceled)
	}
}

// revoke cancels every request of runtime in flight and returns how many there were.
func (t *inflight) revoke(runtime string) int {
	t.mu.Lock()
	cancels := t.byRuntime[runtime]
	delete(t.byRuntime, runtime)
	t.mu.Unlock()
	for _, cancel := range cancels {
		cancel(errRevoked)
	}
	return len(cancels)
}

// count returns how many requests of runtime are in flight.
func (t *inflight) count(runtime string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byRuntime[runtime])
}

// revoked says whether ctx was ended by revoke.
func revoked(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errRevoked)
}
