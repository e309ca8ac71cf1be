// Package launcher starts a local kcp server on a data folder, waits until it serves,
// and stops it cleanly. `make run` (cmd/msp-local) and the e2e harness share it.
//
// A data folder can be started again: the launcher records the ports it chose in the
// folder and reuses them, so kubeconfigs handed out earlier stay valid.
//
// With Options.Shards > 1 the launcher starts a sharded kcp instead of one `kcp start`:
// a root shard, further shards (shard-1, shard-2, ...), each with its own embedded etcd,
// kcp's cache server, and kcp's front proxy, which clients talk to. The Server's URL and
// kubeconfigs then address the front proxy; Shards, StopShard and StartShard reach the
// shards themselves.
package launcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/ports"
)

const (
	// AdminKubeconfig is the file kcp writes into its data folder for the admin user.
	AdminKubeconfig = "admin.kubeconfig"
	// LogFile is where the launcher writes kcp's output, inside the data folder.
	LogFile = "kcp.log"
	// PlatformKubeconfig is a kubeconfig for msp's own components (coordinators,
	// servicelets): a static token of the user msp-platform, which, unlike the admin
	// token kcp rotates on every start, survives restarts of kcp.
	PlatformKubeconfig = "platform.kubeconfig"
	portsFile          = "msp-ports.json"
	tokensFile         = "msp-tokens.csv"
)

// Options configure a kcp server. Zero values take the documented defaults.
type Options struct {
	// Binary is the kcp executable. Defaults to "kcp" on PATH.
	Binary string
	// DataDir is kcp's root directory (certificates, embedded etcd, kubeconfigs).
	// It is created when missing. Required.
	DataDir string
	// BindAddress is the address kcp listens on. Defaults to 127.0.0.1.
	BindAddress string
	// SecurePort is kcp's HTTPS port (when sharded, the front proxy's). 0 picks a free
	// one on first start and reuses it on later starts of the same data folder.
	SecurePort int
	// Output receives kcp's log besides the data folder's kcp.log. Optional.
	Output io.Writer
	// StartTimeout bounds the wait for kcp to serve. Defaults to 3 minutes.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before it kills. Defaults to 30s.
	StopTimeout time.Duration
	// ExtraArgs are appended to `kcp start` (when sharded, of every shard).
	ExtraArgs []string
	// Users are static-token users of the embedded default that are not kcp admins (in
	// the group msp:users): what they may do is what the workspace tree's RBAC grants
	// them (the demo tenant's admin, say). Their tokens survive restarts; a user added
	// later gets a token on the next start. See UserKubeconfig.
	Users []string

	// Shards is the number of kcp shards. 0 and 1 start one `kcp start` as ever; more
	// start a root shard and shards shard-1 ... shard-(N-1), kcp's cache server and its
	// front proxy, all on BindAddress: URL, KubeconfigPath, RESTConfig,
	// PlatformKubeconfigPath and UserKubeconfig then address the front proxy (whose port
	// is SecurePort), which accepts msp's CA and static tokens, as does every shard. A
	// data folder keeps the number of shards it was first started with; it can grow, not
	// shrink, and a single-shard folder cannot become a sharded one.
	Shards int
	// ShardLabels are labels of the kcp Shard objects (in root), by shard name (root,
	// shard-1, ...): applied once the shard has registered, on every start. A Workspace
	// lands on a shard its spec.location.selector matches (kcp copies a shard's region
	// label to the workspaces on it). Labels the launcher applied earlier but that are
	// no longer listed for a shard are removed; a shard not named here keeps its labels.
	// Only for Shards > 1.
	ShardLabels map[string]map[string]string
	// FrontProxyBinary and CacheServerBinary are kcp's kcp-front-proxy and cache-server
	// executables, for Shards > 1. They default to the ones next to Binary, else to those
	// on PATH.
	FrontProxyBinary, CacheServerBinary string
}

// Server is a running kcp.
type Server struct {
	opts  Options
	ports portSet
	cmd   *exec.Cmd
	log   *os.File
	done  chan struct{}
	err   error
	ca    *identity.CA
	// sh is the state of a sharded kcp (Options.Shards > 1); nil for one shard.
	sh *sharded
}

