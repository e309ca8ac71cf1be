package framework

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// process is a platform component a test runs as its own binary, logging to a file.
type process struct {
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
}

// startProcess starts bin with args, appending its output to logFile; it dies with the
// test binary.
func startProcess(t testing.TB, bin, logFile string, args ...string) *process {
	t.Helper()
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("failed to start %s: %v", bin, err)
	}
	p := &process{cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p
}

// Stop ends the process gracefully: SIGTERM, then SIGKILL after 10s.
func (p *process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (p *process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

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
