package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
)

func review(user, cluster string, audiences ...string) authenticationv1.TokenReviewStatus {
	return authenticationv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     audiences,
		User: authenticationv1.UserInfo{
			Username: user, UID: "uid-a",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"},
			Extra: map[string]authenticationv1.ExtraValue{
				"authentication.kcp.io/cluster-name":         {cluster},
				"authentication.kubernetes.io/credential-id": {"JTI=1"},
			},
		},
	}
}

func TestIdentityFromReview(t *testing.T) {
	sa := "system:serviceaccount:default:servicelet-rt-a"
	tests := []struct {
		name    string
		status  authenticationv1.TokenReviewStatus
		wantErr string
	}{
		{name: "a servicelet of the provider workspace", status: review(sa, testCluster, DefaultAudience)},
		{name: "not authenticated", status: authenticationv1.TokenReviewStatus{Error: "token has expired"}, wantErr: "token has expired"},
		{name: "a foreign workspace's ServiceAccount of the same name", status: review(sa, "othercl", DefaultAudience), wantErr: "belongs to another workspace"},
		{name: "no cluster-name", status: func() authenticationv1.TokenReviewStatus {
			s := review(sa, testCluster, DefaultAudience)
			delete(s.User.Extra, extraClusterName)
			return s
		}(), wantErr: "another workspace"},
		{name: "kcp v0.28's key", status: func() authenticationv1.TokenReviewStatus {
			s := review(sa, testCluster, DefaultAudience)
			delete(s.User.Extra, extraClusterName)
			s.User.Extra[extraClusterNameV028] = authenticationv1.ExtraValue{testCluster}
			return s
		}()},
		{name: "both keys, disagreeing", status: func() authenticationv1.TokenReviewStatus {
			s := review(sa, testCluster, DefaultAudience)
			s.User.Extra[extraClusterNameV028] = authenticationv1.ExtraValue{"othercl"}
			return s
		}(), wantErr: "another workspace"},
		{name: "two cluster-names", status: func() authenticationv1.TokenReviewStatus {
			s := review(sa, testCluster, DefaultAudience)
			s.User.Extra[extraClusterName] = authenticationv1.ExtraValue{testCluster, "othercl"}
			return s
		}(), wantErr: "another workspace"},
		{name: "another ServiceAccount", status: review("system:serviceaccount:default:front-door", testCluster, DefaultAudience), wantErr: "is not a servicelet"},
		{name: "a servicelet account in another namespace", status: review("system:serviceaccount:kube-system:servicelet-rt-a", testCluster, DefaultAudience), wantErr: "is not a servicelet"},
		{name: "no runtime", status: review("system:serviceaccount:default:servicelet-", testCluster, DefaultAudience), wantErr: "is not a servicelet"},
		{name: "a user", status: review("msp-platform", testCluster, DefaultAudience), wantErr: "is not a servicelet"},
		{name: "another audience", status: review(sa, testCluster, "https://kcp.default.svc"), wantErr: "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := identityFromReview(tt.status, DefaultAudience, testCluster)
			if tt.wantErr == "" {
				if err != nil || id.runtime != "rt-a" || id.uid != "uid-a" {
					t.Fatalf("got %+v, %v", id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.message, tt.wantErr) || err.code != http.StatusUnauthorized {
				t.Fatalf("err = %v, want 401 with %q", err, tt.wantErr)
			}
		})
	}
}

// fakeReviewer answers from a map of tokens and counts the reviews.
type fakeReviewer struct {
	mu      sync.Mutex
	tokens  map[string]authenticationv1.TokenReviewStatus
	calls   int
	down    bool
	lastAud []string
}

func (f *fakeReviewer) review(_ context.Context, token string, audiences []string) (authenticationv1.TokenReviewStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.lastAud = audiences
	if f.down {
		return authenticationv1.TokenReviewStatus{}, errors.New("connection refused")
	}
	if st, ok := f.tokens[token]; ok {
		return st, nil
	}
	return authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}, nil
}

