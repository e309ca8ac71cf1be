package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/ports"
)

// A sharded kcp (Options.Shards > 1) is, on the data folder:
//
//	msp-shards.json                 the ports of every process, reused on later starts
//	msp-tokens.csv, msp-ca.*        the static tokens and msp's CA, as for one shard
//	admin.kubeconfig                kcp admin (a client certificate of msp's CA) at the front proxy
//	platform.kubeconfig             msp-platform's static token at the front proxy
//	pki/                            serving CA and certificates, the front proxy's request-header
//	                                CA, internal client certificates and kubeconfigs, the
//	                                ServiceAccount signing key all shards share
//	shards/<name>/                  a shard's kcp root directory (embedded etcd, kcp.log)
//	shards/<name>.kubeconfig        kcp admin at that shard itself, bypassing the front proxy
//	cache/                          the cache server (embedded etcd, cache.log)
//	front-proxy/                    the front proxy's mapping file and front-proxy.log
const (
	shardsFile = "msp-shards.json"
	// RootShard is the name of the shard that holds the root workspace.
	RootShard = "root"
	// FrontProxyLogFile and CacheLogFile are the logs of the front proxy and the cache
	// server of a sharded kcp, in their folders (see Server.LogFiles).
	FrontProxyLogFile = "front-proxy.log"
	CacheLogFile      = "cache.log"

	// The names kcp's front proxy and shards agree on for the request-header
	// authentication of proxied requests.
	frontProxyClientName = "kcp-front-proxy"
	remoteUserHeader     = "X-Remote-User"
	remoteGroupHeader    = "X-Remote-Group"
	remoteExtraPrefix    = "X-Remote-Extra-"

	// kcp's system groups (github.com/kcp-dev/kcp/pkg/authorization/bootstrap).
	systemMasters                  = "system:masters"
	kcpAdminGroup                  = "system:kcp:admin"
	logicalClusterAdminGroup       = "system:kcp:logical-cluster-admin"
	externalLogicalClusterAdminGrp = "system:kcp:external-logical-cluster-admin"
)

// ShardName is the name of the i-th shard: root, shard-1, shard-2, ...
func ShardName(i int) string {
	if i == 0 {
		return RootShard
	}
	return "shard-" + strconv.Itoa(i)
}

// Shard describes one shard of a running kcp.
type Shard struct {
	// Name is the shard's name, also the name of its Shard object in root (root, shard-1, ...).
	Name string
	// URL is the shard's own base URL, which the front proxy forwards to.
	URL string
	// KubeconfigPath is a kcp admin kubeconfig for the shard itself, bypassing the front
	// proxy; its current context addresses the shard without a workspace (for one shard:
	// the admin kubeconfig, whose context is the root workspace).
	KubeconfigPath string
	// DataDir is the shard's kcp root directory, LogFile its log.
	DataDir, LogFile string
	// Running says whether the shard's process runs (StopShard stops it).
	Running bool
}

// topology is what msp-shards.json records: every port of a sharded kcp.
type topology struct {
	FrontProxy int          `json:"frontProxyPort"`
	Cache      portSet      `json:"cache"`
	Shards     []namedPorts `json:"shards"`
}

type namedPorts struct {
	Name  string  `json:"name"`
	Ports portSet `json:"ports"`
}

// sharded is the state of a running sharded kcp.
type sharded struct {
	topo   topology
	pki    pkiFiles
	cache  *process
	proxy  *process
	shards []*shardProcess

	mu       sync.Mutex
	stopping bool
	failOnce sync.Once
}

type shardProcess struct {
	name       string
	dir        string
	kubeconfig string
	ports      portSet
	proc       *process
}

// pkiFiles are the certificates, keys and kubeconfigs of pki/.
type pkiFiles struct {
	dir                                 string
	servingCA, requestHeaderCA          string
	serviceAccountKey                   string
	proxyClientCert, proxyClientKey     string // the front proxy's request-header identity
	shardClientCert, shardClientKey     string // shards among themselves (system:masters)
	rootShardKubeconfig                 string // shards and front proxy to the root shard
	shardsKubeconfig                    string // front proxy to any shard
	cacheKubeconfig                     string
	logicalClusterAdminKubeconfig       string
	externalLogicalClusterAdminKubeconf string
}

func (p pkiFiles) serving(name string) (cert, key string) {
	return filepath.Join(p.dir, name+"-serving.crt"), filepath.Join(p.dir, name+"-serving.key")
}

func (s *Server) hostURL(port int) string {
	return "https://" + net.JoinHostPort(s.opts.BindAddress, strconv.Itoa(port))
}

// startSharded starts the cache server, the shards and the front proxy (see Options.Shards).
func startSharded(ctx context.Context, opts Options, kcpBin string) (*Server, error) {
	proxyBin, err := siblingBinary(opts.FrontProxyBinary, kcpBin, "kcp-front-proxy")
	if err != nil {
		return nil, err
	}
	cacheBin, err := siblingBinary(opts.CacheServerBinary, kcpBin, "cache-server")
	if err != nil {
		return nil, err
	}
	topo, err := chooseTopology(opts)
	if err != nil {
		return nil, err
	}
	for name := range opts.ShardLabels {
		if !slices.ContainsFunc(topo.Shards, func(np namedPorts) bool { return np.Name == name }) {
			return nil, fmt.Errorf("launcher: ShardLabels names shard %q, but the shards are root ... %s", name, ShardName(len(topo.Shards)-1))
		}
	}
	token, err := platformToken(opts.DataDir)
	if err != nil {
		return nil, err
	}
	if err := ensureUserTokens(opts.DataDir, opts.Users); err != nil {
		return nil, err
	}
	ca, err := identity.LoadOrCreateCA(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("launcher: failed to set up msp's CA: %w", err)
	}
	sh := &sharded{topo: topo}
	s := &Server{opts: opts, ports: portSet{Secure: topo.FrontProxy}, done: make(chan struct{}), ca: ca, sh: sh}
	if err := s.writePKI(ca); err != nil {
		return nil, err
	}

	sh.cache = &process{name: "cache", bin: cacheBin, dir: filepath.Join(opts.DataDir, "cache"),
		output: opts.Output, args: s.cacheArgs()}
	sh.cache.logFile = filepath.Join(sh.cache.dir, CacheLogFile)
	for _, np := range topo.Shards {
		dir := filepath.Join(opts.DataDir, "shards", np.Name)
		sp := &shardProcess{name: np.Name, dir: dir, ports: np.Ports,
			kubeconfig: filepath.Join(opts.DataDir, "shards", np.Name+".kubeconfig")}
		sp.proc = &process{name: np.Name, bin: kcpBin, dir: dir, logFile: filepath.Join(dir, LogFile),
			output: opts.Output, args: s.shardArgs(sp)}
		sh.shards = append(sh.shards, sp)
	}
	sh.proxy = &process{name: "front-proxy", bin: proxyBin, dir: filepath.Join(opts.DataDir, "front-proxy"),
		output: opts.Output, args: s.proxyArgs()}
	sh.proxy.logFile = filepath.Join(sh.proxy.dir, FrontProxyLogFile)
	for _, dir := range []string{sh.cache.dir, sh.proxy.dir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	for _, sp := range sh.shards {
		if err := os.MkdirAll(sp.dir, 0o700); err != nil {
			return nil, err
		}
		// The shard's own admin: system:masters on that shard (as a single kcp's
		// shard-base context), which also reads its /metrics.
		if err := writeCertKubeconfig(sp.kubeconfig, sh.pki.servingCA, filepath.Join(sh.pki.dir, "shard-client.crt"), filepath.Join(sh.pki.dir, "shard-client.key"),
			kubeconfigCluster{"base", s.hostURL(sp.ports.Secure)},
			kubeconfigCluster{"root", s.hostURL(sp.ports.Secure) + "/clusters/root"}); err != nil {
			return nil, err
		}
	}
	if err := s.writeMapping(); err != nil {
		return nil, err
	}

	fail := func(p *process, err error) (*Server, error) {
		_ = s.Stop()
		return nil, fmt.Errorf("launcher: %s did not become ready: %w\n--- last lines of %s ---\n%s", p.name, err, p.logFile, tail(p.logFile, 30))
	}
	// The cache server first: every shard replicates into it.
	if err := sh.cache.start(s.onExit); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, sh.cache, func(ctx context.Context) error {
		return probeCache(ctx, s.hostURL(topo.Cache.Secure), sh.pki.servingCA)
	}); err != nil {
		return fail(sh.cache, err)
	}
	// The root shard, then the others, which register with it.
	root := sh.shards[0]
	if err := root.proc.start(s.onExit); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if err := s.waitShard(ctx, root); err != nil {
		return fail(root.proc, err)
	}
	errs := make([]error, len(sh.shards))
	var wg sync.WaitGroup
	for i, sp := range sh.shards[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sp.proc.start(s.onExit); err != nil {
				errs[i+1] = err
				return
			}
			if err := s.waitShard(ctx, sp); err != nil {
				errs[i+1] = fmt.Errorf("%s did not become ready: %w\n--- last lines of %s ---\n%s", sp.name, err, sp.proc.logFile, tail(sp.proc.logFile, 30))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("launcher: %w", err)
	}
	// The front proxy last: it finds the shards in root.
	if err := sh.proxy.start(s.onExit); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if err := s.waitReady(ctx, sh.proxy, func(ctx context.Context) error {
		cfg, err := s.RESTConfig()
		if err != nil {
			return err
		}
		return probe(ctx, cfg)
	}); err != nil {
		return fail(sh.proxy, err)
	}
	if err := s.writePlatformKubeconfig(token); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// siblingBinary finds a kcp companion binary: the one configured, else the one next to
// the kcp binary, else the one on PATH.
func siblingBinary(configured, kcpBin, name string) (string, error) {
	if configured == "" {
		if next := filepath.Join(filepath.Dir(kcpBin), name); isExecutable(next) {
			return next, nil
		}
		configured = name
	}
	bin, err := exec.LookPath(configured)
	if err != nil {
		return "", fmt.Errorf("launcher: %s binary %q not found (run 'make tools'): %w", name, configured, err)
	}
	return bin, nil
}

func isExecutable(file string) bool {
	fi, err := os.Stat(file)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// chooseTopology reuses the ports recorded in msp-shards.json, adding ports for shards
// the folder did not have yet, or picks free ones on the first start.
func chooseTopology(opts Options) (topology, error) {
	var t topology
	if _, err := os.Stat(filepath.Join(opts.DataDir, portsFile)); err == nil {
		return t, fmt.Errorf("launcher: %s holds a kcp with a single shard: start it with one shard, or use another data folder", opts.DataDir)
	}
	file := filepath.Join(opts.DataDir, shardsFile)
	recorded := false
	if raw, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(raw, &t); err != nil {
			return t, fmt.Errorf("launcher: %s is corrupt: %w", file, err)
		}
		if len(t.Shards) > opts.Shards {
			return t, fmt.Errorf("launcher: %s holds a kcp with %d shards: start it with %d shards (shards cannot be removed), or use another data folder", opts.DataDir, len(t.Shards), len(t.Shards))
		}
		recorded = true
	}
	taken := map[int]bool{}
	for _, p := range allPorts(t) {
		taken[p] = true
	}
	pick := func(p *int) error {
		if *p != 0 {
			return nil
		}
		for range 20 {
			port, err := ports.Free(opts.BindAddress)
			if err != nil {
				return err
			}
			if !taken[port] {
				taken[port] = true
				*p = port
				return nil
			}
		}
		return errors.New("launcher: found no free port")
	}
	if t.FrontProxy == 0 && opts.SecurePort != 0 {
		t.FrontProxy = opts.SecurePort
		taken[t.FrontProxy] = true
	}
	for len(t.Shards) < opts.Shards {
		t.Shards = append(t.Shards, namedPorts{Name: ShardName(len(t.Shards))})
	}
	fields := []*int{&t.FrontProxy, &t.Cache.Secure, &t.Cache.EtcdClient, &t.Cache.EtcdPeer}
	for i := range t.Shards {
		fields = append(fields, &t.Shards[i].Ports.Secure, &t.Shards[i].Ports.EtcdClient, &t.Shards[i].Ports.EtcdPeer)
	}
	added := false
	for _, f := range fields {
		if *f == 0 {
			added = true
		}
		if err := pick(f); err != nil {
			return t, err
		}
	}
	if added {
		raw, _ := json.MarshalIndent(t, "", "  ")
		if err := os.WriteFile(file, raw, 0o600); err != nil {
			return t, fmt.Errorf("launcher: failed to record ports: %w", err)
		}
	}
	if recorded {
		for _, port := range allPorts(t) {
			if !portFree(opts.BindAddress, port) {
				return t, fmt.Errorf("launcher: port %d recorded for %s is in use: is another kcp running on this data folder?", port, opts.DataDir)
			}
		}
	}
	return t, nil
}

func allPorts(t topology) []int {
	out := []int{t.FrontProxy, t.Cache.Secure, t.Cache.EtcdClient, t.Cache.EtcdPeer}
	for _, s := range t.Shards {
		out = append(out, s.Ports.Secure, s.Ports.EtcdClient, s.Ports.EtcdPeer)
	}
	return slices.DeleteFunc(out, func(p int) bool { return p == 0 })
}

// writePKI makes sure of the certificates (kept between starts while valid) and writes
// the kubeconfigs the processes use to reach each other (ports may be new).
func (s *Server) writePKI(ca *identity.CA) error {
	dir := filepath.Join(s.opts.DataDir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f := pkiFiles{
		dir:                                 dir,
		servingCA:                           filepath.Join(dir, "serving-ca.crt"),
		requestHeaderCA:                     filepath.Join(dir, "requestheader-ca.crt"),
		serviceAccountKey:                   filepath.Join(dir, "service-account.key"),
		proxyClientCert:                     filepath.Join(dir, "front-proxy-requestheader.crt"),
		proxyClientKey:                      filepath.Join(dir, "front-proxy-requestheader.key"),
		shardClientCert:                     filepath.Join(dir, "shard-client.crt"),
		shardClientKey:                      filepath.Join(dir, "shard-client.key"),
		rootShardKubeconfig:                 filepath.Join(dir, "root-shard.kubeconfig"),
		shardsKubeconfig:                    filepath.Join(dir, "shards.kubeconfig"),
		cacheKubeconfig:                     filepath.Join(dir, "cache.kubeconfig"),
		logicalClusterAdminKubeconfig:       filepath.Join(dir, "logical-cluster-admin.kubeconfig"),
		externalLogicalClusterAdminKubeconf: filepath.Join(dir, "external-logical-cluster-admin.kubeconfig"),
	}
	s.sh.pki = f
	servingCA, err := identity.LoadOrCreateCAFiles(f.servingCA, filepath.Join(dir, "serving-ca.key"), "msp local kcp serving CA")
	if err != nil {
		return fmt.Errorf("launcher: serving CA: %w", err)
	}
	rhCA, err := identity.LoadOrCreateCAFiles(f.requestHeaderCA, filepath.Join(dir, "requestheader-ca.key"), "msp local kcp front-proxy request-header CA")
	if err != nil {
		return fmt.Errorf("launcher: request-header CA: %w", err)
	}
	hosts := []string{s.opts.BindAddress}
	for _, h := range []string{"127.0.0.1", "localhost"} {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	names := []string{"cache", "front-proxy"}
	for _, sp := range s.sh.topo.Shards {
		names = append(names, sp.Name)
	}
	for _, n := range names {
		cert, key := f.serving(n)
		if err := servingCA.EnsureServingFiles(cert, key, hosts, leafValidity, leafRenewBefore); err != nil {
			return fmt.Errorf("launcher: serving certificate of %s: %w", n, err)
		}
	}
	if err := rhCA.EnsureClientFiles(f.proxyClientCert, f.proxyClientKey, frontProxyClientName, nil, leafValidity, leafRenewBefore); err != nil {
		return fmt.Errorf("launcher: front proxy's request-header certificate: %w", err)
	}
	// Identities of msp's CA, which every shard and the front proxy trust.
	clients := []struct {
		file, user string
		groups     []string
	}{
		{"shard-client", "msp:kcp-shard", []string{systemMasters}},
		{"front-proxy-shards", "msp:kcp-front-proxy", []string{systemMasters}},
		{"logical-cluster-admin", "msp:logical-cluster-admin", []string{logicalClusterAdminGroup}},
		{"external-logical-cluster-admin", "msp:external-logical-cluster-admin", []string{externalLogicalClusterAdminGrp}},
		{"admin", "kcp-admin", []string{kcpAdminGroup}},
	}
	for _, c := range clients {
		cert, key := filepath.Join(dir, c.file+".crt"), filepath.Join(dir, c.file+".key")
		if err := ca.EnsureClientFiles(cert, key, c.user, c.groups, leafValidity, leafRenewBefore); err != nil {
			return fmt.Errorf("launcher: client certificate %s: %w", c.file, err)
		}
	}
	if err := ensureServiceAccountKey(f.serviceAccountKey); err != nil {
		return err
	}

	rootURL := s.hostURL(s.sh.topo.Shards[0].Ports.Secure)
	proxyURL := s.hostURL(s.sh.topo.FrontProxy)
	cert := func(name string) (string, string) {
		return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	}
	type kc struct {
		file, identity string
		clusters       []kubeconfigCluster
	}
	for _, k := range []kc{
		// kcp reads the context shard-base of --root-shard-kubeconfig-file.
		{f.rootShardKubeconfig, "shard-client", []kubeconfigCluster{{"shard-base", rootURL}, {"root", rootURL + "/clusters/root"}}},
		// The front proxy replaces the server with each shard's.
		{f.shardsKubeconfig, "front-proxy-shards", []kubeconfigCluster{{"base", rootURL}}},
		{f.cacheKubeconfig, "shard-client", []kubeconfigCluster{{"cache", s.hostURL(s.sh.topo.Cache.Secure)}}},
		{f.logicalClusterAdminKubeconfig, "logical-cluster-admin", []kubeconfigCluster{{"base", rootURL}}},
		{f.externalLogicalClusterAdminKubeconf, "external-logical-cluster-admin", []kubeconfigCluster{{"base", proxyURL}}},
		// The admin kubeconfig: the root workspace through the front proxy.
		{s.KubeconfigPath(), "admin", []kubeconfigCluster{{"root", proxyURL + "/clusters/root"}, {"base", proxyURL}}},
	} {
		c, k2 := cert(k.identity)
		if err := writeCertKubeconfig(k.file, f.servingCA, c, k2, k.clusters...); err != nil {
			return fmt.Errorf("launcher: failed to write %s: %w", k.file, err)
		}
	}
	return nil
}

func (s *Server) cacheArgs() []string {
	p := s.sh.topo.Cache
	cert, key := s.sh.pki.serving("cache")
	return []string{
		"--root-directory=" + filepath.Join(s.opts.DataDir, "cache"),
		"--bind-address=" + s.opts.BindAddress,
		"--secure-port=" + strconv.Itoa(p.Secure),
		"--embedded-etcd-client-port=" + strconv.Itoa(p.EtcdClient),
		"--embedded-etcd-peer-port=" + strconv.Itoa(p.EtcdPeer),
		"--tls-cert-file=" + cert,
		"--tls-private-key-file=" + key,
	}
}

func (s *Server) shardArgs(sp *shardProcess) []string {
	f := s.sh.pki
	cert, key := f.serving(sp.name)
	args := []string{"start",
		"--shard-name=" + sp.name,
		"--root-directory=" + sp.dir,
		"--bind-address=" + s.opts.BindAddress,
		"--secure-port=" + strconv.Itoa(sp.ports.Secure),
		"--external-hostname=" + s.opts.BindAddress,
		"--embedded-etcd-client-port=" + strconv.Itoa(sp.ports.EtcdClient),
		"--embedded-etcd-peer-port=" + strconv.Itoa(sp.ports.EtcdPeer),
		"--tls-cert-file=" + cert,
		"--tls-private-key-file=" + key,
		// Users: msp's static tokens and client certificates, as for one shard, and
		// whoever the front proxy authenticated (request headers).
		"--token-auth-file=" + filepath.Join(s.opts.DataDir, tokensFile),
		"--client-ca-file=" + s.ca.CertFile,
		"--requestheader-client-ca-file=" + f.requestHeaderCA,
		"--requestheader-allowed-names=" + frontProxyClientName,
		"--requestheader-username-headers=" + remoteUserHeader,
		"--requestheader-group-headers=" + remoteGroupHeader,
		"--requestheader-extra-headers-prefix=" + remoteExtraPrefix,
		// One ServiceAccount key for all shards.
		"--service-account-key-file=" + f.serviceAccountKey,
		"--service-account-private-key-file=" + f.serviceAccountKey,
		"--service-account-signing-key-file=" + f.serviceAccountKey,
		// The shard serves at its own URL; clients reach its workspaces at the front proxy.
		"--shard-base-url=" + s.hostURL(sp.ports.Secure),
		"--shard-external-url=" + s.hostURL(s.sh.topo.FrontProxy),
		"--shard-client-cert-file=" + f.shardClientCert,
		"--shard-client-key-file=" + f.shardClientKey,
		"--shard-virtual-workspace-ca-file=" + f.servingCA,
		"--logical-cluster-admin-kubeconfig=" + f.logicalClusterAdminKubeconfig,
		"--external-logical-cluster-admin-kubeconfig=" + f.externalLogicalClusterAdminKubeconf,
		"--cache-kubeconfig=" + f.cacheKubeconfig,
	}
	if sp.name != RootShard {
		args = append(args, "--root-shard-kubeconfig-file="+f.rootShardKubeconfig)
	}
	return append(args, s.opts.ExtraArgs...)
}

func (s *Server) proxyArgs() []string {
	f := s.sh.pki
	cert, key := f.serving("front-proxy")
	dir := filepath.Join(s.opts.DataDir, "front-proxy")
	return []string{
		"--root-directory=" + dir,
		"--mapping-file=" + filepath.Join(dir, "mapping.yaml"),
		"--root-kubeconfig=" + f.rootShardKubeconfig,
		"--shards-kubeconfig=" + f.shardsKubeconfig,
		"--bind-address=" + s.opts.BindAddress,
		"--secure-port=" + strconv.Itoa(s.sh.topo.FrontProxy),
		"--tls-cert-file=" + cert,
		"--tls-private-key-file=" + key,
		"--client-ca-file=" + s.ca.CertFile,
		"--token-auth-file=" + filepath.Join(s.opts.DataDir, tokensFile),
	}
}

// pathMapping is an entry of the front proxy's --mapping-file.
type pathMapping struct {
	Path            string `json:"path"`
	Backend         string `json:"backend"`
	BackendServerCA string `json:"backend_server_ca"`
	ProxyClientCert string `json:"proxy_client_cert"`
	ProxyClientKey  string `json:"proxy_client_key"`
}

// writeMapping writes the front proxy's mapping file: /clusters/ goes to the shard of
// the workspace (the backend is only a default), /services/ (virtual workspaces) to the
// root shard's.
func (s *Server) writeMapping() error {
	f := s.sh.pki
	root := s.hostURL(s.sh.topo.Shards[0].Ports.Secure)
	var mappings []pathMapping
	for _, path := range []string{"/services/", "/clusters/"} {
		mappings = append(mappings, pathMapping{Path: path, Backend: root, BackendServerCA: f.servingCA,
			ProxyClientCert: f.proxyClientCert, ProxyClientKey: f.proxyClientKey})
	}
	raw, err := yaml.Marshal(mappings)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.opts.DataDir, "front-proxy", "mapping.yaml"), raw, 0o600)
}

// onExit notes a process that exits without having been asked to: the server is done.
func (s *Server) onExit(p *process, stopped bool) {
	if stopped {
		return
	}
	s.sh.failOnce.Do(func() {
		s.err = fmt.Errorf("%s exited: %v (log: %s)", p.name, p.exitErr(), p.logFile)
		close(s.done)
	})
}

// waitReady polls ready until it succeeds, the process exits or StartTimeout passes.
func (s *Server) waitReady(ctx context.Context, p *process, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("not probed yet")
	for {
		select {
		case <-p.doneCh():
			return fmt.Errorf("%s exited: %v", p.name, p.exitErr())
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), last)
		case <-tick.C:
		}
		if last = ready(ctx); last == nil {
			return nil
		}
	}
}

// waitShard waits until the shard serves (for root: its root workspace), has its Shard
// object in root, and that object carries the labels of Options.ShardLabels.
func (s *Server) waitShard(ctx context.Context, sp *shardProcess) error {
	return s.waitReady(ctx, sp.proc, func(ctx context.Context) error {
		cfg, err := clientcmd.BuildConfigFromFlags("", sp.kubeconfig)
		if err != nil {
			return err
		}
		if sp.name == RootShard {
			if err := probe(ctx, cfg); err != nil {
				return err
			}
		} else if err := get(ctx, cfg, "/readyz"); err != nil {
			return err
		}
		rootCfg, err := clientcmd.BuildConfigFromFlags("", s.sh.pki.rootShardKubeconfig)
		if err != nil {
			return err
		}
		return s.labelShard(ctx, rootCfg, sp.name)
	})
}

var shardsGVR = schema.GroupVersionResource{Group: "core.kcp.io", Version: "v1alpha1", Resource: "shards"}

// labelShard applies the shard's labels of Options.ShardLabels to its Shard object in
// root (server-side apply, field manager msp-launcher: labels dropped from the options
// are removed, labels of others stay). It fails while the Shard object does not exist.
func (s *Server) labelShard(ctx context.Context, cfg *rest.Config, name string) error {
	client, err := dynamic.NewForConfig(kcpconfig.ForWorkspace(cfg, "root"))
	if err != nil {
		return err
	}
	shards := client.Resource(shardsGVR)
	if _, err := shards.Get(ctx, name, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("shard %s has not registered in root yet", name)
		}
		return err
	}
	labels, ok := s.opts.ShardLabels[name]
	if !ok {
		return nil
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "core.kcp.io/v1alpha1",
		"kind":       "Shard",
		"metadata":   map[string]any{"name": name},
	}}
	obj.SetLabels(labels)
	if _, err := shards.Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: "msp-launcher", Force: true}); err != nil {
		return fmt.Errorf("failed to label shard %s: %w", name, err)
	}
	return nil
}