type portSet struct {
	Secure     int `json:"securePort"`
	EtcdClient int `json:"etcdClientPort"`
	EtcdPeer   int `json:"etcdPeerPort"`
}

// Start starts kcp and returns once it serves the root workspace, or with an error that
// says why it did not (the tail of its log included).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("launcher: a data folder is required")
	}
	if opts.Binary == "" {
		opts.Binary = "kcp"
	}
	if opts.BindAddress == "" {
		opts.BindAddress = "127.0.0.1"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 30 * time.Second
	}
	bin, err := exec.LookPath(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("launcher: kcp binary %q not found (run 'make tools'): %w", opts.Binary, err)
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	opts.DataDir = dataDir
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("launcher: failed to create data folder: %w", err)
	}
	if opts.Shards > 1 {
		return startSharded(ctx, opts, bin)
	}
	if raw, err := os.ReadFile(filepath.Join(dataDir, shardsFile)); err == nil {
		var t topology
		_ = json.Unmarshal(raw, &t)
		return nil, fmt.Errorf("launcher: %s holds a kcp with %d shards: start it with %d shards, or use another data folder", dataDir, len(t.Shards), len(t.Shards))
	}
	p, err := choosePorts(opts)
	if err != nil {
		return nil, err
	}

	logFile, err := os.OpenFile(filepath.Join(dataDir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("launcher: failed to open kcp log: %w", err)
	}
	var out io.Writer = logFile
	if opts.Output != nil {
		out = io.MultiWriter(logFile, opts.Output)
	}

	token, err := platformToken(dataDir)
	if err != nil {
		return nil, err
	}
	if err := ensureUserTokens(dataDir, opts.Users); err != nil {
		return nil, err
	}
	ca, err := identity.LoadOrCreateCA(dataDir)
	if err != nil {
		return nil, fmt.Errorf("launcher: failed to set up msp's CA: %w", err)
	}
	args := []string{"start",
		"--token-auth-file=" + filepath.Join(dataDir, tokensFile),
		// Component identities are client certificates of msp's CA (pkg/identity).
		"--client-ca-file=" + ca.CertFile,
		"--root-directory=" + dataDir,
		"--bind-address=" + opts.BindAddress,
		"--secure-port=" + strconv.Itoa(p.Secure),
		"--external-hostname=" + opts.BindAddress,
		"--embedded-etcd-client-port=" + strconv.Itoa(p.EtcdClient),
		"--embedded-etcd-peer-port=" + strconv.Itoa(p.EtcdPeer),
	}
	args = append(args, opts.ExtraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dataDir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so Stop reaches every child; killed with us if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("launcher: failed to start kcp: %w", err)
	}
	s := &Server{opts: opts, ports: p, cmd: cmd, log: logFile, done: make(chan struct{}), ca: ca}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()

	if err := s.waitServing(ctx); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("launcher: kcp did not become ready: %w\n--- last lines of %s ---\n%s", err, logFile.Name(), tail(logFile.Name(), 30))
	}
	if err := s.writePlatformKubeconfig(token); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// choosePorts reuses the ports recorded in the data folder, or picks free ones.
func choosePorts(opts Options) (portSet, error) {
	file := filepath.Join(opts.DataDir, portsFile)
	var p portSet
	if raw, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, fmt.Errorf("launcher: %s is corrupt: %w", file, err)
		}
		for _, port := range []int{p.Secure, p.EtcdClient, p.EtcdPeer} {
			if !portFree(opts.BindAddress, port) {
				return p, fmt.Errorf("launcher: port %d recorded for %s is in use: is another kcp running on this data folder?", port, opts.DataDir)
			}
		}
		return p, nil
	}
	var err error
	if p.Secure = opts.SecurePort; p.Secure == 0 {
		if p.Secure, err = ports.Free(opts.BindAddress); err != nil {
			return p, err
		}
	}
	if p.EtcdClient, err = ports.Free(opts.BindAddress); err != nil {
		return p, err
	}
	if p.EtcdPeer, err = ports.Free(opts.BindAddress); err != nil {
		return p, err
	}
	raw, _ := json.Marshal(p)
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		return p, fmt.Errorf("launcher: failed to record ports: %w", err)
	}
	return p, nil
}

