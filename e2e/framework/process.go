package framework

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/msp-dev/msp/pkg/child"
)

// process is a platform component a test runs as its own binary, logging to a file.
type process struct {
	*child.Process
	logFile string
}

// startProcess starts bin with args, appending its output to logFile; it dies with the
// test binary.
func startProcess(t testing.TB, bin, logFile string, args ...string) *process {
	t.Helper()
	p, err := child.Start(bin, args, logFile)
	if err != nil {
		t.Fatal(err)
	}
	return &process{Process: p, logFile: logFile}
}

// Stop ends the process gracefully: SIGTERM, then SIGKILL after 10s.
func (p *process) Stop() { p.Process.Stop(10 * time.Second) }

// logTail logs the last lines of the process's log when the test failed.
func (p *process) logTail(t testing.TB, name string) {
	if !t.Failed() {
		return
	}
	raw, _ := os.ReadFile(p.logFile)
	lines := strings.Split(string(raw), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("last lines of %s (%s):\n%s", name, p.logFile, strings.Join(lines, "\n"))
}
