package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/launcher"
	"github.com/msp-dev/msp/pkg/onboarding"
	"github.com/msp-dev/msp/pkg/ports"
	"github.com/msp-dev/msp/sdk/launch"
)

// localProvider is one of msp's own providers as the embedded default runs it.
type localProvider struct {
	// name is its ServiceProvider's (and workspace's) name; export its APIExport, a
	// folder of package apiexports.
	name, export string
	// coordinator and servicelet are its binaries.
	coordinator, servicelet string
	// capacity of each runtime.
	capacity string
	runtimes []localRuntime
	// serviceletArgs are the servicelet's own flags for a runtime's folder.
	serviceletArgs func(dir string, infra localInfra) []string
}

// localInfra is what msp-local runs for the local runtimes to share.
type localInfra struct {
	// etcd is the endpoint of the etcd the local Kubernetes clusters keep their data in.
	etcd string
}

type localRuntime struct{ name, region, country string }

// localProviders are the providers of the embedded default: PostgreSQL databases on one
// local runtime per "region", PostgreSQL servers (hosting) on one, and Spaces on one
// local Kubernetes cluster (an API server and controller manager its servicelet runs,
// on msp-local's etcd).
var localProviders = []localProvider{
	{
		name: "postgres", export: "postgres.msp.dev", coordinator: "postgres-coordinator", servicelet: "postgres-servicelet",
		capacity: "capabilities=20,storage=20Gi",
		runtimes: []localRuntime{{"local-eu-de", "eu-de", "DE"}, {"local-eu-fr", "eu-fr", "FR"}, {"local-us-east", "us-east", "US"}},
		serviceletArgs: func(dir string, _ localInfra) []string {
			return []string{"--local-server-dir", filepath.Join(dir, "postgres")}
		},
	},
	{
		name: "hosting", export: "hosting.msp.dev", coordinator: "msp-coordinator", servicelet: "postgresserver-servicelet",
		capacity: "capabilities=5",
		runtimes: []localRuntime{{"local-hosting-eu-de", "eu-de", "DE"}},
		serviceletArgs: func(dir string, _ localInfra) []string {
			return []string{"--servers-dir", filepath.Join(dir, "servers")}
		},
	},
	{
		name: "kubernetes", export: "kubernetes.msp.dev", coordinator: "kubernetes-coordinator", servicelet: "kubernetes-servicelet",
		capacity: "cpu=8,memory=16Gi,pods=100,storage=50Gi",
		runtimes: []localRuntime{{"local-k8s-eu-de", "eu-de", "DE"}},
		serviceletArgs: func(dir string, infra localInfra) []string {
			return []string{"--local-cluster-dir", filepath.Join(dir, "cluster"), "--local-etcd", infra.etcd}
		},
	},
}

// issueProvidersController issues msp-providers its certificate.
func issueProvidersController(server *launcher.Server, file string) error {
	kcpCA, err := server.ServingCA()
	if err != nil {
		return err
	}
	return bootstrap.IssueProvidersController(server.CA(), server.URL(), kcpCA, file)
}

// startProvider registers one provider the way its team would (credentials for its
// front door and coordinator, its ServiceProvider, its export in the workspace
// msp-providers makes) and starts its front door, coordinator and servicelets.
func startProvider(ctx context.Context, server *launcher.Server, cfg *rest.Config, home string, infra localInfra, lp localProvider) ([]*process, error) {
	kcpCA, err := server.ServingCA()
	if err != nil {
		return nil, err
	}
	// The same port on every start of this home: the provider's webhook and its
	// servicelets' kubeconfigs name it.
	port, err := ports.Kept("127.0.0.1", filepath.Join(home, "identities", lp.name, "frontdoor.port"))
	if err != nil {
		return nil, err
	}
	ws := onboarding.ProviderWorkspace(lp.name)
	ids, err := bootstrap.IssueProviderCredentials(server.CA(), bootstrap.ProviderOptions{
		Workspace: ws, Export: lp.export, Server: server.URL(), KCPCA: kcpCA,
		FrontDoorAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:           filepath.Join(home, "identities", lp.name),
	})
	if err != nil {
		return nil, err
	}
	exportObjs, err := bootstrap.ExportObjects(nil, lp.export)
	if err != nil {
		return nil, err
	}
	sp := &onboardingv1alpha1.ServiceProvider{Spec: onboardingv1alpha1.ServiceProviderSpec{
		Export: lp.export,
		Run:    onboardingv1alpha1.RunSpec{FrontDoor: &onboardingv1alpha1.FrontDoor{URL: ids.FrontDoorURL, CABundle: server.CA().CertPEM()}},
	}}
	sp.Name = lp.name
	if err := onboarding.Register(ctx, cfg, sp, exportObjs, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("failed to register the %s provider: %w (msp-providers log: %s)", lp.name, err, filepath.Join(home, "logs", "msp-providers.log"))
	}
	var procs []*process
	frontDoor, err := startProcess(home, "frontdoor-"+lp.name, "msp-frontdoor", ids.FrontDoorArgs()...)
	if err != nil {
		return procs, err
	}
	procs = append(procs, frontDoor)
	fmt.Printf("Front door of %s on %s (log: %s)\n", ws, ids.FrontDoorURL, frontDoor.log)

	coordinatorArgs := ids.Coordinator()
	// A stable name: started again after a crash, it takes its Lease back at once.
	coordinatorArgs.MetricsAddr, coordinatorArgs.LeaderElect, coordinatorArgs.ReplicaID = "127.0.0.1:0", true, "msp-local"
	coordinator, err := startProcess(home, "coordinator-"+lp.name, lp.coordinator, coordinatorArgs.Args()...)
	if err != nil {
		return procs, err
	}
	procs = append(procs, coordinator)
	fmt.Printf("Coordinator of %s running (log: %s)\n", ws, coordinator.log)

	for _, rt := range lp.runtimes {
		dir := filepath.Join(home, "runtimes", rt.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return procs, err
		}
		kubeconfig, err := identity.IssueServiceletAccess(ctx, kcpconfig.ForWorkspace(cfg, ws), rt.name, dir, ids.FrontDoorURL, server.CA().CertPEM(), identity.DefaultAudience, time.Hour)
		if err != nil {
			return procs, err
		}
		s, err := startProcess(home, "servicelet-"+rt.name, lp.servicelet, launch.Servicelet{
			Kubeconfig: kubeconfig, Workspace: ws, Export: lp.export, Runtime: rt.name,
			Register: &launch.Registration{Region: rt.region, Country: rt.country, Zone: rt.region + "-1", Cloud: "local", Capacity: lp.capacity},
			Extra:    lp.serviceletArgs(dir, infra),
		}.Args()...)
		if err != nil {
			return procs, err
		}
		procs = append(procs, s)
		fmt.Printf("Runtime %s of %s (%s, %s): servicelet log %s\n", rt.name, lp.name, rt.region, rt.country, s.log)
	}
	return procs, nil
}