func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitServing waits for the admin kubeconfig and for the root workspace to answer.
func (s *Server) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("admin kubeconfig not written yet")
	for {
		select {
		case <-s.done:
			return fmt.Errorf("kcp exited: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), last)
		case <-tick.C:
		}
		cfg, err := s.RESTConfig()
		if err != nil {
			last = err
			continue
		}
		if last = probe(ctx, cfg); last == nil {
			return nil
		}
	}
}

// probe asks kcp's readyz, then lists workspaces in root: both must answer 200.
func probe(ctx context.Context, cfg *rest.Config) error {
	base := kcpconfig.Base(cfg)
	client, err := rest.HTTPClientFor(base)
	if err != nil {
		return err
	}
	client.Timeout = 5 * time.Second
	for _, path := range []string{"/readyz", "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.Host+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
		}
	}
	return nil
}

// platformToken returns the static token of msp's components, creating the token file
// on the first start of a data folder.
func platformToken(dataDir string) (string, error) {
	file := filepath.Join(dataDir, tokensFile)
	if raw, err := os.ReadFile(file); err == nil {
		token, _, _ := strings.Cut(string(raw), ",")
		if token != "" {
			return token, nil
		}
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	line := token + `,msp-platform,msp-platform,"system:kcp:admin"` + "\n"
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		return "", fmt.Errorf("launcher: failed to write %s: %w", file, err)
	}
	return token, nil
}

// tokenUsers reads the token file: each user's token.
func tokenUsers(dataDir string) (map[string]string, error) {
	file := filepath.Join(dataDir, tokensFile)
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("launcher: failed to read %s: %w", file, err)
	}
	tokens := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if fields := strings.Split(line, ","); len(fields) >= 2 {
			tokens[fields[1]] = fields[0]
		}
	}
	return tokens, nil
}

// ensureUserTokens adds a token line for every user the token file does not name yet.
func ensureUserTokens(dataDir string, users []string) error {
	have, err := tokenUsers(dataDir)
	if err != nil {
		return err
	}
	var add strings.Builder
	for _, u := range users {
		if _, ok := have[u]; ok || u == "" {
			continue
		}
		if strings.ContainsAny(u, ",\"\n") {
			return fmt.Errorf("launcher: user name %q may not contain commas, quotes or line breaks", u)
		}
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		token := hex.EncodeToString(b)
		add.WriteString(token + "," + u + "," + u + `,"msp:users"` + "\n")
		have[u] = token
	}
	if add.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dataDir, tokensFile), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(add.String())
	return err
}

// UserKubeconfig writes a kubeconfig for one of Options.Users whose current context is
// the workspace wsPath (e.g. root:tenants:acme).
func (s *Server) UserKubeconfig(user, wsPath, file string) error {
	tokens, err := tokenUsers(s.opts.DataDir)
	if err != nil {
		return err
	}
	token := tokens[user]
	if token == "" {
		return fmt.Errorf("launcher: no token for user %q (not among Options.Users)", user)
	}
	return s.writeTokenKubeconfig("workspace", user, token, wsPath, file)
}

// writePlatformKubeconfig writes the components' kubeconfig next to the admin one: the
// same server and CA, the static token.
func (s *Server) writePlatformKubeconfig(token string) error {
	return s.writeTokenKubeconfig("root", "msp-platform", token, "", s.PlatformKubeconfigPath())
}