// probeCache asks the cache server's readyz (it has no authentication).
func probeCache(ctx context.Context, url, caFile string) error {
	return get(ctx, &rest.Config{Host: url, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}}, "/readyz")
}

// get sends GET path to the server of cfg and wants 200.
func get(ctx context.Context, cfg *rest.Config, path string) error {
	base := kcpconfig.Base(cfg)
	client, err := rest.HTTPClientFor(base)
	if err != nil {
		return err
	}
	client.Timeout = 5 * time.Second
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.Host+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

func (s *Server) shard(name string) (*shardProcess, error) {
	if s.sh == nil {
		return nil, fmt.Errorf("launcher: kcp runs a single shard, %q cannot be stopped or started on its own", name)
	}
	for _, sp := range s.sh.shards {
		if sp.name == name {
			if name == RootShard {
				return nil, errors.New("launcher: the root shard cannot be stopped or started on its own: use Stop")
			}
			return sp, nil
		}
	}
	return nil, fmt.Errorf("launcher: no shard %q", name)
}

// StopShard stops one shard other than root, leaving the rest running: the workspaces
// on it are unavailable until StartShard. Stopping a stopped shard does nothing.
func (s *Server) StopShard(name string) error {
	sp, err := s.shard(name)
	if err != nil {
		return err
	}
	s.stopShard(sp)
	return nil
}

// stopShard stops a shard; once it no longer listens, neither its API nor its embedded
// etcd, it is given settleGrace to exit (see process.stopWhenSettled).
func (s *Server) stopShard(sp *shardProcess) {
	sp.proc.stopWhenSettled(s.opts.StopTimeout, func() bool {
		return !listening(s.opts.BindAddress, sp.ports.Secure) && !listening(s.opts.BindAddress, sp.ports.EtcdClient)
	})
}

// listening says whether something accepts connections on host:port.
func listening(host string, port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// StartShard starts a shard that StopShard stopped, on its data and ports, and returns
// once it serves again and is labelled.
func (s *Server) StartShard(ctx context.Context, name string) error {
	sp, err := s.shard(name)
	if err != nil {
		return err
	}
	if sp.proc.running() {
		return fmt.Errorf("launcher: shard %s is running", name)
	}
	for _, port := range []int{sp.ports.Secure, sp.ports.EtcdClient, sp.ports.EtcdPeer} {
		if !portFree(s.opts.BindAddress, port) {
			return fmt.Errorf("launcher: port %d of shard %s is in use", port, name)
		}
	}
	s.sh.mu.Lock()
	stopping := s.sh.stopping
	s.sh.mu.Unlock()
	if stopping {
		return errors.New("launcher: the server is stopped")
	}
	if err := sp.proc.start(s.onExit); err != nil {
		return err
	}
	if err := s.waitShard(ctx, sp); err != nil {
		s.stopShard(sp)
		return fmt.Errorf("launcher: shard %s did not become ready: %w\n--- last lines of %s ---\n%s", name, err, sp.proc.logFile, tail(sp.proc.logFile, 30))
	}
	return nil
}

// stopSharded stops the front proxy, the shards (root last) and the cache server.
func (s *Server) stopSharded() {
	s.sh.mu.Lock()
	s.sh.stopping = true
	s.sh.mu.Unlock()
	if s.sh.proxy != nil {
		s.sh.proxy.stop(s.opts.StopTimeout)
	}
	var wg sync.WaitGroup
	for _, sp := range s.sh.shards[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stopShard(sp)
		}()
	}
	wg.Wait()
	if len(s.sh.shards) > 0 {
		s.stopShard(s.sh.shards[0])
	}
	if s.sh.cache != nil {
		s.sh.cache.stop(s.opts.StopTimeout)
	}
	s.sh.failOnce.Do(func() { close(s.done) })
}

func (s *Server) shardsInfo() []Shard {
	if s.sh == nil {
		return []Shard{{Name: RootShard, URL: s.URL(), KubeconfigPath: s.KubeconfigPath(), DataDir: s.opts.DataDir,
			LogFile: filepath.Join(s.opts.DataDir, LogFile), Running: s.running()}}
	}
	out := make([]Shard, 0, len(s.sh.shards))
	for _, sp := range s.sh.shards {
		out = append(out, Shard{Name: sp.name, URL: s.hostURL(sp.ports.Secure), KubeconfigPath: sp.kubeconfig,
			DataDir: sp.dir, LogFile: sp.proc.logFile, Running: sp.proc.running()})
	}
	return out
}
