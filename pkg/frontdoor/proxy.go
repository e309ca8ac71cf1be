package frontdoor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// maxBodyBytes bounds the request bodies the front door reads; kcp's objects are at most
// about 1.5 MiB.
const maxBodyBytes = 3 << 20

// forwardedKey keys a forwarded request's caller and decision in its context.
type forwardedKey struct{}

// forwarded is what the response hooks need to know of a forwarded request.
type forwarded struct {
	id  identity
	dec decision
	// upstream is the shard the request goes to; nil: kcp's own URL.
	upstream *url.URL
}

// newProxy forwards to kcp with the front door's own credential, streaming watches.
func (f *FrontDoor) newProxy(kcp *url.URL) (*httputil.ReverseProxy, error) {
	transport, err := rest.TransportFor(f.base)
	if err != nil {
		return nil, fmt.Errorf("frontdoor: cannot use the kubeconfig's credential: %w", err)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			if fw, _ := pr.In.Context().Value(forwardedKey{}).(*forwarded); fw != nil && fw.upstream != nil {
				pr.SetURL(fw.upstream)
				return
			}
			pr.SetURL(kcp)
		},
		Transport:      transport,
		FlushInterval:  -1,
		ModifyResponse: f.modifyResponse,
		ErrorHandler:   f.proxyError,
		// Cut streams (a revocation, a servicelet going away) are routine.
		ErrorLog: log.New(logWriter{f.log.V(1)}, "", 0),
	}, nil
}

// logWriter writes the standard library's log lines to a logr logger.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ServeHTTP serves /healthz, /admission/ (when configured) and, for authenticated
// servicelets, kcp's API paths.
func (f *FrontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		f.healthz(w, false)
	case r.URL.Path == "/readyz":
		f.healthz(w, true)
	case f.opts.Admission != nil && (r.URL.Path == "/admission" || strings.HasPrefix(r.URL.Path, "/admission/")):
		f.opts.Admission.ServeHTTP(w, r)
	default:
		f.serveAPI(w, r)
	}
}

// healthz answers ok once the front door forwards (it has read the export); with synced,
// (/readyz) only once its caches have listed everything, which kcp allows only after a
// tenant bound the export (claimed resources are served from then on). Until then the
// front door decides with live reads.
func (f *FrontDoor) healthz(w http.ResponseWriter, synced bool) {
	st := f.state.Load()
	switch {
	case st == nil:
		http.Error(w, "waiting for the provider's APIExport", http.StatusServiceUnavailable)
	case synced && !st.routes.synced():
		http.Error(w, "the caches are not synced yet", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ok"))
	}
}

// serveAPI authenticates the servicelet, decides, and forwards what is allowed.
func (f *FrontDoor) serveAPI(w http.ResponseWriter, r *http.Request) {
	st := f.state.Load()
	if st == nil {
		writeStatus(w, http.StatusServiceUnavailable, "msp front door: starting, the provider's APIExport "+f.opts.Export+" is not read yet; retry later")
		return
	}
	id, err := f.authenticate(r.Context(), st, r)
	if err != nil {
		var ae *authError
		if !errors.As(err, &ae) {
			ae = &authError{code: http.StatusUnauthorized, message: err.Error()}
		}
		f.log.V(1).Info("refused an unauthenticated request", "method", r.Method, "path", r.URL.Path, "reason", ae.message)
		writeStatus(w, ae.code, ae.message)
		return
	}
	stripCredentials(r.Header)
	body, err := readBody(r)
	if err != nil {
		writeStatus(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("msp front door: %v", err))
		return
	}
	// A path under /shards/<token> goes to that shard and is decided with its caches.
	rt, ok := st.routes.get("")
	if token, rest, sharded := cutShard(r.URL.Path); sharded {
		if rt, err = f.route(r.Context(), st, token); err != nil {
			writeStatus(w, http.StatusNotFound, "msp front door: "+err.Error())
			return
		}
		r.URL.Path, r.URL.RawPath = rest, ""
		ok = true
	}
	req, err := parseRequest(r, body)
	var dec decision
	switch {
	case err != nil:
		dec = refuse(id.runtime, "send "+r.Method+" "+r.URL.Path, err.Error())
	case !ok:
		// kcp's own URL is no endpoint of the slice (a sharded kcp): only the provider
		// workspace is reached there, never a virtual workspace.
		dec = st.policy.decide(r.Context(), id, req, noObjects{accounts: st.routes.accounts})
	default:
		dec = st.policy.decide(r.Context(), id, req, rt.view)
	}
	log := f.log.WithValues("runtime", id.runtime, "method", r.Method, "path", r.URL.Path)
	if !dec.allowed() {
		if dec.code == http.StatusForbidden {
			log.Info("refused", "reason", dec.message)
		} else {
			log.V(1).Info("answered", "code", dec.code, "message", dec.message)
		}
		writeDecision(w, dec)
		return
	}
	log.V(2).Info("forwarding")
	ctx, done := f.inflight.track(r.Context(), id.runtime)
	defer done()
	fw := &forwarded{id: id, dec: dec}
	if rt != nil && rt.base.Host != f.kcpHost {
		fw.upstream = rt.base // a shard's own URL
	}
	ctx = context.WithValue(ctx, forwardedKey{}, fw)
	f.proxy.ServeHTTP(w, outgoing(r.WithContext(ctx), body, dec))
}

// authenticate checks the bearer token and that its ServiceAccount still exists as the
// one the token was issued for.
func (f *FrontDoor) authenticate(ctx context.Context, st *state, r *http.Request) (identity, error) {
	token, ok := bearerToken(r.Header)
	if !ok {
		return identity{}, unauthorized("no bearer token: a servicelet authenticates with a token of its ServiceAccount %s<runtime> in namespace %s of %s, issued for the audience %q",
			serviceAccountPrefix, ServiceletNamespace, f.opts.Workspace, f.opts.Audience)
	}
	id, err := st.authn.authenticate(ctx, token)
	if err != nil {
		return identity{}, err
	}
	uid, exists, known := st.routes.accounts.serviceAccountUID(id.runtime)
	if known && (!exists || uid != id.uid) {
		return identity{}, unauthorized("the ServiceAccount %s/%s of this token was deleted or replaced: the servicelet of runtime %s is revoked; ask the platform for a new token",
			ServiceletNamespace, ServiceAccountName(id.runtime), id.runtime)
	}
	return id, nil
}

// bearerToken reads "Authorization: Bearer <token>".
func bearerToken(h http.Header) (string, bool) {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", false
	}
	return token, true
}