// writeTokenKubeconfig writes a kubeconfig with the admin kubeconfig's server and CA and
// a user's token, its cluster and context called name; wsPath, when set, is the
// workspace the server URL addresses (else the admin's, the root workspace).
func (s *Server) writeTokenKubeconfig(name, user, token, wsPath, file string) error {
	cfg, err := clientcmd.LoadFromFile(s.KubeconfigPath())
	if err != nil {
		return fmt.Errorf("launcher: failed to read the admin kubeconfig: %w", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil {
		return errors.New("launcher: the admin kubeconfig has no current cluster")
	}
	out := clientcmdapi.NewConfig()
	cluster := cfg.Clusters[ctx.Cluster].DeepCopy()
	if wsPath != "" {
		cluster.Server = kcpconfig.BaseURL(cluster.Server) + "/clusters/" + wsPath
	}
	out.Clusters[name] = cluster
	out.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	out.CurrentContext = name
	return clientcmd.WriteToFile(*out, file)
}

// PlatformKubeconfigPath is the kubeconfig for msp's components (see PlatformKubeconfig).
func (s *Server) PlatformKubeconfigPath() string {
	return filepath.Join(s.opts.DataDir, PlatformKubeconfig)
}

// KubeconfigPath is the admin kubeconfig kcp wrote; its current context is the root workspace.
func (s *Server) KubeconfigPath() string { return filepath.Join(s.opts.DataDir, AdminKubeconfig) }

// DataDir is the server's data folder.
func (s *Server) DataDir() string { return s.opts.DataDir }

// URL is the server's base URL, without a workspace path: when sharded, the front proxy's.
func (s *Server) URL() string {
	return "https://" + net.JoinHostPort(s.opts.BindAddress, strconv.Itoa(s.ports.Secure))
}

// RESTConfig returns the admin config for the root workspace.
func (s *Server) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", s.KubeconfigPath())
}

// CA is msp's CA, whose client certificates kcp accepts as users: the bootstrap issues
// the components' identities with it.
func (s *Server) CA() *identity.CA { return s.ca }

// ServingCA is kcp's serving CA, from the admin kubeconfig.
func (s *Server) ServingCA() ([]byte, error) {
	cfg, err := s.RESTConfig()
	if err != nil {
		return nil, err
	}
	if len(cfg.CAData) > 0 {
		return cfg.CAData, nil
	}
	return os.ReadFile(cfg.CAFile)
}

// Pid is kcp's process id (when sharded, the root shard's).
func (s *Server) Pid() int {
	if s.sh != nil {
		return s.sh.shards[0].proc.pid()
	}
	return s.cmd.Process.Pid
}

// Done is closed when kcp has exited. When sharded: when any of its processes exited
// other than by StopShard, or after Stop.
func (s *Server) Done() <-chan struct{} { return s.done }

// Pids are the process ids of kcp's processes: the one kcp, or every shard, the front
// proxy and the cache server (those running).
func (s *Server) Pids() []int {
	if s.sh == nil {
		return []int{s.cmd.Process.Pid}
	}
	var out []int
	procs := []*process{s.sh.cache, s.sh.proxy}
	for _, sp := range s.sh.shards {
		procs = append(procs, sp.proc)
	}
	for _, p := range procs {
		if p != nil && p.running() {
			out = append(out, p.pid())
		}
	}
	return out
}

// Shards describes kcp's shards: root first. A single-shard kcp has one, root, at URL.
func (s *Server) Shards() []Shard { return s.shardsInfo() }

// LogFiles are the logs of kcp's processes (one, kcp.log in the data folder, unless
// sharded).
func (s *Server) LogFiles() []string {
	if s.sh == nil {
		return []string{filepath.Join(s.opts.DataDir, LogFile)}
	}
	var out []string
	for _, sp := range s.sh.shards {
		out = append(out, sp.proc.logFile)
	}
	return append(out, s.sh.cache.logFile, s.sh.proxy.logFile)
}

func (s *Server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to kcp, waits up to StopTimeout for it to exit, then kills its
// process group. It is safe to call more than once. When sharded, it stops every process
// the launcher started: the front proxy, the shards (root last) and the cache server.
func (s *Server) Stop() error {
	if s.sh != nil {
		s.stopSharded()
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	pgid := -s.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(s.opts.StopTimeout):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-s.done
	}
	// Whatever kcp left in its group (nothing, normally) goes too.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	s.log.Close()
	return nil
}

func tail(file string, n int) string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := 0
	for i := len(raw) - 1; i >= 0; i-- {
		if raw[i] == '\n' {
			lines++
			if lines > n {
				return string(raw[i+1:])
			}
		}
	}
	return string(raw)
}
