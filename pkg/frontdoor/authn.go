package frontdoor

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// How long a token review is believed. A positive answer is kept a minute: a revoked
// runtime's tokens are forgotten at once (forget), and an expired token is refused by
// kcp on the next review. A refusal is cheap to ask again. When kcp cannot answer, a
// positive answer that expired less than staleReviewGrace ago still stands, so that a
// busy kcp does not cut every servicelet off at once.
const (
	positiveReviewTTL = time.Minute
	negativeReviewTTL = time.Second
	staleReviewGrace  = time.Minute
	// reviewCacheSweep is the cache size above which expired entries are dropped.
	reviewCacheSweep = 1024
	reviewTimeout    = 10 * time.Second
	// reviewQPS and reviewBurst bound the front door's TokenReviews. client-go's
	// defaults (5/s, 10) starved a hundred servicelets in the benchmark; kcp's own
	// priority and fairness protects it.
	reviewQPS, reviewBurst = 50, 100
)

// extraClusterName is the user extra in which kcp names a ServiceAccount's home
// logical cluster (kcp v0.30 and later); extraClusterNameV028 is where kcp v0.28 put it.
const (
	extraClusterName     = "authentication.kcp.io/cluster-name"
	extraClusterNameV028 = "authentication.kubernetes.io/cluster-name"
)

// homeCluster is the one home cluster the extras name, or nil when they name none or
// several (the two keys disagreeing counts as several).
func homeCluster(extra map[string]authenticationv1.ExtraValue) []string {
	got := append([]string(nil), extra[extraClusterName]...)
	for _, c := range extra[extraClusterNameV028] {
		if !slices.Contains(got, c) {
			got = append(got, c)
		}
	}
	return got
}

// identity is an authenticated servicelet.
type identity struct {
	// runtime is the servicelet's runtime, from its ServiceAccount's name.
	runtime string
	// uid is the ServiceAccount's UID.
	uid string
}

// authError is a failed authentication, with the HTTP status to answer.
type authError struct {
	code    int
	message string
}

func (e *authError) Error() string { return e.message }

func unauthorized(format string, args ...any) *authError {
	return &authError{code: http.StatusUnauthorized, message: "msp front door: " + fmt.Sprintf(format, args...)}
}

// reviewer asks kcp whether a token is valid for audiences.
type reviewer interface {
	review(ctx context.Context, token string, audiences []string) (authenticationv1.TokenReviewStatus, error)
}

// kcpReviewer reviews tokens with a TokenReview in the provider workspace.
type kcpReviewer struct {
	client kubernetes.Interface
}

func newKCPReviewer(provider *rest.Config) (*kcpReviewer, error) {
	cfg := rest.CopyConfig(provider)
	cfg.QPS, cfg.Burst = reviewQPS, reviewBurst
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &kcpReviewer{client: cs}, nil
}

func (r *kcpReviewer) review(ctx context.Context, token string, audiences []string) (authenticationv1.TokenReviewStatus, error) {
	tr, err := r.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.TokenReviewStatus{}, err
	}
	return tr.Status, nil
}

// authenticator turns bearer tokens into identities, with a short cache keyed by the
// token's hash.
type authenticator struct {
	reviewer reviewer
	audience string
	cluster  string // the provider workspace's logical cluster
	now      func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]reviewed
	// inflight makes concurrent requests with one uncached token share one review.
	inflight singleflight.Group
}

// reviewed is one cached answer: an identity or a refusal.
type reviewed struct {
	id      identity
	err     *authError
	expires time.Time
}

func newAuthenticator(r reviewer, audience, cluster string) *authenticator {
	return &authenticator{reviewer: r, audience: audience, cluster: cluster, now: time.Now, cache: map[[sha256.Size]byte]reviewed{}}
}

// authenticate returns the servicelet token belongs to. A refusal is an *authError with
// code 401; kcp failing to answer is one with code 503.
func (a *authenticator) authenticate(ctx context.Context, token string) (identity, error) {
	key := sha256.Sum256([]byte(token))
	a.mu.Lock()
	hit, ok := a.cache[key]
	a.mu.Unlock()
	if ok && a.now().Before(hit.expires) {
		if hit.err != nil {
			return identity{}, hit.err
		}
		return hit.id, nil
	}
	v, err, _ := a.inflight.Do(string(key[:]), func() (any, error) {
		// Not the caller's context: the review serves every caller waiting for it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reviewTimeout)
		defer cancel()
		review, err := a.reviewer.review(rctx, token, []string{a.audience})
		if err != nil {
			return nil, err
		}
		id, authErr := identityFromReview(review, a.audience, a.cluster)
		entry := reviewed{id: id, err: authErr, expires: a.now().Add(positiveReviewTTL)}
		if authErr != nil {
			entry.expires = a.now().Add(negativeReviewTTL)
		}
		a.store(key, entry)
		return entry, nil
	})
	if err != nil {
		if ok && hit.err == nil && a.now().Before(hit.expires.Add(staleReviewGrace)) {
			return hit.id, nil // kcp is busy; the answer of a minute ago stands a little longer
		}
		return identity{}, &authError{code: http.StatusServiceUnavailable,
			message: fmt.Sprintf("msp front door: cannot check the token with kcp (TokenReview failed: %v); retry later", err)}
	}
	entry := v.(reviewed)
	if entry.err != nil {
		return identity{}, entry.err
	}
	return entry.id, nil
}

func (a *authenticator) store(key [sha256.Size]byte, entry reviewed) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= reviewCacheSweep {
		now := a.now()
		for k, v := range a.cache {
			if !now.Before(v.expires) {
				delete(a.cache, k)
			}
		}
	}
	a.cache[key] = entry
}

// forget drops the cached reviews of runtime's tokens.
func (a *authenticator) forget(runtime string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range a.cache {
		if v.err == nil && v.id.runtime == runtime {
			delete(a.cache, k)
		}
	}
}

// identityFromReview accepts only a token of a servicelet's ServiceAccount in the
// provider workspace (cluster), issued for audience.
func identityFromReview(st authenticationv1.TokenReviewStatus, audience, cluster string) (identity, *authError) {
	if !st.Authenticated {
		why := st.Error
		if why == "" {
			why = "not authenticated"
		}
		return identity{}, unauthorized("the token was refused (%s): use a token of your servicelet's ServiceAccount issued for the audience %q", why, audience)
	}
	if !slices.Contains(st.Audiences, audience) {
		return identity{}, unauthorized("the token is not issued for the audience %q: request the servicelet's token with audiences [%s]", audience, audience)
	}
	prefix := "system:serviceaccount:" + ServiceletNamespace + ":" + serviceAccountPrefix
	runtime, ok := strings.CutPrefix(st.User.Username, prefix)
	if !ok || runtime == "" {
		return identity{}, unauthorized("%s is not a servicelet: only the ServiceAccounts %s<runtime> in namespace %s of the provider workspace may use the front door",
			st.User.Username, serviceAccountPrefix, ServiceletNamespace)
	}
	if got := homeCluster(st.User.Extra); len(got) != 1 || got[0] != cluster {
		return identity{}, unauthorized("%s belongs to another workspace (cluster %v): only the provider workspace's own ServiceAccounts (cluster %s) may use the front door",
			st.User.Username, got, cluster)
	}
	return identity{runtime: runtime, uid: st.User.UID}, nil
}
