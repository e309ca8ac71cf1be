// Package e2e holds msp's end-to-end tests: real kcp, real kubectl with the kcp plugins.
// `make test-e2e` runs them; each test works in workspaces of its own and runs in parallel.
package e2e

import (
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }
