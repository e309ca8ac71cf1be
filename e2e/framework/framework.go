// Package framework is msp's end-to-end harness: one real kcp per test binary, started
// by the launcher on a fresh data folder and bootstrapped with the workspace tree; each
// test works in workspaces of its own so tests run in parallel.
package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/launcher"
)

// Env is the shared kcp of a test binary.
type Env struct {
	// Server is the running kcp.
	Server *launcher.Server
	// Config is the admin config of the root workspace.
	Config *rest.Config
	// Bin is the folder with kcp, the kubectl plugins and msp's binaries.
	Bin string
	// Bootstrap is what the first bootstrap run applied.
	Bootstrap bootstrap.Result
	// ProvidersLog is the log of msp-providers, the provider controller.
	ProvidersLog string
	// Options are what the test binary's kcp was started with.
	Options Options
}

// Options shape a test binary's kcp.
type Options struct {
	// Shards > 1 starts a sharded kcp behind the front proxy (see launcher.Options).
	Shards int
	// ShardLabels label the kcp Shard objects, by shard name (root, shard-1, ...).
	ShardLabels map[string]map[string]string
	// Unschedulable shards get no new workspace until a test allows it
	// (SetShardSchedulable): the platform's and the providers' workspaces land elsewhere.
	Unschedulable []string
}

func (o Options) launcher(bin, dataDir string) launcher.Options {
	return launcher.Options{Binary: filepath.Join(bin, "kcp"), DataDir: dataDir, Users: TenantUsers, Shards: o.Shards, ShardLabels: o.ShardLabels}
}

var env *Env

// Current returns the shared environment. It fails the test when TestMain did not set it up.
func Current(t testing.TB) *Env {
	t.Helper()
	if env == nil {
		t.Fatal("the e2e environment is not set up: call framework.Main from TestMain")
	}
	return env
}

// Main starts kcp, bootstraps it, runs the tests and stops kcp. Use it from TestMain:
//
//	func TestMain(m *testing.M) { framework.Main(m) }
func Main(m *testing.M) {
	os.Exit(run(m, Options{}))
}

// MainWith is Main with a kcp shaped by opts (several shards, say).
func MainWith(m *testing.M, opts Options) {
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts Options) int {
	bin, err := BinDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "msp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	keep := os.Getenv("MSP_E2E_KEEP") != ""
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()

	ctx := context.Background()
	start := time.Now()
	server, err := launcher.Start(ctx, opts.launcher(bin, filepath.Join(dir, "kcp")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer server.Stop()
	// The platform kubeconfig's static token survives restarts of kcp (the admin
	// token does not), so tests and components keep working across RestartKCP.
	cfg, err := clientcmd.BuildConfigFromFlags("", server.PlatformKubeconfigPath())
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env = &Env{Server: server, Config: cfg, Bin: bin, Options: opts}
	for _, shard := range opts.Unschedulable {
		if err := env.markUnschedulable(ctx, shard); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	res, err := bootstrap.Run(ctx, bootstrap.Options{Config: cfg})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: bootstrap:", err)
		return 1
	}
	// The platform's provider controller, with its own identity; the PostgreSQL provider
	// joins through it as any provider does (tenants of the tenant WorkspaceType get its
	// API by default), without a front door or coordinator: tests start their own.
	providers, err := startProviders(server, bin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: msp-providers:", err)
		return 1
	}
	defer providers.Stop(10 * time.Second)
	if err := registerPlatformPostgres(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: registering the postgres provider: %v (log: %s)\n", err, filepath.Join(dir, "msp-providers.log"))
		return 1
	}
	fmt.Printf("e2e: kcp at %s ready and bootstrapped in %s (data: %s)\n", server.URL(), time.Since(start).Round(time.Second), dir)
	env = &Env{Server: server, Config: cfg, Bin: bin, Bootstrap: res, ProvidersLog: filepath.Join(dir, "msp-providers.log"), Options: opts}
	defer func() { env.Server.Stop() }()
	return m.Run()
}

// TenantUsers are static-token users that are nobody's admin until a test makes them
// the admin of a tenant workspace (see TenantAdmin).
var TenantUsers = []string{"tenant-acme", "tenant-globex"}

// Kubeconfig is the kubeconfig tests use as the operator (the platform's static token,
// a kcp admin); components get their own identities.
func (e *Env) Kubeconfig() string { return e.Server.PlatformKubeconfigPath() }

// RestartKCP stops kcp, waits for downtime, and starts it again on the same data folder
// and port. Clients built from Config keep working.
func (e *Env) RestartKCP(t testing.TB, downtime time.Duration) {
	t.Helper()
	e.RestartKCPWhile(t, downtime, nil)
}

// RestartKCPWhile is RestartKCP that calls during (when not nil) once kcp is stopped.
func (e *Env) RestartKCPWhile(t testing.TB, downtime time.Duration, during func()) {
	t.Helper()
	if err := e.Server.Stop(); err != nil {
		t.Fatalf("failed to stop kcp: %v", err)
	}
	if during != nil {
		during()
	}
	time.Sleep(downtime)
	server, err := launcher.Start(context.Background(), e.Options.launcher(e.Bin, e.Server.DataDir()))
	if err != nil {
		t.Fatalf("failed to start kcp again: %v", err)
	}
	e.Server = server
}

// KillKCP kills kcp with SIGKILL (its whole process group), waits for downtime, and
// starts it again on the same data folder and port, as a crash and a restart would.
func (e *Env) KillKCP(t testing.TB, downtime time.Duration) {
	t.Helper()
	_ = syscall.Kill(-e.Server.Pid(), syscall.SIGKILL)
	<-e.Server.Done()
	_ = e.Server.Stop() // closes the log; kcp is gone already
	time.Sleep(downtime)
	server, err := launcher.Start(context.Background(), e.Options.launcher(e.Bin, e.Server.DataDir()))
	if err != nil {
		t.Fatalf("failed to start kcp again after SIGKILL: %v", err)
	}
	e.Server = server
}

// BinDir is the folder with the built binaries: $MSP_BIN, or _bin at the repository root.
func BinDir() (string, error) {
	if dir := os.Getenv("MSP_BIN"); dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			bin := filepath.Join(d, "_bin")
			if _, err := os.Stat(filepath.Join(bin, "kcp")); err != nil {
				return "", fmt.Errorf("%s has no kcp: run 'make tools' (or set MSP_BIN)", bin)
			}
			return bin, nil
		}
	}
	return "", fmt.Errorf("no go.mod above %s: set MSP_BIN", wd)
}
