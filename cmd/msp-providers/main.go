// Command msp-providers is the platform's provider controller: it reconciles the
// ServiceProviders in root:platform (package onboarding). It runs with its own identity
// (user msp:providers, see the README's security table), never an admin's; several
// replicas elect one leader through a Lease in root:platform.
//
//	msp-providers --kubeconfig providers.kubeconfig
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/onboarding"
)

type options struct {
	Kubeconfig, Context     string
	LeaderElect             bool
	MetricsAddr, HealthAddr string
	Resync                  time.Duration
}

func main() {
	o := options{LeaderElect: true, MetricsAddr: "0", HealthAddr: "0", Resync: 15 * time.Second}
	fs := pflag.CommandLine
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "Kubeconfig of msp-providers' own identity (its server may carry a /clusters suffix; the controller addresses each workspace itself).")
	fs.StringVar(&o.Context, "context", "", "Context in the kubeconfig.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Only the holder of the Lease default/msp-providers in root:platform reconciles.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Where to serve metrics (0: off).")
	fs.StringVar(&o.HealthAddr, "health-probe-bind-address", o.HealthAddr, "Where to serve /healthz and /readyz (0: off).")
	fs.DurationVar(&o.Resync, "resync", o.Resync, "How often each ServiceProvider's coordinator, runtimes and tenants are looked at again.")
	pflag.Parse()
	ctrl.SetLogger(zap.New(zap.UseDevMode(false)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "msp-providers:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cfg, err := kcpconfig.LoadPatient(o.Kubeconfig, o.Context)
	if err != nil {
		return err
	}
	base := kcpconfig.Base(cfg)
	base.QPS, base.Burst = 50, 100
	httpClient, err := rest.HTTPClientFor(base)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, onboardingv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(kcpconfig.ForWorkspace(base, onboarding.PlatformWorkspace), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.HealthAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "msp-providers",
		LeaderElectionNamespace: "default",
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	if o.HealthAddr != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return err
		}
	}
	r := &onboarding.Reconciler{
		Client: mgr.GetClient(), Config: base, HTTP: httpClient,
		Recorder: mgr.GetEventRecorderFor("msp-providers"), Resync: o.Resync,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	return mgr.Start(ctx)
}
