package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Servicelet is a running msp-servicelet process with the test driver.
type Servicelet struct {
	// Runtime is its runtime's name; StateDir is the test driver's folder.
	Runtime, StateDir string
	// DebugAddr serves /capabilities.
	DebugAddr string
	args      []string
	bin       string
	logFile   string
	cmd       *exec.Cmd
	done      chan struct{}
}

// ServiceletSpec describes a servicelet a test starts; it registers its runtime.
type ServiceletSpec struct {
	Runtime, Region, Country string
	// Capacity in "capabilities"; 0 leaves it unlimited.
	Capabilities int
	// Args are extra flags, e.g. --provision-delay=5s.
	Args []string
}

// StartServicelet runs msp-servicelet with the test driver for a new runtime of this
// provider until the test ends.
func (p *Provider) StartServicelet(t testing.TB, spec ServiceletSpec) *Servicelet {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Servicelet{Runtime: spec.Runtime, StateDir: filepath.Join(dir, "state"), DebugAddr: fmt.Sprintf("127.0.0.1:%d", port),
		bin: filepath.Join(p.env.Bin, "msp-servicelet"), logFile: filepath.Join(dir, "servicelet.log")}
	s.args = []string{
		"--kubeconfig", p.env.Kubeconfig(), "--workspace", p.Path, "--export", p.Export,
		"--runtime", spec.Runtime, "--register", "--region", spec.Region, "--country", spec.Country,
		"--state-dir", s.StateDir, "--debug-bind-address", s.DebugAddr, "--heartbeat-interval", "2s",
	}
	// (The state folder only matters to the test driver; a later --driver flag wins.)
	if spec.Capabilities > 0 {
		s.args = append(s.args, "--capacity", fmt.Sprintf("capabilities=%d", spec.Capabilities))
	}
	s.args = append(s.args, spec.Args...)
	s.start(t)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			raw, _ := os.ReadFile(s.logFile)
			lines := strings.Split(string(raw), "\n")
			if len(lines) > 30 {
				lines = lines[len(lines)-30:]
			}
			t.Logf("last lines of servicelet %s:\n%s", s.Runtime, strings.Join(lines, "\n"))
		}
	})
	return s
}

func (s *Servicelet) start(t testing.TB) {
	t.Helper()
	out, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("failed to start msp-servicelet: %v", err)
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
}

// Stop ends the servicelet gracefully.
func (s *Servicelet) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Kill ends the servicelet with SIGKILL, as a crash would.
func (s *Servicelet) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the stopped or killed servicelet again with the same state.
func (s *Servicelet) Restart(t testing.TB) {
	t.Helper()
	s.start(t)
}

// CachedCapability is what the servicelet's /capabilities reports.
type CachedCapability struct {
	Cluster, Namespace, Name, Kind, Runtime string
}

// Cached returns what the servicelet's cache holds.
func (s *Servicelet) Cached(ctx context.Context) ([]CachedCapability, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.DebugAddr+"/capabilities", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []CachedCapability
	return out, json.NewDecoder(resp.Body).Decode(&out)
}
