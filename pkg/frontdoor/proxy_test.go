package frontdoor

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// fakeView is a view over fakeObjects with the servicelets' ServiceAccount UIDs.
type fakeView struct {
	*fakeObjects
	mu   sync.Mutex
	uids map[string]string
}

func (v *fakeView) serviceAccountUID(runtime string) (string, bool, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	uid, ok := v.uids[runtime]
	return uid, ok, true
}

func (v *fakeView) synced() bool { return true }

// received is what the fake kcp was sent.
type received struct {
	method, path string
	header       http.Header
	body         string
}

// fakeKCP records requests and answers a few paths like kcp.
type fakeKCP struct {
	mu           sync.Mutex
	got          []received
	watchStarted chan struct{}
	watchEnded   chan struct{}
}

func (k *fakeKCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	k.mu.Lock()
	k.got = append(k.got, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(body)})
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/apiexportendpointslices/"+testExport):
		_, _ = io.WriteString(w, `{"apiVersion":"apis.kcp.io/v1alpha1","kind":"APIExportEndpointSlice","metadata":{"name":"`+testExport+`"},`+
			`"status":{"endpoints":[{"url":"https://kcp.internal:6443`+vw+`"}]}}`)
	case strings.HasSuffix(r.URL.Path, "/secrets/none"):
		// Created by the tenant between the front door's check and the read.
		_, _ = io.WriteString(w, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"none","namespace":"default"},"data":{"password":"aHVudGVyMg=="}}`)
	case r.URL.Query().Get("watch") == "true":
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"type":"ADDED","object":{"kind":"PostgresDatabase"}}`+"\n")
		w.(http.Flusher).Flush()
		close(k.watchStarted)
		<-r.Context().Done()
		close(k.watchEnded)
	default:
		_, _ = w.Write(body)
	}
}

func (k *fakeKCP) requests() []received {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]received(nil), k.got...)
}

// newTestFrontDoor serves a front door, started as if its export were read, in front
// of a fake kcp; the servicelet of rt-a holds the token "good".
func newTestFrontDoor(t *testing.T) (*FrontDoor, *fakeKCP, *fakeView, *httptest.Server) {
	t.Helper()
	kcp := &fakeKCP{watchStarted: make(chan struct{}), watchEnded: make(chan struct{})}
	upstream := httptest.NewServer(kcp)
	t.Cleanup(upstream.Close)
	f, err := New(Options{
		Config:    &rest.Config{Host: upstream.URL + "/clusters/root", BearerToken: "front-door-own-token"},
		Workspace: testWorkspace, Export: testExport,
		PublicURL: "https://frontdoor.example:7443",
	})
	if err != nil {
		t.Fatal(err)
	}
	view := &fakeView{fakeObjects: world(), uids: map[string]string{"rt-a": "uid-a"}}
	rev := &fakeReviewer{tokens: map[string]authenticationv1.TokenReviewStatus{
		"good": review("system:serviceaccount:default:servicelet-rt-a", testCluster, DefaultAudience),
	}}
	kcpURL, _ := url.Parse(upstream.URL)
	rs := &routes{kcp: kcpURL, accounts: view, routes: map[string]*route{"": {base: kcpURL, view: view}}, listed: map[string]bool{"": true}}
	f.state.Store(&state{policy: testPolicy(), routes: rs, authn: newAuthenticator(rev, DefaultAudience, testCluster)})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, kcp, view, srv
}

func do(t *testing.T, srv *httptest.Server, method, path, token, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func readStatus(t *testing.T, body string) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure {
		t.Fatalf("not a Kubernetes Status: %s (%v)", body, err)
	}
	return st
}