func (f *fakeReviewer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestAuthenticatorCache(t *testing.T) {
	rev := &fakeReviewer{tokens: map[string]authenticationv1.TokenReviewStatus{
		"good": review("system:serviceaccount:default:servicelet-rt-a", testCluster, DefaultAudience),
	}}
	a := newAuthenticator(rev, DefaultAudience, testCluster)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	ctx := context.Background()

	if id, err := a.authenticate(ctx, "good"); err != nil || id.runtime != "rt-a" {
		t.Fatalf("got %+v, %v", id, err)
	}
	if len(rev.lastAud) != 1 || rev.lastAud[0] != DefaultAudience {
		t.Errorf("reviewed for audiences %v, want [%s]", rev.lastAud, DefaultAudience)
	}
	_, _ = a.authenticate(ctx, "good")
	if rev.count() != 1 {
		t.Errorf("a positive review is asked again within its TTL: %d reviews", rev.count())
	}
	now = now.Add(positiveReviewTTL + time.Millisecond)
	_, _ = a.authenticate(ctx, "good")
	if rev.count() != 2 {
		t.Errorf("a positive review is believed after its TTL: %d reviews", rev.count())
	}

	if _, err := a.authenticate(ctx, "bad"); err == nil {
		t.Fatal("a bad token passed")
	}
	_, _ = a.authenticate(ctx, "bad")
	if rev.count() != 3 {
		t.Errorf("a refusal is not cached: %d reviews", rev.count())
	}
	now = now.Add(negativeReviewTTL + time.Millisecond)
	_, _ = a.authenticate(ctx, "bad")
	if rev.count() != 4 {
		t.Errorf("a refusal is believed after its TTL: %d reviews", rev.count())
	}

	a.forget("rt-a")
	_, _ = a.authenticate(ctx, "good")
	if rev.count() != 5 {
		t.Errorf("forget kept the runtime's review: %d reviews", rev.count())
	}

	rev.down = true
	a.forget("rt-a")
	_, err := a.authenticate(ctx, "good")
	var ae *authError
	if !errors.As(err, &ae) || ae.code != http.StatusServiceUnavailable {
		t.Errorf("kcp down: err = %v, want 503", err)
	}
}

// A busy kcp does not cut servicelets off: an expired positive answer stands for
// staleReviewGrace while kcp cannot answer, and not longer.
func TestAuthenticatorStaleWhileKCPIsDown(t *testing.T) {
	rev := &fakeReviewer{tokens: map[string]authenticationv1.TokenReviewStatus{
		"good": review("system:serviceaccount:default:servicelet-rt-a", testCluster, DefaultAudience),
	}}
	a := newAuthenticator(rev, DefaultAudience, testCluster)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := a.authenticate(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	rev.mu.Lock()
	rev.down = true
	rev.mu.Unlock()
	now = now.Add(positiveReviewTTL + staleReviewGrace/2)
	if id, err := a.authenticate(ctx, "good"); err != nil || id.runtime != "rt-a" {
		t.Errorf("within the grace, kcp down: got %+v, %v; want the earlier answer", id, err)
	}
	if _, err := a.authenticate(ctx, "bad"); err == nil {
		t.Error("a token never reviewed passed while kcp is down")
	}
	now = now.Add(staleReviewGrace)
	var ae *authError
	if _, err := a.authenticate(ctx, "good"); !errors.As(err, &ae) || ae.code != http.StatusServiceUnavailable {
		t.Errorf("past the grace, kcp down: err = %v, want 503", err)
	}
}

// slowReviewer answers after release is closed, counting the reviews it was asked.
type slowReviewer struct {
	fakeReviewer
	release chan struct{}
}

func (s *slowReviewer) review(ctx context.Context, token string, audiences []string) (authenticationv1.TokenReviewStatus, error) {
	<-s.release
	return s.fakeReviewer.review(ctx, token, audiences)
}

// Many requests with one uncached token (a servicelet's burst after its review expired)
// cost kcp one TokenReview, and all get its answer.
func TestAuthenticatorSharesOneReview(t *testing.T) {
	rev := &slowReviewer{release: make(chan struct{}), fakeReviewer: fakeReviewer{tokens: map[string]authenticationv1.TokenReviewStatus{
		"good": review("system:serviceaccount:default:servicelet-rt-a", testCluster, DefaultAudience),
	}}}
	a := newAuthenticator(rev, DefaultAudience, testCluster)
	const n = 20
	errs := make(chan error, n)
	var started sync.WaitGroup
	for range n {
		started.Add(1)
		go func() {
			started.Done()
			id, err := a.authenticate(context.Background(), "good")
			if err == nil && id.runtime != "rt-a" {
				err = fmt.Errorf("runtime %q", id.runtime)
			}
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let them all wait on the one review
	close(rev.release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := rev.count(); got != 1 {
		t.Errorf("%d concurrent requests cost %d reviews, want 1", n, got)
	}
}
