package frontdoor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	toolscache "k8s.io/client-go/tools/cache"

	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"
)

// shardPrefix starts the front door's paths to one kcp shard's virtual workspace:
// /shards/<token>/services/apiexport/... A sharded kcp lists one endpoint per shard in
// the export's endpoint slice, all with the same path: the front door points each at
// itself under a token of its own (see rewriteEndpointSlice), forwards a request to
// the shard its token names, and decides it with that shard's caches. An endpoint on
// kcp's own URL (one shard, the embedded default) keeps its plain path.
const shardPrefix = "/shards/"

// shardToken names an endpoint's base URL (scheme and host) in the front door's paths:
// stable across restarts of the front door, so servicelets keep their URLs.
func shardToken(base string) string {
	sum := sha256.Sum256([]byte(base))
	return hex.EncodeToString(sum[:])[:12]
}

// cutShard splits /shards/<token>/rest into the token and /rest.
func cutShard(path string) (token, rest string, ok bool) {
	after, found := strings.CutPrefix(path, shardPrefix)
	if !found {
		return "", "", false
	}
	token, rest, found = strings.Cut(after, "/")
	if !found || token == "" {
		return "", "", false
	}
	return token, "/" + rest, true
}

// route is one virtual-workspace endpoint: where to forward, and the caches to decide by.
type route struct {
	base *url.URL
	view view
}

// accountsReader reads the servicelets' ServiceAccounts.
type accountsReader interface {
	serviceAccountUID(runtime string) (uid string, exists, known bool)
	synced() bool
}

// informerAccounts is the ServiceAccounts' informer as an accountsReader.
type informerAccounts struct {
	inf toolscache.SharedIndexInformer
}

func (a informerAccounts) serviceAccountUID(runtime string) (string, bool, bool) {
	return accountUID(a.inf, runtime)
}

func (a informerAccounts) synced() bool { return a.inf.HasSynced() }

// routes are the endpoints of the export's endpoint slice the front door knows, by token;
// "" is kcp's own URL.
type routes struct {
	ctx      context.Context
	start    func(ctx context.Context, host string) (view, error)
	accounts accountsReader
	kcp      *url.URL

	mu     sync.Mutex
	routes map[string]*route
	// listed are the tokens of the endpoints the slice listed last; only their caches
	// must be synced for the front door to be ready.
	listed map[string]bool
	// hosts are the virtual-workspace hosts any endpoint slice named: more than one is a
	// sharded kcp, from when on every endpoint gets a token of its own.
	hosts map[string]bool
}

// observe records endpoints' hosts and tells whether kcp is sharded (more than one
// host seen).
func (r *routes) observe(endpoints []*url.URL) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hosts == nil {
		r.hosts = map[string]bool{}
	}
	for _, u := range endpoints {
		r.hosts[u.Host] = true
	}
	return len(r.hosts) > 1
}

// tokens returns the token of each endpoint's host: "" (kcp's own URL) unless kcp is
// sharded, in which case each shard's route is started.
func (r *routes) tokens(endpoints []*url.URL) (map[string]string, error) {
	out := map[string]string{}
	sharded := r.observe(endpoints)
	for _, u := range endpoints {
		if !sharded {
			out[u.Host] = ""
			continue
		}
		token, err := r.ensure(u)
		if err != nil {
			return nil, err
		}
		out[u.Host] = token
	}
	return out, nil
}

// ensure returns the token of a shard's endpoint (its base URL), starting its caches the
// first time.
func (r *routes) ensure(base *url.URL) (string, error) {
	return r.add(shardToken(base.Scheme+"://"+base.Host), &url.URL{Scheme: base.Scheme, Host: base.Host})
}

// add starts the route of token to base unless it exists.
func (r *routes) add(token string, base *url.URL) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.routes[token]; ok {
		return token, nil
	}
	c, err := r.start(r.ctx, base.Scheme+"://"+base.Host)
	if err != nil {
		return "", err
	}
	r.routes[token] = &route{base: base, view: c}
	return token, nil
}

// get returns the route of a token.
func (r *routes) get(token string) (*route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.routes[token]
	return rt, ok
}

// follow makes the routes those of the endpoints (URLs) the export's endpoint slice
// lists: one per shard when kcp is sharded, else kcp's own URL (one shard, however the
// slice names its host).
func (r *routes) follow(endpoints []*url.URL) error {
	tokens, err := r.tokens(endpoints)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, token := range tokens {
		listed[token] = true
	}
	if len(listed) == 0 || listed[""] {
		if _, err := r.add("", r.kcp); err != nil {
			return err
		}
		listed = map[string]bool{"": true}
	}
	r.mu.Lock()
	r.listed = listed
	r.mu.Unlock()
	return nil
}

// synced says whether the caches of every listed endpoint and the ServiceAccounts have
// listed once.
func (r *routes) synced() bool {
	if !r.accounts.synced() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for token := range r.listed {
		if rt := r.routes[token]; rt == nil || !rt.view.synced() {
			return false
		}
	}
	return true
}

// sliceEndpoints reads the export's endpoint slice's virtual-workspace URLs.
func sliceEndpoints(ctx context.Context, dyn dynamic.Interface, export string) ([]*url.URL, error) {
	slice, err := dyn.Resource(schema.GroupVersionResource{Group: groupKCPAPIs, Version: "v1alpha1", Resource: "apiexportendpointslices"}).Get(ctx, export, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to read the endpoint slice %s: %w", export, err)
	}
	raw, err := mcprovider.DefaultExtractURLsFromEndpointSlice(slice)
	if err != nil {
		return nil, err
	}
	var out []*url.URL
	for _, s := range raw {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || !strings.HasPrefix(u.Path, virtualWorkspacePrefix) {
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

// noObjects is the view of a request that reaches no virtual workspace: it has no
// capabilities or Secrets to decide by, only the servicelets' ServiceAccounts.
type noObjects struct {
	accounts accountsReader
}

func (noObjects) capability(context.Context, kind, string, string, string, bool) (*unstructured.Unstructured, error) {
	return nil, nil
}

func (noObjects) secret(context.Context, string, string, string, bool) (*unstructured.Unstructured, error) {
	return nil, nil
}

func (n noObjects) serviceAccountUID(runtime string) (string, bool, bool) {
	return n.accounts.serviceAccountUID(runtime)
}

func (n noObjects) synced() bool { return n.accounts.synced() }

// shardTokens are the tokens of the endpoints of a slice the front door rewrites (see
// routes.tokens).
func (f *FrontDoor) shardTokens(endpoints []*url.URL) (map[string]string, error) {
	st := f.state.Load()
	if st == nil {
		return nil, errors.New("the front door is starting")
	}
	return st.routes.tokens(endpoints)
}
