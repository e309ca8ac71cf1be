package framework

import (
	"context"
	"testing"
	"time"
)

// Eventually polls cond until it reports done, failing the test after timeout with what
// it waited for and the last state cond reported. It polls every 100ms at first and
// backs off to every 2s, so that a long wait does not load the server it watches.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (done bool, state string, err error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	interval := 100 * time.Millisecond
	var state string
	var lastErr error
	for {
		done, s, err := cond(ctx)
		if done && err == nil {
			return
		}
		state, lastErr = s, err
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s; last state: %s; last error: %v", timeout, what, state, lastErr)
		case <-time.After(interval):
		}
		interval = min(interval*3/2, 2*time.Second)
	}
}
