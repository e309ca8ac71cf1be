package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msp-dev/msp/app/servicelet"
)

// ServiceletOptions are the servicelet's own flags.
type ServiceletOptions struct {
	// Kubeconfig is the servicelet's access to its cluster; empty: in-cluster (the
	// servicelet runs as a Deployment inside the cluster it serves).
	Kubeconfig string
	// Server is the cluster's URL as tenants reach it; defaults to the kubeconfig's.
	Server string
	// CAFile is the CA bundle tenants trust the cluster by; defaults to the
	// kubeconfig's.
	CAFile string
	// TokenTTL is the validity of tenants' tokens.
	TokenTTL time.Duration
	// LocalClusterDir makes the runtime a cluster this servicelet runs itself (the
	// local procurement driver's and make run's runtimes), with its certificates and
	// logs in this folder, kept across restarts.
	LocalClusterDir string
	// LocalEtcd is the etcd the local cluster keeps its data in, shared with other
	// clusters (each under a prefix of its own); empty: an etcd of its own in
	// LocalClusterDir.
	LocalEtcd string
	// KubeBinDir holds kube-apiserver, kube-controller-manager and etcd for a local
	// cluster; empty: the folder of this executable.
	KubeBinDir string
}

// AddFlags binds the options to flags.
func (o *ServiceletOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "cluster-kubeconfig", o.Kubeconfig, "Kubeconfig of the cluster this servicelet serves (its own rights there: deploy/kubernetes-servicelet). Empty: the cluster it runs in.")
	fs.StringVar(&o.Server, "cluster-server", o.Server, "The cluster's API server URL as tenants reach it (default: the kubeconfig's).")
	fs.StringVar(&o.CAFile, "cluster-ca-file", o.CAFile, "CA bundle tenants trust the cluster's API server by (default: the kubeconfig's).")
	fs.DurationVar(&o.TokenTTL, "token-ttl", DefaultTokenTTL, "Validity of the tokens in the spaces' kubeconfigs; renewed when a third is left.")
	fs.StringVar(&o.LocalClusterDir, "local-cluster-dir", o.LocalClusterDir, "Run the runtime's cluster (kube-apiserver and kube-controller-manager, no kubelet) as a child of this servicelet, with its certificates in this folder (the local procurement driver's runtimes).")
	fs.StringVar(&o.LocalEtcd, "local-etcd", o.LocalEtcd, "With --local-cluster-dir: the etcd the cluster keeps its data in, shared with other clusters (each under a prefix of its own). Empty: an etcd of its own in the folder.")
	fs.StringVar(&o.KubeBinDir, "kube-bin-dir", o.KubeBinDir, "With --local-cluster-dir: the folder with kube-apiserver, kube-controller-manager and etcd (default: this executable's).")
}

// Validate checks the options.
func (o *ServiceletOptions) Validate() error {
	if o.TokenTTL < 10*time.Minute {
		return errors.New("--token-ttl must be at least 10m (the cluster's minimum for a token request)")
	}
	if o.LocalClusterDir != "" && o.Kubeconfig != "" {
		return errors.New("name the runtime's cluster with one of --cluster-kubeconfig and --local-cluster-dir")
	}
	if o.LocalClusterDir == "" && (o.LocalEtcd != "" || o.KubeBinDir != "") {
		return errors.New("--local-etcd and --kube-bin-dir need --local-cluster-dir")
	}
	return nil
}

// Start returns the driver.
func (o *ServiceletOptions) Start(ctx context.Context, env servicelet.Env) (*servicelet.Runtime, error) {
	var local *localCluster
	if o.LocalClusterDir != "" {
		lc, kubeconfig, err := startLocalCluster(ctx, env.Runtime, o.LocalClusterDir, o.LocalEtcd, o.KubeBinDir)
		if err != nil {
			return nil, fmt.Errorf("failed to start the runtime's cluster: %w", err)
		}
		local, o.Kubeconfig = lc, kubeconfig
		env.Log.Info("runtime's cluster started", "dir", o.LocalClusterDir, "server", lc.cluster.URL())
	}
	rt, err := o.start(env)
	if err != nil {
		if local != nil {
			local.stop()
		}
		return nil, err
	}
	if local != nil {
		rt.Close = local.stop
	}
	return rt, nil
}

func (o *ServiceletOptions) start(env servicelet.Env) (*servicelet.Runtime, error) {
	cfg, err := o.config()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	server, ca := o.Server, cfg.CAData
	if server == "" {
		server = cfg.Host
	}
	if o.CAFile != "" {
		if ca, err = os.ReadFile(o.CAFile); err != nil {
			return nil, err
		}
	} else if len(ca) == 0 && cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	d, err := New(Options{Client: cs, Server: server, CA: ca, TokenTTL: o.TokenTTL})
	if err != nil {
		return nil, err
	}
	return &servicelet.Runtime{Drivers: servicelet.OneDriver(d, env.Kinds), Probe: d}, nil
}

func (o *ServiceletOptions) config() (*rest.Config, error) {
	if o.Kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --cluster-kubeconfig and not in a cluster: %w", err)
		}
		return cfg, nil
	}
	return clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
}

// Servicelet is the provider's servicelet.
func Servicelet(o *ServiceletOptions) servicelet.Provider {
	return servicelet.Provider{
		Name: "kubernetes-servicelet", Workspace: Workspace, Export: Export, Kinds: Kinds,
		AddFlags: o.AddFlags, Validate: o.Validate, Start: o.Start,
	}
}
