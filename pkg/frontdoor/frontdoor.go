// Package frontdoor is msp's front door: one per provider, the only way servicelets reach
// kcp. It is an HTTPS reverse proxy that answers the paths kcp answers, authenticates
// each servicelet by a token of its ServiceAccount (issued for the front door's audience,
// so kcp itself refuses it), decides per request what the servicelet's runtime may do, and
// forwards what it allows to kcp with the front door's own kcp credential.
//
// kcp (v0.28.1, as e2e/probe found) cannot confine what an identity reads through an
// APIExport virtual workspace, nor its writes of claimed Secrets; the front door does, in the manner of
// Kubernetes' Node authorizer: a servicelet lists and watches only with its own runtime's
// label selector, and reads and writes only the capabilities, connection Secrets and
// Events of its runtime. Deleting a servicelet's ServiceAccount revokes it at once, open
// watches included.
//
// The decision is a pure function (decide.go) over the parsed request, the caller's
// identity and a small lookup of the objects it depends on; the rest wires it to HTTP,
// kcp's TokenReview and informers.
package frontdoor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	mspidentity "github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// The servicelets' credentials are defined by pkg/identity, which issues them.
const (
	DefaultAudience     = mspidentity.DefaultAudience
	ServiceletNamespace = mspidentity.ServiceletNamespace
)

// serviceAccountPrefix starts the name of every servicelet's ServiceAccount.
var serviceAccountPrefix = mspidentity.ServiceAccountName("")

// ServiceAccountName is the ServiceAccount, in namespace ServiceletNamespace of the
// provider workspace, whose tokens identify the servicelet of runtime.
func ServiceAccountName(runtime string) string { return mspidentity.ServiceAccountName(runtime) }

// Defaults of Options.
const (
	defaultMaxTokenExpiration = time.Hour
	// minTokenExpiration is kcp's least token lifetime.
	minTokenExpiration = 10 * time.Minute
)

// Options configure a front door. Zero values take the documented defaults.
type Options struct {
	// Config is the front door's own kcp identity (a client certificate). Its Host may
	// carry a /clusters/... path; the front door addresses kcp's base URL and the
	// provider workspace itself. Required.
	Config *rest.Config
	// Workspace is the provider workspace's path, e.g. root:providers:postgres. Required.
	Workspace string
	// Export is the provider's APIExport; it is also the name of its
	// APIExportEndpointSlice. Required.
	Export string
	// PublicURL is the URL servicelets dial (scheme and host, no path), written into the
	// endpoint slice they read, e.g. https://127.0.0.1:7443. Required.
	PublicURL string
	// Audience is the audience servicelet tokens must be issued for. Defaults to
	// DefaultAudience.
	Audience string
	// MaxTokenExpiration caps the lifetime of the tokens servicelets request for
	// themselves. Defaults to 1h; kcp's minimum is 10m.
	MaxTokenExpiration time.Duration
	// Admission, when set, is served at /admission/ without authentication: kcp calls it
	// as a validating webhook.
	Admission http.Handler
	// Log is the logger. Defaults to discarding.
	Log logr.Logger
}

// FrontDoor is one provider's front door. It is an http.Handler; Run serves it.
type FrontDoor struct {
	opts     Options
	log      logr.Logger
	base     *rest.Config // kcp's base URL, the front door's identity
	provider *rest.Config // the provider workspace
	public   *url.URL
	kcpHost  string
	proxy    *httputil.ReverseProxy
	inflight *inflight
	// state is nil until the export's kinds and the provider's cluster are known.
	state atomic.Pointer[state]
}

