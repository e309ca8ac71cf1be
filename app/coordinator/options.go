package coordinator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/msp-dev/msp/pkg/scheduler/plugins"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/runtimeready"
)

// options are the flags every coordinator has.
type options struct {
	Kubeconfig       string
	Context          string
	Workspace        string
	Export           string
	EndpointSlice    string
	Kinds            []string
	HeartbeatTimeout time.Duration
	LagTolerance     time.Duration
	ScoreWeights     string
	MetricsAddr      string
	HealthAddr       string
	PprofAddr        string
	LeaderElect      bool
	ShardWorkspaces  bool
	ShardLocality    bool
	ReplicaID        string
	PeerLease        time.Duration
	QPS              float32
	Workers          int
	NormalEvents     bool
	Burst            int

	RuntimeManager    bool
	ManagerInterval   time.Duration
	ScaleDownCooldown time.Duration
	LocalDir          string
	LocalDriver       string
	LocalArgs         []string
	CascadingDir      string
	FrontDoorURL      string
	FrontDoorCAFile   string
	ServiceletTTL     time.Duration

	gvks    []schema.GroupVersionKind
	weights map[string]int64
}

func defaultOptions(p Provider) *options {
	localDriver := "provider"
	if p.Local == nil {
		localDriver = "test"
	}
	return &options{
		Workspace:         p.Workspace,
		Export:            p.Export,
		LocalDriver:       localDriver,
		HeartbeatTimeout:  runtimeready.DefaultHeartbeatTimeout,
		LagTolerance:      runtimeready.DefaultLagTolerance,
		MetricsAddr:       "127.0.0.1:8090",
		HealthAddr:        "0",
		QPS:               500,
		Workers:           32,
		ManagerInterval:   2 * time.Second,
		ScaleDownCooldown: 30 * time.Second,
		Burst:             1000,
		ServiceletTTL:     time.Hour,
	}
}

// AddFlags binds the options to flags.
func (o *options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig for kcp (defaults to $KUBECONFIG); the coordinator talks to kcp only.")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context (defaults to the current one).")
	fs.StringVar(&o.Workspace, "workspace", o.Workspace, "The provider workspace: it holds the APIExport, its endpoint slice and the ServiceRuntimes.")
	fs.StringVar(&o.Export, "export", o.Export, "The provider's APIExport.")
	fs.StringVar(&o.EndpointSlice, "endpoint-slice", o.EndpointSlice, "The APIExportEndpointSlice to follow (defaults to the export's name).")
	fs.StringSliceVar(&o.Kinds, "kind", o.Kinds, "Capability kind to schedule, as Kind.version.group (e.g. PostgresDatabase.v1alpha1.postgres.msp.dev); repeatable. Default: every kind the export serves.")
	fs.DurationVar(&o.HeartbeatTimeout, "heartbeat-timeout", o.HeartbeatTimeout, "How old a runtime's heartbeat may be for the scheduler to place capabilities there.")
	fs.DurationVar(&o.LagTolerance, "heartbeat-lag-tolerance", o.LagTolerance, "When every runtime's heartbeat is late at once, blame kcp (lagging) rather than the runtimes for this long, judging each heartbeat against the freshest one; 0 never does.")
	fs.StringVar(&o.ScoreWeights, "score-weights", o.ScoreWeights, "Score weights per plugin, e.g. preferredregions=5,leastallocated=1 (others keep their defaults).")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address of the /metrics endpoint; 0 disables it.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", o.PprofAddr, "Address of Go's /debug/pprof endpoints; empty disables them.")
	fs.StringVar(&o.HealthAddr, "health-probe-bind-address", o.HealthAddr, "Address of /healthz and /readyz; 0 disables them.")
	fs.IntVar(&o.Workers, "scheduler-workers", o.Workers, "Capabilities of a kind the scheduler works on at once: decisions are made one at a time, their writes overlap.")
	fs.BoolVar(&o.NormalEvents, "normal-events", o.NormalEvents, "Record a Normal \"Scheduled\" event for every assignment (the Scheduled condition says the same; each event is one more write to kcp). FailedScheduling warnings are always recorded.")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Requests per second to kcp, per workspace client.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of requests to kcp, per workspace client.")
	fs.BoolVar(&o.RuntimeManager, "runtime-manager", o.RuntimeManager, "Order runtimes from the provider's ServiceRuntimeClasses when none fits, and remove empty ones after their grace period.")
	fs.DurationVar(&o.ManagerInterval, "runtime-manager-interval", o.ManagerInterval, "Time between the runtime manager's passes.")
	fs.DurationVar(&o.ScaleDownCooldown, "scale-down-cooldown", o.ScaleDownCooldown, "Least time between two removals of runtimes of one class.")
	fs.StringVar(&o.LocalDir, "local-runtimes-dir", o.LocalDir, "Enables the local procurement driver: each ordered runtime is a servicelet of the provider on this machine that runs its runtime itself (a folder each, in this one).")
	fs.StringVar(&o.LocalDriver, "local-servicelet-driver", o.LocalDriver, "Servicelets of the local runtimes: provider (the provider's own, running its runtime) or test (msp-servicelet with the test driver: a capability is a file).")
	fs.StringArrayVar(&o.LocalArgs, "local-servicelet-arg", o.LocalArgs, "Extra flag for the local and cascaded runtimes' servicelets, as it is (commas included); repeatable.")
	fs.StringVar(&o.CascadingDir, "cascading-runtimes-dir", o.CascadingDir, "Enables the cascading procurement driver: runtimes are ordered as capabilities of another provider (the class's spec.driver.parameters name the kind; the provider workspace binds that provider's export); their access and servicelet logs are kept in this folder.")
	fs.StringVar(&o.FrontDoorURL, "servicelet-frontdoor-url", o.FrontDoorURL, "The provider's front door, which the servicelets of ordered runtimes dial (they never get the coordinator's credential). Required with a procurement driver.")
	fs.StringVar(&o.FrontDoorCAFile, "servicelet-frontdoor-ca-file", o.FrontDoorCAFile, "CA bundle the front door's serving certificate is checked against.")
	fs.DurationVar(&o.ServiceletTTL, "servicelet-token-ttl", o.ServiceletTTL, "Lifetime of an ordered runtime's servicelet token (at least 10m); the servicelet renews it half way.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Run as one of several replicas: only the holder of a Lease in the provider workspace is active.")
	fs.BoolVar(&o.ShardWorkspaces, "shard-workspaces", o.ShardWorkspaces, "Run as one of several active replicas: they split the tenant workspaces between them (rendezvous hashing over their Leases in the provider workspace), reserve room on a runtime's twin before placing a capability there, and elect one to run the runtime manager. Excludes --leader-elect.")
	fs.BoolVar(&o.ShardLocality, "shard-locality", o.ShardLocality, "Keep a capability in the region of its workspace's kcp shard: only runtimes of that region fit. The regions come from the provider workspace's APIExportEndpointSlices labelled platform.msp.dev/region (each with a Partition of that region's shards).")
	fs.StringVar(&o.ReplicaID, "replica-id", o.ReplicaID, "This replica's name among the others, unique among the live ones (a pod's name is): with --shard-workspaces (default: the host name and a random suffix), and with --leader-elect its identity in the Lease, so that it takes the Lease back at once when it is started again after a crash.")
	fs.DurationVar(&o.PeerLease, "replica-lease-duration", o.PeerLease, "With --shard-workspaces: how long a replica that stopped renewing its Lease keeps its workspaces before the others take them over (default 15s).")
}