func TestProxyForwardsWithItsOwnCredential(t *testing.T) {
	_, kcp, _, srv := newTestFrontDoor(t)
	resp, body := do(t, srv, "GET", "/clusters/"+testWorkspace+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+testExport, "good", "", map[string]string{
		"Impersonate-User": "msp-platform", "Impersonate-Group": "system:kcp:admin", "Impersonate-Uid": "1",
		"Impersonate-Extra-Scopes": "x", "X-Remote-User": "msp-platform", "Accept": "application/vnd.kubernetes.protobuf",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := kcp.requests()
	if len(got) != 1 {
		t.Fatalf("kcp got %d requests", len(got))
	}
	h := got[0].header
	if a := h.Get("Authorization"); a != "Bearer front-door-own-token" {
		t.Errorf("kcp saw Authorization %q, want the front door's own", a)
	}
	for k := range h {
		if strings.HasPrefix(k, "Impersonate-") || strings.HasPrefix(k, "X-Remote-") {
			t.Errorf("kcp saw the header %s", k)
		}
	}
	if a := h.Get("Accept"); a != "application/json" {
		t.Errorf("kcp saw Accept %q, want JSON", a)
	}
	if got[0].path != "/clusters/"+testWorkspace+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+testExport {
		t.Errorf("kcp saw the path %s", got[0].path)
	}
	want := `"url":"https://frontdoor.example:7443` + vw + `"`
	if !strings.Contains(body, want) {
		t.Errorf("the slice is not rewritten: %s", body)
	}
}

// kcp unreachable (restarting): nothing was sent, so the front door tells the
// servicelet's client to send it again (client-go honours Retry-After for writes too).
func TestProxySaysRetryWhenKCPIsUnreachable(t *testing.T) {
	f, _, _, srv := newTestFrontDoor(t)
	st := f.state.Load()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	downURL, _ := url.Parse(down.URL)
	st.routes.routes[""].base = downURL
	st.routes.kcp = downURL
	proxy, err := f.newProxy(downURL)
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = proxy
	resp, body := do(t, srv, "GET", "/clusters/"+testWorkspace+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+testExport, "good", "", nil)
	if st := readStatus(t, body); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(st.Message, "nothing was sent") {
		t.Errorf("kcp unreachable: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestProxyRefusals(t *testing.T) {
	_, kcp, view, srv := newTestFrontDoor(t)
	secrets := vw + "/clusters/*/api/v1/secrets"

	resp, body := do(t, srv, "GET", secrets, "", "", nil)
	if st := readStatus(t, body); resp.StatusCode != 401 || st.Reason != metav1.StatusReasonUnauthorized || !strings.Contains(st.Message, "no bearer token") {
		t.Errorf("no token: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "GET", secrets, "forged", "", nil)
	if st := readStatus(t, body); resp.StatusCode != 401 || !strings.Contains(st.Message, "invalid bearer token") {
		t.Errorf("bad token: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "GET", secrets, "good", "", nil)
	st := readStatus(t, body)
	if resp.StatusCode != 403 || st.Reason != metav1.StatusReasonForbidden || st.Code != 403 ||
		!strings.HasPrefix(st.Message, "msp front door: the servicelet of runtime rt-a may not list secrets without a label selector") {
		t.Errorf("no selector: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "GET", vw+"/clusters/"+tenant+"/api/v1/namespaces/default/secrets/none", "good", "", nil)
	if st := readStatus(t, body); resp.StatusCode != 403 || !strings.Contains(st.Message, "not labelled") || strings.Contains(body, "aHVudGVyMg") {
		t.Errorf("an unlabelled Secret in kcp's answer: %d %s", resp.StatusCode, body)
	}
	if n := len(kcp.requests()); n != 1 {
		t.Errorf("kcp got %d requests, want only the checked Secret read", n)
	}

	view.mu.Lock()
	view.uids["rt-a"] = "uid-of-a-recreated-account"
	view.mu.Unlock()
	resp, body = do(t, srv, "GET", secrets+"?labelSelector=platform.msp.dev/runtime%3Drt-a", "good", "", nil)
	if st := readStatus(t, body); resp.StatusCode != 401 || !strings.Contains(st.Message, "deleted or replaced") {
		t.Errorf("replaced ServiceAccount: %d %s", resp.StatusCode, body)
	}
}

func TestProxyRewritesTokenRequests(t *testing.T) {
	_, kcp, _, srv := newTestFrontDoor(t)
	resp, body := do(t, srv, "POST", "/clusters/"+testWorkspace+"/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a/token", "good",
		`{"spec":{"audiences":["https://kcp.default.svc"],"expirationSeconds":99999}}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := kcp.requests()
	want := `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"audiences":["msp-frontdoor"],"expirationSeconds":3600}}`
	if len(got) != 1 || got[0].body != want {
		t.Fatalf("kcp got %+v, want the body %s", got, want)
	}
}

func TestRevocationCutsWatches(t *testing.T) {
	f, kcp, _, srv := newTestFrontDoor(t)
	req, _ := http.NewRequest("GET", srv.URL+vw+"/clusters/*"+pgdbs+"/postgresdatabases?watch=true&labelSelector=platform.msp.dev/runtime%3Drt-a", nil)
	req.Header.Set("Authorization", "Bearer good")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	if line, err := lines.ReadString('\n'); err != nil || !strings.Contains(line, "ADDED") {
		t.Fatalf("first event: %q, %v", line, err)
	}
	<-kcp.watchStarted
	if n := f.inflight.count("rt-a"); n != 1 {
		t.Fatalf("%d requests of rt-a in flight, want 1", n)
	}

	f.revoke("rt-a") // what the ServiceAccount informer does when servicelet-rt-a goes

	ended := make(chan error, 1)
	go func() {
		_, err := lines.ReadString('\n')
		ended <- err
	}()
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the watch delivered more after the revocation")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch was not cut")
	}
	select {
	case <-kcp.watchEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch to kcp was not cut")
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.inflight.count("rt-a") != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.inflight.count("rt-a"); n != 0 {
		t.Errorf("%d requests of rt-a still in flight", n)
	}
}

// A sharded kcp: /shards/<token>/... goes to that shard's own URL with the prefix cut,
// decided with that shard's caches; an unknown token is refused with how to recover.
func TestProxyRoutesShards(t *testing.T) {
	f, kcp, fake, srv := newTestFrontDoor(t)
	shard := &fakeKCP{watchStarted: make(chan struct{}), watchEnded: make(chan struct{})}
	shardSrv := httptest.NewServer(shard)
	t.Cleanup(shardSrv.Close)
	shardURL, _ := url.Parse(shardSrv.URL)
	st := f.state.Load()
	st.routes.start = func(context.Context, string) (view, error) { return fake, nil }
	token, err := st.routes.ensure(shardURL)
	if err != nil {
		t.Fatal(err)
	}
	path := vw + "/clusters/*/api/v1/secrets?labelSelector=platform.msp.dev/runtime%3Drt-a"
	resp, body := do(t, srv, "GET", shardPrefix+token+path, "good", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if n := len(kcp.requests()); n != 0 {
		t.Errorf("kcp's own URL got %d requests, want none", n)
	}
	got := shard.requests()
	if len(got) != 1 || got[0].path != vw+"/clusters/*/api/v1/secrets" {
		t.Fatalf("the shard got %+v, want the list of secrets without the /shards prefix", got)
	}
	resp, body = do(t, srv, "GET", shardPrefix+"000000000000"+path, "good", "", nil)
	if st := readStatus(t, body); resp.StatusCode != http.StatusNotFound || !strings.Contains(st.Message, "read the endpoint slice") {
		t.Errorf("unknown shard: %d %s", resp.StatusCode, body)
	}
}
