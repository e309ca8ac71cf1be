// Command msp-local runs msp's embedded default on one machine: a local kcp on a data
// folder, the workspace tree and APIExports, and (as they land) the coordinator and
// servicelets with local runtimes. It prints how a tenant uses the platform and runs
// until interrupted; running it again resumes on the same data. `make run` calls it.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/kubecluster"
	"github.com/msp-dev/msp/pkg/launcher"
	"github.com/msp-dev/msp/pkg/onboarding"
)

func main() {
	opts := defaultOptions()
	opts.AddFlags(pflag.CommandLine)
	pflag.Parse()
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "msp-local:", err)
		os.Exit(2)
	}
	if err := opts.Complete(); err != nil {
		fmt.Fprintln(os.Stderr, "msp-local:", err)
		os.Exit(2)
	}
	log := zap.New(zap.UseDevMode(false))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, opts); err != nil {
		fmt.Fprintln(os.Stderr, "msp-local:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log logr.Logger, opts *options) error {
	start := time.Now()
	kcpDir := filepath.Join(opts.Home, "kcp")
	if opts.Shards > 1 {
		fmt.Printf("Starting kcp with %d shards, its cache server and front proxy (data: %s) ...\n", opts.Shards, kcpDir)
	} else {
		fmt.Printf("Starting kcp (data: %s, log: %s) ...\n", kcpDir, filepath.Join(kcpDir, launcher.LogFile))
	}
	server, err := launcher.Start(ctx, launcher.Options{Binary: opts.KCPBinary, DataDir: kcpDir, SecurePort: opts.Port, Users: []string{tenantUser, globexUser}, Shards: opts.Shards})
	if err != nil {
		return err
	}
	if opts.Shards > 1 {
		for _, sh := range server.Shards() {
			fmt.Printf("  shard %s at %s (log: %s)\n", sh.Name, sh.URL, sh.LogFile)
		}
		fmt.Printf("  logs of the cache server and front proxy: %s\n", strings.Join(server.LogFiles()[len(server.Shards()):], ", "))
	}
	defer func() {
		fmt.Println("Stopping kcp ...")
		_ = server.Stop()
		fmt.Println("Stopped. Run again to resume on the same data.")
	}()
	fmt.Printf("kcp serves %s (ready after %s)\n", server.URL(), time.Since(start).Round(100*time.Millisecond))
	if opts.Shards > 1 {
		fmt.Println("  (the front proxy: every kubeconfig msp-local writes addresses it)")
	}

	cfg, err := server.RESTConfig()
	if err != nil {
		return err
	}
	fmt.Println("Applying the workspace tree and APIExports ...")
	res, err := bootstrap.Run(ctx, bootstrap.Options{Config: cfg, Timeout: opts.BootstrapTimeout, Log: log.WithName("bootstrap")})
	if err != nil {
		return err
	}
	fmt.Printf("Bootstrap: %d objects, %d created or updated.\n", len(res.Applied), len(res.Changed()))

	_, err = userKubeconfig(server, opts.Home)
	if err != nil {
		return err
	}
	if err := server.UserKubeconfig(tenantUser, "root:tenants:acme", filepath.Join(opts.Home, "acme.kubeconfig")); err != nil {
		return err
	}
	if err := server.UserKubeconfig(globexUser, "root:tenants:globex", filepath.Join(opts.Home, "globex.kubeconfig")); err != nil {
		return err
	}

	// msp-providers, the provider controller, with its own identity; then each of msp's
	// providers joins through a ServiceProvider, as any provider team would.
	providersKubeconfig := filepath.Join(opts.Home, "identities", "msp-providers.kubeconfig")
	if err := issueProvidersController(server, providersKubeconfig); err != nil {
		return err
	}
	controller, err := startProcess(opts.Home, "msp-providers", "msp-providers", "--kubeconfig", providersKubeconfig)
	if err != nil {
		return err
	}
	procs := []*process{controller}
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	// The etcd of the local Kubernetes clusters: each keeps its data under a prefix of
	// its own. Stopped last, after the servicelets have stopped their clusters.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	etcd, err := kubecluster.StartEtcd(ctx, kubecluster.EtcdOptions{Binary: filepath.Join(filepath.Dir(exe), "etcd"), Dir: filepath.Join(opts.Home, "etcd")})
	if err != nil {
		return fmt.Errorf("failed to start the local clusters' etcd: %w", err)
	}
	defer etcd.Stop()
	infra := localInfra{etcd: etcd.Endpoint()}
	for _, lp := range localProviders {
		started, err := startProvider(ctx, server, cfg, opts.Home, infra, lp)
		procs = append(procs, started...)
		if err != nil {
			return err
		}
	}
	for _, lp := range localProviders {
		if err := onboarding.WaitCondition(ctx, cfg, lp.name, onboardingv1alpha1.ConditionReady, opts.BootstrapTimeout); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, filepath.Join(opts.Home, "logs"))
		}
		fmt.Printf("ServiceProvider %s is Ready\n", lp.name)
	}

	printUsage(opts.Home, time.Since(start))

	if opts.Exit {
		return nil
	}
	select {
	case <-ctx.Done():
		fmt.Println()
		return nil
	case <-server.Done():
		return fmt.Errorf("kcp exited unexpectedly; see %s", strings.Join(server.LogFiles(), ", "))
	case name := <-exited(procs):
		return fmt.Errorf("%s exited unexpectedly; see its log in %s", name, filepath.Join(opts.Home, "logs"))
	}
}

