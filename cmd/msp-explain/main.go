// Command msp-explain is a dry run of the scheduler: it evaluates a capability manifest
// against a provider's runtimes and everything already placed on them, and prints where
// it would land and why each runtime fits or not. It creates nothing.
//
//	msp-explain -f database.yaml
//	msp-explain -f database.yaml --workspace root:providers:postgres --tenant root:tenants:acme
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/cli"
	"github.com/msp-dev/msp/pkg/explain"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/runtimeready"
)

type options struct {
	File             string
	Kubeconfig       string
	Context          string
	Workspace        string
	Export           string
	Tenant           string
	HeartbeatTimeout time.Duration
	LagTolerance     time.Duration
	ScoreWeights     string
}

func main() {
	o := options{Workspace: "root:providers:postgres", Export: "postgres.msp.dev", HeartbeatTimeout: runtimeready.DefaultHeartbeatTimeout, LagTolerance: runtimeready.DefaultLagTolerance}
	fs := pflag.CommandLine
	fs.StringVarP(&o.File, "filename", "f", o.File, "Capability manifest to evaluate (- for stdin).")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig for kcp (defaults to $KUBECONFIG).")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context.")
	fs.StringVar(&o.Workspace, "workspace", o.Workspace, "The provider workspace.")
	fs.StringVar(&o.Export, "export", o.Export, "The provider's APIExport.")
	fs.StringVar(&o.Tenant, "tenant", o.Tenant, "Logical cluster name of the tenant workspace it would be created in (for zone spread); optional.")
	fs.DurationVar(&o.HeartbeatTimeout, "heartbeat-timeout", o.HeartbeatTimeout, "As the coordinator's flag.")
	fs.DurationVar(&o.LagTolerance, "heartbeat-lag-tolerance", o.LagTolerance, "As the coordinator's flag (0 never blames kcp).")
	fs.StringVar(&o.ScoreWeights, "score-weights", o.ScoreWeights, "As the coordinator's flag.")
	pflag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "msp-explain:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.File == "" {
		return errors.New("-f is required: the capability manifest to evaluate")
	}
	var raw []byte
	var err error
	if o.File == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(o.File)
	}
	if err != nil {
		return err
	}
	doc := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &doc.Object); err != nil {
		return fmt.Errorf("failed to parse %s: %w", o.File, err)
	}
	if doc.GetKind() == "" || doc.GetAPIVersion() == "" {
		return fmt.Errorf("%s has no apiVersion or kind", o.File)
	}
	var weights map[string]int64
	if o.ScoreWeights != "" {
		if weights, err = plugins.ParseWeights(o.ScoreWeights); err != nil {
			return err
		}
	}
	cfg, err := kcpconfig.Load(o.Kubeconfig, o.Context)
	if err != nil {
		return err
	}
	ex, err := explain.Explain(ctx, explain.Options{
		Config: kcpconfig.ForWorkspace(cfg, o.Workspace), Export: o.Export, Cluster: o.Tenant,
		HeartbeatTimeout: o.HeartbeatTimeout, HeartbeatLagTolerance: cli.NeverIfZero(o.LagTolerance), Weights: weights,
	}, doc)
	if err != nil {
		return err
	}

	scores := map[string]int64{}
	for _, c := range ex.Ranked {
		scores[c.Runtime.Name()] = c.Score
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNTIME\tREGION\tCOUNTRY\tHOSTS\tFITS\tSCORE\tWHY NOT")
	infos := ex.Runtimes
	sort.SliceStable(infos, func(i, j int) bool { return scores[infos[i].Name()] > scores[infos[j].Name()] })
	for _, r := range infos {
		loc := r.Runtime.Spec.Location
		fits, score, why := "yes", fmt.Sprint(scores[r.Name()]), ""
		if reason, unfit := ex.Unfit[r.Name()]; unfit {
			fits, score, why = "no", "-", reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name(), loc.Region, loc.Country, hosts(r.Count, r.Runtime), fits, score, why)
	}
	tw.Flush()
	fmt.Fprintf(out, "\n%s (%d capabilities already placed or pending)\n", ex.Message(), ex.Capabilities)
	if ex.Chosen != nil {
		fmt.Fprintf(out, "It would land on %s in region %s.\n", ex.Chosen.Name(), ex.Chosen.Runtime.Spec.Location.Region)
	} else {
		fmt.Fprintln(out, "It would wait until a runtime that fits appears or frees capacity.")
	}
	return nil
}

func hosts(n int, rt *platformv1alpha1.ServiceRuntime) string {
	if q, ok := rt.EffectiveCapacity()[platformv1alpha1.ResourceCapabilities]; ok {
		return fmt.Sprintf("%d/%s", n, q.String())
	}
	return strings.TrimSpace(fmt.Sprint(n))
}