// validate checks the options against what the provider offers and parses the
// structured ones.
func (o *options) validate(p Provider, servicelet string) error {
	var errs []error
	if o.LocalDir != "" && o.LocalDriver == "provider" && (p.Local == nil || servicelet == "") {
		errs = append(errs, fmt.Errorf("--local-runtimes-dir: %s runs no local runtimes of its own; use --local-servicelet-driver test", p.Name))
	}
	if o.CascadingDir != "" && (p.Access == nil || servicelet == "") {
		errs = append(errs, fmt.Errorf("--cascading-runtimes-dir: %s cannot take runtimes ordered from another provider", p.Name))
	}
	if o.Workspace == "" || o.Export == "" {
		errs = append(errs, errors.New("--workspace and --export are required"))
	}
	if o.QPS <= 0 || o.Burst <= 0 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must be positive"))
	}
	if o.Workers < 1 {
		errs = append(errs, errors.New("--scheduler-workers must be at least 1"))
	}
	if o.HeartbeatTimeout <= 0 {
		errs = append(errs, errors.New("--heartbeat-timeout must be positive"))
	}
	if o.LagTolerance < 0 {
		errs = append(errs, errors.New("--heartbeat-lag-tolerance must not be negative"))
	}
	if o.ShardWorkspaces && o.LeaderElect {
		errs = append(errs, errors.New("--shard-workspaces and --leader-elect exclude each other: sharing replicas are all active"))
	}
	if o.PeerLease != 0 && o.PeerLease < 3*time.Second {
		errs = append(errs, errors.New("--replica-lease-duration must be at least 3s"))
	}
	if o.LocalDriver != "provider" && o.LocalDriver != "test" {
		errs = append(errs, fmt.Errorf("--local-servicelet-driver %q: want provider or test", o.LocalDriver))
	}
	if (o.LocalDir != "" || o.CascadingDir != "") && !o.RuntimeManager {
		errs = append(errs, errors.New("--local-runtimes-dir and --cascading-runtimes-dir need --runtime-manager"))
	}
	if (o.LocalDir != "" || o.CascadingDir != "") && o.FrontDoorURL == "" {
		errs = append(errs, errors.New("--local-runtimes-dir and --cascading-runtimes-dir need --servicelet-frontdoor-url: an ordered runtime's servicelet dials the provider's front door"))
	}
	if o.ServiceletTTL < 10*time.Minute {
		errs = append(errs, errors.New("--servicelet-token-ttl must be at least 10m (kcp's minimum)"))
	}
	for _, k := range o.Kinds {
		parts := strings.SplitN(k, ".", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			errs = append(errs, fmt.Errorf("--kind %q: want Kind.version.group, e.g. PostgresDatabase.v1alpha1.postgres.msp.dev", k))
			continue
		}
		o.gvks = append(o.gvks, schema.GroupVersionKind{Kind: parts[0], Version: parts[1], Group: parts[2]})
	}
	if o.ScoreWeights != "" {
		w, err := plugins.ParseWeights(o.ScoreWeights)
		if err != nil {
			errs = append(errs, fmt.Errorf("--score-weights: %w", err))
		}
		o.weights = w
	}
	return errors.Join(errs...)
}
