package kcpconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// DefaultPatience is how long a long-running component's request waits for kcp to come
// back (see Patient): longer than a restart of kcp on its data takes, shorter than
// controller-runtime's renew deadline times three.
const DefaultPatience = 30 * time.Second

// Patient returns a copy of cfg whose requests ride out a short kcp outage (a restart)
// instead of failing at once. Failing at once is what makes a restart expensive: each
// failed list or watch doubles client-go's reflector backoff (up to 30–60s), and each
// failed reconcile doubles its item's workqueue backoff, so components come back long
// after kcp did. A patient request is tried again every half second, for at most
// patience and while its context lasts:
//
//   - any request kcp never received (the connection was refused: nothing was sent);
//   - a read (GET, HEAD) that failed on the way or that kcp answered 502, 503 or 504;
//   - any request kcp refused with 403 shortly after it could not be reached: a
//     restarted kcp denies bound resources for a few seconds while its authorization
//     caches fill; a refusal changed nothing, so trying again is safe;
//   - a read of a resource kcp does not serve (404 without an object's name) shortly
//     after it could not be reached: a restarted kcp's virtual workspaces serve an
//     export's resources only once they caught up. A missing object is an answer.
//
// A write that may have reached kcp is never sent twice. A request with a body is tried
// again only when it can be rewound (GetBody); client-go's requests can.
func Patient(cfg *rest.Config, patience time.Duration) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &patientTransport{next: rt, patience: patience, pause: 500 * time.Millisecond}
	})
	return c
}

// LoadPatient is Load for a long-running component: its requests ride out a restart of
// kcp (Patient with DefaultPatience).
func LoadPatient(kubeconfig, context string) (*rest.Config, error) {
	cfg, err := Load(kubeconfig, context)
	if err != nil {
		return nil, err
	}
	return Patient(cfg, DefaultPatience), nil
}

type patientTransport struct {
	next            http.RoundTripper
	patience, pause time.Duration

	mu sync.Mutex
	// unreachable is when kcp last could not be reached.
	unreachable time.Time
}

func (p *patientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	attempt := req
	for {
		resp, err := p.next.RoundTrip(attempt)
		if !p.again(req, resp, err) || time.Since(start)+p.pause > p.patience {
			return resp, err
		}
		next, ok := rewind(req)
		if !ok {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(p.pause):
		}
		attempt = next
	}
}

// again tells whether the answer (resp or err) to req is one to try again.
func (p *patientTransport) again(req *http.Request, resp *http.Response, err error) bool {
	read := req.Method == http.MethodGet || req.Method == http.MethodHead
	now := time.Now()
	if err != nil {
		if req.Context().Err() != nil {
			return false
		}
		if NotSent(err) || (read && !untrusted(err)) {
			p.mu.Lock()
			p.unreachable = now
			p.mu.Unlock()
			return true
		}
		return false
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return read && resp.Header.Get("Retry-After") == ""
	case http.StatusForbidden:
		return p.recentlyUnreachable(now)
	case http.StatusNotFound:
		return read && p.recentlyUnreachable(now) && notServed(resp)
	}
	return false
}

func (p *patientTransport) recentlyUnreachable(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.unreachable.IsZero() && now.Sub(p.unreachable) < p.patience
}

// notServed tells whether a 404 says that the resource is not served at all (a Status
// without an object's name) rather than that an object is missing. It reads the answer's
// start and puts it back.
func notServed(resp *http.Response) bool {
	head, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil {
		return false
	}
	var st metav1.Status
	if json.Unmarshal(head, &st) != nil || st.Kind != "Status" {
		return false
	}
	return st.Details == nil || st.Details.Name == ""
}

// WrappedRoundTripper lets client-go reach the transport underneath (to cancel requests).
func (p *patientTransport) WrappedRoundTripper() http.RoundTripper { return p.next }

// NotSent tells whether err means the request never left: the connection to kcp could
// not be made.
func NotSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// untrusted tells whether err is about certificates: trying again would not help.
func untrusted(err error) bool {
	var verify *tls.CertificateVerificationError
	var authority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname)
}

// rewind returns a copy of req to send again, with its body read anew.
func rewind(req *http.Request) (*http.Request, bool) {
	out := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return out, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	out.Body = body
	return out, true
}
