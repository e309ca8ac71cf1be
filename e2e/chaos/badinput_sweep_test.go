//go:build chaos

package chaos

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/msp-dev/msp/e2e/framework"
)

// badMinRows is how many cases issue 19 asks the sweep for.
const badMinRows = 30

// TestBadInputSweep runs the bad-input sweep on a provider of its own: its coordinator,
// one test-driver runtime and two tenants. It prints the table, writes it to
// $MSP_CHAOS_OUT/badinput.md when that is set, and fails for every case in which the
// platform did not give a clear refusal or condition, or disturbed something else.
func TestBadInputSweep(t *testing.T) {
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-bad", Region: "eu-de", Country: "DE", Capabilities: 100})
	a, b := p.NewTenant(t), p.NewTenant(t)

	start := time.Now()
	rows := BadInputSweep(t, env, p, sl, a, b)
	table := BadInputTable(rows)
	ok := 0
	for _, r := range rows {
		if r.OK {
			ok++
		}
	}
	t.Logf("bad-input sweep: %d cases, %d ok, in %s\n%s", len(rows), ok, time.Since(start).Round(time.Second), table)
	if dir := os.Getenv("MSP_CHAOS_OUT"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Errorf("failed to create %s: %v", dir, err)
		} else if err := os.WriteFile(filepath.Join(dir, "badinput.md"), []byte(table), 0o644); err != nil {
			t.Errorf("failed to write the table: %v", err)
		}
	}
	if len(rows) < badMinRows {
		t.Errorf("the sweep ran %d cases, want at least %d", len(rows), badMinRows)
	}
	for _, r := range rows {
		if !r.OK {
			t.Errorf("%s: %s → %s (disturbed: %v)", r.Case, r.Input, r.UserSaw, r.Disturbed)
		}
	}
}
