//go:build probe

// Package probe holds experiments against the real kcp v0.28.1 that msp builds: what kcp
// can and cannot enforce for per-component identities (issue 13). It is not part of the
// suite; run it on its own:
//
//	cd /work/main && MSP_BIN=/work/main/_bin go test -tags probe ./e2e/probe -count=1 -v -timeout 20m
//
// Every request the probes make is logged with kcp's answer; FINDINGS.md is written from
// that log.
package probe

import (
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }
