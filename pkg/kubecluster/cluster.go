package kubecluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/msp-dev/msp/pkg/child"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/ports"
)

// Files in a cluster's folder.
const (
	// AdminKubeconfig is a kubeconfig of the cluster's admin (group system:masters).
	AdminKubeconfig = "admin.kubeconfig"
	caDir           = "ca"
	portFile        = "port"
	prefixFile      = "etcd-prefix"
)

// Controllers are the kube-controller-manager controllers a cluster runs: what a
// cluster without nodes needs to behave like one (namespaces finalized, quotas counted,
// ServiceAccounts and the admin role's aggregation, the garbage collector, Deployments
// making ReplicaSets making Pods that stay Pending).
var Controllers = []string{"namespace", "garbagecollector", "resourcequota", "serviceaccount", "serviceaccount-token", "clusterrole-aggregation", "deployment", "replicaset"}

// Options configure one cluster.
type Options struct {
	// Name names the cluster; its data lives in etcd under /clusters/<Name>-<random>,
	// the suffix chosen on the first start and kept in Dir, so that two clusters of one
	// name in two folders never share data. Required.
	Name string
	// Dir holds the cluster's certificates, kubeconfigs and logs. A folder started
	// before is started again with the same port and certificates, so kubeconfigs
	// handed out stay valid. Required.
	Dir string
	// Etcd is the etcd endpoint. Required.
	Etcd string
	// APIServer and ControllerManager are the binaries. APIServer is required; without
	// ControllerManager the cluster runs no controllers.
	APIServer, ControllerManager string
	// StartTimeout bounds the wait for the API server to be ready. Defaults to 60s.
	StartTimeout time.Duration
}

// Cluster is a running control plane.
type Cluster struct {
	opts      Options
	port      int
	prefix    string
	ca        *identity.CA
	apiserver *child.Process
	kcm       *child.Process
}

// Start starts the cluster's API server and controller manager and waits until the
// API server is ready.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Name == "" || opts.Dir == "" || opts.Etcd == "" || opts.APIServer == "" {
		return nil, errors.New("kubecluster: a cluster needs a name, a folder, an etcd endpoint and the kube-apiserver binary")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	if c.port, err = recordedPort(filepath.Join(dir, portFile)); err != nil {
		return nil, err
	}
	if c.prefix, err = recordedPrefix(filepath.Join(dir, prefixFile), opts.Name); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, etcdFile), []byte(opts.Etcd), 0o644); err != nil {
		return nil, err
	}
	if c.ca, err = identity.LoadOrCreateCA(filepath.Join(dir, caDir)); err != nil {
		return nil, err
	}
	if err := c.writeCredentials(); err != nil {
		return nil, err
	}
	if c.apiserver, err = child.Start(opts.APIServer, c.apiserverArgs(), c.path("kube-apiserver.log")); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("cluster %s: the API server did not get ready (log: %s): %w", opts.Name, c.path("kube-apiserver.log"), err)
	}
	if opts.ControllerManager != "" {
		if c.kcm, err = child.Start(opts.ControllerManager, c.controllerManagerArgs(), c.path("kube-controller-manager.log")); err != nil {
			c.Stop()
			return nil, err
		}
		if err := c.waitAggregated(ctx); err != nil {
			c.Stop()
			return nil, fmt.Errorf("cluster %s: the controller manager did not get to work (log: %s): %w", opts.Name, c.path("kube-controller-manager.log"), err)
		}
	}
	return c, nil
}