// New checks opts and builds a front door; it does not talk to kcp yet (Run does).
func New(opts Options) (*FrontDoor, error) {
	if opts.Config == nil || opts.Workspace == "" || opts.Export == "" || opts.PublicURL == "" {
		return nil, errors.New("frontdoor: Config, Workspace, Export and PublicURL are required")
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.MaxTokenExpiration == 0 {
		opts.MaxTokenExpiration = defaultMaxTokenExpiration
	}
	if opts.MaxTokenExpiration < minTokenExpiration {
		return nil, fmt.Errorf("frontdoor: MaxTokenExpiration %s is below kcp's minimum token lifetime of %s: raise it", opts.MaxTokenExpiration, minTokenExpiration)
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	public, err := parsePublicURL(opts.PublicURL)
	if err != nil {
		return nil, err
	}
	base := kcpconfig.Base(opts.Config)
	kcpURL, err := url.Parse(base.Host)
	if err != nil || kcpURL.Scheme == "" || kcpURL.Host == "" {
		return nil, fmt.Errorf("frontdoor: the kubeconfig's server %q is not a URL like https://kcp.example:6443", base.Host)
	}
	f := &FrontDoor{
		opts:     opts,
		log:      opts.Log,
		base:     base,
		provider: kcpconfig.ForWorkspace(opts.Config, opts.Workspace),
		public:   public,
		kcpHost:  kcpURL.Host,
		inflight: newInflight(),
	}
	if f.proxy, err = f.newProxy(kcpURL); err != nil {
		return nil, err
	}
	return f, nil
}

// parsePublicURL accepts an http(s) URL with a host and no path: the front door answers
// kcp's own paths.
func parsePublicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("frontdoor: PublicURL %q must be a URL like https://frontdoor.example:7443", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("frontdoor: PublicURL %q must not have a path: the front door answers kcp's own paths, so leave out %q", raw, u.Path)
	}
	u.Path = ""
	return u, nil
}

// Run serves HTTPS on l with the certificate and key files (read again when they change)
// until ctx ends. Meanwhile it learns the export's kinds, fills its caches and watches
// the servicelets' ServiceAccounts; until then API requests get 503, and /healthz
// answers ok only once the caches are synced.
func (f *FrontDoor) Run(ctx context.Context, l net.Listener, certFile, keyFile string) error {
	certs, err := newCertificateFiles(certFile, keyFile)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get},
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go f.start(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	f.log.Info("front door serving", "address", l.Addr().String(), "publicURL", f.public.String(), "workspace", f.opts.Workspace, "export", f.opts.Export)
	select {
	case err := <-errc:
		return fmt.Errorf("the front door stopped serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close() // open watches do not end by themselves
	}
	return nil
}

// start learns what the front door needs from kcp, retrying while kcp is unreachable,
// and starts the caches. The front door answers API requests from then on.
func (f *FrontDoor) start(ctx context.Context) {
	backoff := time.Second
	for {
		st, err := f.prepare(ctx)
		if err == nil {
			f.state.Store(st)
			f.log.Info("front door ready to forward", "cluster", st.policy.cluster, "kinds", st.policy.kindNames())
			return
		}
		f.log.Info("waiting for the provider's APIExport", "export", f.opts.Export, "err", err.Error(), "retryIn", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// state is what the front door knows once started.
type state struct {
	policy *policy
	routes *routes
	authn  *authenticator
}

// view is the front door's cached view of kcp: the objects decisions depend on and the
// servicelets' ServiceAccounts.
type view interface {
	objects
	// serviceAccountUID returns the UID of runtime's servicelet's ServiceAccount;
	// known is false while the view cannot tell, exists false when there is none.
	serviceAccountUID(runtime string) (uid string, exists, known bool)
	// synced says whether the view has listed everything once.
	synced() bool
}

// prepare discovers the export and starts the caches.
func (f *FrontDoor) prepare(ctx context.Context) (*state, error) {
	kinds, cluster, err := discoverExport(ctx, f.provider, f.opts.Export)
	if err != nil {
		return nil, err
	}
	p := &policy{
		workspace:   f.opts.Workspace,
		cluster:     cluster,
		export:      f.opts.Export,
		audience:    f.opts.Audience,
		maxTokenTTL: f.opts.MaxTokenExpiration,
		kinds:       kinds,
	}
	rev, err := newKCPReviewer(f.provider)
	if err != nil {
		return nil, err
	}
	accounts, err := startAccounts(ctx, f.provider, f.revoke)
	if err != nil {
		return nil, err
	}
	kcpURL, _ := url.Parse(f.base.Host)
	rs := &routes{ctx: ctx, accounts: informerAccounts{accounts}, kcp: kcpURL, routes: map[string]*route{},
		start: func(ctx context.Context, host string) (view, error) {
			return startCaches(ctx, f.base, host, p.virtualWorkspacePath(), kinds, accounts)
		}}
	dyn, err := dynamic.NewForConfig(f.provider)
	if err != nil {
		return nil, err
	}
	endpoints, err := sliceEndpoints(ctx, dyn, f.opts.Export)
	if err != nil {
		return nil, err
	}
	if err := rs.follow(endpoints); err != nil {
		return nil, err
	}
	return &state{policy: p, routes: rs, authn: newAuthenticator(rev, f.opts.Audience, cluster)}, nil
}

// route returns the endpoint a /shards/<token> path names, reading the endpoint slice
// again when the token is new to this front door (it started after the servicelet
// read the slice, or kcp has a new shard).
func (f *FrontDoor) route(ctx context.Context, st *state, token string) (*route, error) {
	if rt, ok := st.routes.get(token); ok {
		return rt, nil
	}
	dyn, err := dynamic.NewForConfig(f.provider)
	if err != nil {
		return nil, err
	}
	endpoints, err := sliceEndpoints(ctx, dyn, f.opts.Export)
	if err != nil {
		return nil, err
	}
	if err := st.routes.follow(endpoints); err != nil {
		return nil, err
	}
	if rt, ok := st.routes.get(token); ok {
		return rt, nil
	}
	return nil, fmt.Errorf("the export's endpoint slice lists no shard %s any more: read the endpoint slice %s again", token, f.opts.Export)
}

// revoke ends everything the servicelet of runtime has in flight and forgets its
// reviewed tokens: its ServiceAccount was deleted or replaced.
func (f *FrontDoor) revoke(runtime string) {
	if st := f.state.Load(); st != nil {
		st.authn.forget(runtime)
	}
	if n := f.inflight.revoke(runtime); n > 0 {
		f.log.Info("revoked the servicelet: its requests were cut", "runtime", runtime, "requests", n)
	} else {
		f.log.Info("revoked the servicelet", "runtime", runtime)
	}
}
