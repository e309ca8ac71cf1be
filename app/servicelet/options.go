package servicelet

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	slet "github.com/msp-dev/msp/pkg/servicelet"
)

// options are the flags every servicelet has; a provider adds its own (Provider.AddFlags).
type options struct {
	Kubeconfig        string
	Context           string
	Workspace         string
	Export            string
	EndpointSlice     string
	Runtime           string
	Register          bool
	Region            string
	Country           string
	Zone              string
	Cloud             string
	Capacity          string
	HeartbeatInterval time.Duration
	ProbeInterval     time.Duration
	Resync            time.Duration
	Workers           int
	NormalEvents      bool
	DebugAddr         string
	QPS               float32
	Burst             int

	capacity corev1.ResourceList
}

func defaultOptions(p Provider) *options {
	return &options{
		Workspace:         p.Workspace,
		Export:            p.Export,
		HeartbeatInterval: slet.DefaultHeartbeatInterval,
		Resync:            time.Minute,
		Workers:           16,
		QPS:               100,
		Burst:             200,
	}
}

// AddFlags binds the options to flags.
func (o *options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig for kcp (defaults to $KUBECONFIG). The servicelet only connects outbound.")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context.")
	fs.StringVar(&o.Workspace, "workspace", o.Workspace, "The provider workspace (ServiceRuntimes and the endpoint slice live there).")
	fs.StringVar(&o.Export, "export", o.Export, "The provider's APIExport (its kinds are served).")
	fs.StringVar(&o.EndpointSlice, "endpoint-slice", o.EndpointSlice, "The APIExportEndpointSlice (defaults to the export's name).")
	fs.StringVar(&o.Runtime, "runtime", o.Runtime, "Name of this servicelet's ServiceRuntime. Required.")
	fs.BoolVar(&o.Register, "register", o.Register, "Create the ServiceRuntime if it does not exist, from --region, --country, --zone, --cloud and --capacity.")
	fs.StringVar(&o.Region, "region", o.Region, "Region of the runtime (with --register).")
	fs.StringVar(&o.Country, "country", o.Country, "ISO country code of the runtime (with --register).")
	fs.StringVar(&o.Zone, "zone", o.Zone, "Zone of the runtime (with --register).")
	fs.StringVar(&o.Cloud, "cloud", o.Cloud, "Cloud of the runtime (with --register).")
	fs.StringVar(&o.Capacity, "capacity", o.Capacity, "Capacity of the runtime, e.g. capabilities=50,storage=100Gi (with --register).")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", o.HeartbeatInterval, "How often the runtime's twin is written (its heartbeat, with what the runtime hosts then); a change of the runtime's Ready verdict is written at once. Keep it below the coordinator's --heartbeat-timeout.")
	fs.DurationVar(&o.ProbeInterval, "probe-interval", o.ProbeInterval, "How often the runtime is probed (nothing is written unless its verdict changes); 0: 10s, or the heartbeat interval when shorter.")
	fs.DurationVar(&o.Resync, "resync-interval", o.Resync, "How often a capability that is in line is observed again, to find drift and outages.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Capabilities reconciled in parallel.")
	fs.BoolVar(&o.NormalEvents, "normal-events", o.NormalEvents, "Record Normal events (Created, Updated, Deleted, Orphaned) on the capabilities; the conditions say the same, and each event is one more write to kcp. Warnings are always recorded.")
	fs.StringVar(&o.DebugAddr, "debug-bind-address", o.DebugAddr, "Address of /capabilities (what the servicelet's cache holds) and /healthz; empty disables it.")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Requests per second to kcp.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of requests to kcp.")
}

// Validate checks the options and parses the structured ones.
func (o *options) Validate() error {
	var errs []error
	if o.Runtime == "" {
		errs = append(errs, errors.New("--runtime is required"))
	}
	if o.Register && o.Region == "" {
		errs = append(errs, errors.New("--register needs --region"))
	}
	if o.Resync <= 0 {
		errs = append(errs, errors.New("--resync-interval must be positive"))
	}
	if o.HeartbeatInterval <= 0 {
		errs = append(errs, errors.New("--heartbeat-interval must be positive"))
	}
	if o.ProbeInterval < 0 {
		errs = append(errs, errors.New("--probe-interval must not be negative"))
	}
	if o.Capacity != "" {
		o.capacity = corev1.ResourceList{}
		for _, entry := range strings.Split(o.Capacity, ",") {
			name, value, ok := strings.Cut(strings.TrimSpace(entry), "=")
			q, err := resource.ParseQuantity(strings.TrimSpace(value))
			if !ok || name == "" || err != nil {
				errs = append(errs, fmt.Errorf("--capacity entry %q: want name=quantity, e.g. storage=100Gi", entry))
				continue
			}
			o.capacity[corev1.ResourceName(strings.TrimSpace(name))] = q
		}
	}
	if o.EndpointSlice == "" {
		o.EndpointSlice = o.Export
	}
	return errors.Join(errs...)
}

// registration is the spec a runtime is registered with.
func (o *options) registration(kinds []platformv1alpha1.CapabilityKind) *platformv1alpha1.ServiceRuntimeSpec {
	if !o.Register {
		return nil
	}
	return &platformv1alpha1.ServiceRuntimeSpec{
		Location:     platformv1alpha1.Location{Region: o.Region, Country: o.Country, Zone: o.Zone, Cloud: o.Cloud},
		Capabilities: kinds,
		Capacity:     o.capacity,
	}
}