// exited reports the name of the first process that exits.
func exited(procs []*process) <-chan string {
	ch := make(chan string, len(procs))
	for _, p := range procs {
		go func() {
			<-p.done
			ch <- p.name
		}()
	}
	return ch
}

// userKubeconfig copies kcp's admin kubeconfig next to the state folder, so `kubectl ws`
// can switch workspaces in it without touching the file kcp owns.
func userKubeconfig(server *launcher.Server, home string) (string, error) {
	raw, err := os.ReadFile(server.KubeconfigPath())
	if err != nil {
		return "", fmt.Errorf("failed to read admin kubeconfig: %w", err)
	}
	path := filepath.Join(home, "admin.kubeconfig")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", fmt.Errorf("failed to write %s: %w", path, err)
	}
	return path, nil
}

// tenantUser is the demo tenant's own user: admin of root:tenants:acme only
// (workspaces/root/tenants/acme binds it). globexUser is the walkthrough's second tenant,
// whom the operator makes admin of the workspace it creates for globex.
const (
	tenantUser = "acme-admin"
	globexUser = "globex-admin"
)

// tenantWalkthrough is what a tenant and the operator type; the README's quick start
// shows the same text (a test checks), rendered with the home $PWD/.msp and $PWD/_bin.
//
//go:embed tenant.txt
var tenantWalkthrough string

// Walkthrough renders the walkthrough for msp-local's home (where the tenants' and the
// operator's kubeconfigs are) and a folder of binaries.
func Walkthrough(home, bin string) string {
	var b strings.Builder
	t := template.Must(template.New("tenant").Parse(tenantWalkthrough))
	if err := t.Execute(&b, map[string]string{"Home": home, "Bin": bin}); err != nil {
		panic(err) // the template is embedded and tested
	}
	return b.String()
}

func printUsage(home string, took time.Duration) {
	// The kubectl plugins sit next to msp-local in _bin.
	bin := "_bin"
	if exe, err := os.Executable(); err == nil {
		bin = filepath.Dir(exe)
	}
	fmt.Printf("\nmsp is up (%s). In another terminal:\n\n%s\nPress Ctrl-C to stop.\n",
		took.Round(100*time.Millisecond), indent(Walkthrough(home, bin), "  "))
}

func indent(text, prefix string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
