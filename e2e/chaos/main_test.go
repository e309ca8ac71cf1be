//go:build chaos

// Package chaos is msp-chaos: a fault-injection run against the real platform (kcp, the
// postgres provider's coordinator and front door, PostgreSQL runtimes on real servers,
// test-driver runtimes), on the e2e framework, with a bad-input sweep. It is not part of
// `make test`; `make chaos` builds it into _bin/msp-chaos and runs it:
//
//	MSP_CHAOS_SEED=42 make chaos
//
// See TestChaos for what it does and README, "Reliability in figures", for a run.
package chaos

import (
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }
