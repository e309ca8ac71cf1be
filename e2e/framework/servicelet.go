package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/msp-dev/msp/pkg/ports"
	"github.com/msp-dev/msp/sdk/launch"
)

// Servicelet is a running msp-servicelet process with the test driver.
type Servicelet struct {
	*process
	// Runtime is its runtime's name; StateDir is the test driver's folder.
	Runtime, StateDir string
	// DebugAddr serves /capabilities.
	DebugAddr string
	// Kubeconfig is its own credential: a token for the provider's front door.
	Kubeconfig string
	args       []string
	bin        string
	logFile    string
}

// ServiceletSpec describes a servicelet a test starts; it registers its runtime.
type ServiceletSpec struct {
	Runtime, Region, Country string
	// Capacity in "capabilities"; 0 leaves it unlimited.
	Capabilities int
	// Capacity, when set, is the runtime's whole --capacity (e.g. cpu=4,memory=8Gi),
	// instead of Capabilities.
	Capacity string
	// Args are extra flags, e.g. --provision-delay=5s.
	Args []string
}

// StartServicelet runs msp-servicelet with the test driver for a new runtime of this
// provider until the test ends.
func (p *Provider) StartServicelet(t testing.TB, spec ServiceletSpec) *Servicelet {
	t.Helper()
	return p.StartProviderServicelet(t, "msp-servicelet", spec)
}

// StartProviderServicelet runs a provider's servicelet binary (from the bin folder) for
// a new runtime of this provider until the test ends; spec.Args carry its own flags.
// Only msp-servicelet (the test driver) gets --state-dir. An absolute binary path is run
// as it is (a provider module's own build).
func (p *Provider) StartProviderServicelet(t testing.TB, binary string, spec ServiceletSpec) *Servicelet {
	t.Helper()
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if !filepath.IsAbs(binary) {
		binary = filepath.Join(p.env.Bin, binary)
	}
	s := &Servicelet{Runtime: spec.Runtime, StateDir: filepath.Join(dir, "state"), DebugAddr: fmt.Sprintf("127.0.0.1:%d", port),
		bin: binary, logFile: filepath.Join(dir, "servicelet.log")}
	s.Kubeconfig = p.ServiceletKubeconfig(t, spec.Runtime)
	args := launch.Servicelet{
		Kubeconfig: s.Kubeconfig, Workspace: p.Path, Export: p.Export, Runtime: spec.Runtime,
		Register:  &launch.Registration{Region: spec.Region, Country: spec.Country},
		DebugAddr: s.DebugAddr, HeartbeatInterval: 2 * time.Second,
	}
	if filepath.Base(binary) == "msp-servicelet" {
		args.Extra = append(args.Extra, "--state-dir", s.StateDir)
	}
	if spec.Capabilities > 0 {
		args.Register.Capacity = fmt.Sprintf("capabilities=%d", spec.Capabilities)
	}
	if spec.Capacity != "" {
		args.Register.Capacity = spec.Capacity
	}
	s.args = args.Args()
	s.args = append(s.args, spec.Args...)
	s.start(t)
	t.Cleanup(func() {
		s.Stop()
		s.logTail(t, "servicelet "+s.Runtime)
	})
	return s
}

func (s *Servicelet) start(t testing.TB) {
	t.Helper()
	s.process = startProcess(t, s.bin, s.logFile, s.args...)
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