// waitAggregated waits until the controller manager has aggregated the admin
// ClusterRole: until then a binding to it grants almost nothing, and a namespace's
// admin could not even read its ConfigMaps.
func (c *Cluster) waitAggregated(ctx context.Context) error {
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	for {
		role, err := cs.RbacV1().ClusterRoles().Get(ctx, "admin", metav1.GetOptions{})
		if err == nil && grants(role.Rules, "configmaps", "list") {
			return nil
		}
		select {
		case <-c.kcm.Done():
			return errors.New("the controller manager exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// grants reports whether a rule of rules allows verb on resource of the core group.
func grants(rules []rbacv1.PolicyRule, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.opts.Name }

// URL is the API server's address.
func (c *Cluster) URL() string { return "https://127.0.0.1:" + strconv.Itoa(c.port) }

// CAPEM is the certificate the API server's serving certificate is signed by.
func (c *Cluster) CAPEM() []byte { return c.ca.CertPEM() }

// AdminKubeconfigPath is the path of the admin kubeconfig.
func (c *Cluster) AdminKubeconfigPath() string { return c.path(AdminKubeconfig) }

// RESTConfig is the admin's client configuration.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.AdminKubeconfigPath())
}

// Pids are the processes of the control plane that run.
func (c *Cluster) Pids() []int {
	var out []int
	for _, p := range []*child.Process{c.apiserver, c.kcm} {
		if p != nil && p.Running() {
			out = append(out, p.Pid())
		}
	}
	return out
}

// Stop stops the controller manager, then the API server. The folder and the data in
// etcd stay: Start on the same Options brings the cluster back.
func (c *Cluster) Stop() {
	if c.kcm != nil {
		c.kcm.Stop(10 * time.Second)
	}
	if c.apiserver != nil {
		c.apiserver.Stop(15 * time.Second)
	}
}

func (c *Cluster) path(name string) string { return filepath.Join(c.opts.Dir, name) }

func (c *Cluster) apiserverArgs() []string {
	return []string{
		"--etcd-servers", c.opts.Etcd,
		"--etcd-prefix", c.prefix,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.port),
		"--cert-dir", c.path("certs"),
		"--tls-cert-file", c.path("serving.crt"), "--tls-private-key-file", c.path("serving.key"),
		"--client-ca-file", c.path("ca.crt"),
		"--service-account-key-file", c.path("sa.pub"),
		"--service-account-signing-key-file", c.path("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc/" + c.opts.Name,
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--endpoint-reconciler-type", "none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
}

func (c *Cluster) controllerManagerArgs() []string {
	return []string{
		"--kubeconfig", c.path("kube-controller-manager.kubeconfig"),
		"--controllers", strings.Join(Controllers, ","),
		"--use-service-account-credentials",
		"--service-account-private-key-file", c.path("sa.key"),
		"--root-ca-file", c.path("ca.crt"),
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-namespace-syncs", "2",
	}
}

// writeCredentials writes what the control plane and its admin need, once: the CA's
// certificate, the serving certificate, the ServiceAccount signing key and the
// kubeconfigs of the admin and the controller manager.
func (c *Cluster) writeCredentials() error {
	if _, err := os.Stat(c.path(AdminKubeconfig)); err == nil {
		return nil
	}
	const ttl = 10 * 365 * 24 * time.Hour
	if err := os.WriteFile(c.path("ca.crt"), c.ca.CertPEM(), 0o644); err != nil {
		return err
	}
	cert, key, err := c.ca.IssueServing([]string{"127.0.0.1", "localhost"}, ttl)
	if err != nil {
		return err
	}
	if err := writePair(c.path("serving.crt"), cert, c.path("serving.key"), key); err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := writePair(c.path("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		c.path("sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})); err != nil {
		return err
	}
	if err := c.writeKubeconfig("kube-controller-manager.kubeconfig", "system:kube-controller-manager", nil, ttl); err != nil {
		return err
	}
	// Last: its presence says the folder is complete.
	return c.writeKubeconfig(AdminKubeconfig, "msp-admin", []string{"system:masters"}, ttl)
}

// UserKubeconfig writes, once, a kubeconfig named file in the cluster's folder for a
// client certificate of user (and groups) signed by the cluster's CA, and returns its
// path. A user named like a ServiceAccount (system:serviceaccount:NS:NAME) has that
// ServiceAccount's rights: RBAC and admission know subjects by their user name.
func (c *Cluster) UserKubeconfig(file, user string, groups []string) (string, error) {
	path := c.path(file)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, c.writeKubeconfig(file, user, groups, 10*365*24*time.Hour)
}

func (c *Cluster) writeKubeconfig(file, user string, groups []string, ttl time.Duration) error {
	cert, key, err := c.ca.IssueClient(user, groups, ttl)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.opts.Name] = &clientcmdapi.Cluster{Server: c.URL(), CertificateAuthorityData: c.ca.CertPEM()}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[c.opts.Name] = &clientcmdapi.Context{Cluster: c.opts.Name, AuthInfo: user}
	cfg.CurrentContext = c.opts.Name
	return clientcmd.WriteToFile(*cfg, c.path(file))
}

func (c *Cluster) waitReady(ctx context.Context) error {
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone()}}
	return waitHTTP(ctx, hc, c.URL()+"/readyz", c.opts.StartTimeout, c.apiserver)
}

// recordedPort returns the port recorded in file, picking and recording a free one the
// first time.
func recordedPort(file string) (int, error) {
	if raw, err := os.ReadFile(file); err == nil {
		return strconv.Atoi(strings.TrimSpace(string(raw)))
	}
	p, err := ports.Free("127.0.0.1")
	if err != nil {
		return 0, err
	}
	return p, os.WriteFile(file, []byte(strconv.Itoa(p)), 0o644)
}

// recordedPrefix returns the etcd prefix recorded in file, choosing and recording one
// for a cluster named name the first time.
func recordedPrefix(file, name string) (string, error) {
	if raw, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return "", err
	}
	prefix := fmt.Sprintf("/clusters/%s-%x", name, suffix)
	return prefix, os.WriteFile(file, []byte(prefix), 0o644)
}

func writePair(certFile string, cert []byte, keyFile string, key []byte) error {
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, key, 0o600)
}