// stripCredentials removes what could make kcp take the request for someone else's:
// the servicelet's token, impersonation, and front-proxy identity headers.
func stripCredentials(h http.Header) {
	h.Del("Authorization")
	for k := range h {
		ck := http.CanonicalHeaderKey(k)
		if strings.HasPrefix(ck, "Impersonate-") || strings.HasPrefix(ck, "X-Remote-") {
			delete(h, k)
		}
	}
}

var errBodyTooLarge = fmt.Errorf("the request body is larger than %d bytes", maxBodyBytes)

// readBody buffers the request body, so that it can be inspected and sent on.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the request body: %v", err)
	}
	if len(b) > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// outgoing is the request to send on: the (possibly replaced) buffered body and the
// headers the decision asks for.
func outgoing(r *http.Request, body []byte, dec decision) *http.Request {
	out := r.Clone(r.Context())
	if dec.body != nil {
		body = dec.body
		out.Header.Set("Content-Type", "application/json")
	}
	if body == nil {
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
	} else {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.Header.Del("Transfer-Encoding")
	}
	if dec.jsonAccept {
		out.Header.Set("Accept", "application/json")
		out.Header.Del("Accept-Encoding")
	}
	return out
}

// modifyResponse rewrites the endpoint slice and checks answered Secrets.
func (f *FrontDoor) modifyResponse(resp *http.Response) error {
	fw, _ := resp.Request.Context().Value(forwardedKey{}).(*forwarded)
	if fw == nil || resp.StatusCode != http.StatusOK || (!fw.dec.rewriteSlice && !fw.dec.ownedResponse) {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4*maxBodyBytes))
	resp.Body.Close()
	if err != nil {
		return err
	}
	switch {
	case fw.dec.rewriteSlice:
		rewritten, err := rewriteEndpointSlice(body, f.public, f.shardTokens)
		if err != nil {
			replaceResponse(resp, http.StatusBadGateway, statusBody(http.StatusBadGateway,
				"msp front door: cannot point the endpoint slice at the front door ("+err.Error()+")", nil))
			return nil
		}
		body = rewritten
	case fw.dec.ownedResponse && !ownedObject(body, fw.id.runtime):
		rt := fw.id.runtime
		d := refuse(rt, "read this Secret: it is not labelled with its runtime", fmt.Sprintf("it may only read Secrets labelled %s=%s", platformv1alpha1.LabelRuntime, rt))
		replaceResponse(resp, d.code, statusBody(d.code, d.message, nil))
		return nil
	}
	replaceResponse(resp, resp.StatusCode, body)
	return nil
}

// replaceResponse makes resp answer code with a JSON body.
func replaceResponse(resp *http.Response, code int, body []byte) {
	resp.StatusCode = code
	resp.Status = strconv.Itoa(code) + " " + http.StatusText(code)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Del("Content-Encoding")
	resp.TransferEncoding = nil
}

// proxyError answers when kcp could not be asked, or the request was cut.
func (f *FrontDoor) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case revoked(r.Context()):
		writeStatus(w, http.StatusUnauthorized, "msp front door: the servicelet's ServiceAccount was deleted or replaced: it is revoked")
	case r.Context().Err() != nil:
		// The servicelet went away; nobody is listening.
	case kcpconfig.NotSent(err):
		// Nothing reached kcp: the servicelet's client may send it again, writes too.
		f.log.Info("cannot reach kcp", "path", r.URL.Path, "err", err.Error())
		w.Header().Set("Retry-After", "1")
		writeStatus(w, http.StatusServiceUnavailable, "msp front door: cannot reach kcp ("+err.Error()+"); nothing was sent, retry")
	default:
		f.log.Info("lost kcp's answer", "path", r.URL.Path, "err", err.Error())
		writeStatus(w, http.StatusBadGateway, "msp front door: cannot reach kcp ("+err.Error()+"); retry later")
	}
}
