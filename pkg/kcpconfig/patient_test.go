package kcpconfig

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// downServer is a server address that refuses connections until up is called.
type downServer struct {
	t     *testing.T
	addr  string
	calls atomic.Int64
	srv   *http.Server
}

func newDownServer(t *testing.T, handler http.HandlerFunc) *downServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &downServer{t: t, addr: l.Addr().String()}
	_ = l.Close()
	d.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.calls.Add(1)
		handler(w, r)
	})}
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

func (d *downServer) up() {
	l, err := net.Listen("tcp", d.addr)
	if err != nil {
		d.t.Error(err)
		return
	}
	go func() { _ = d.srv.Serve(l) }()
}

func (d *downServer) upAfter(delay time.Duration) { time.AfterFunc(delay, d.up) }

func patientClient(t *testing.T, patience time.Duration) *http.Client {
	cfg := Patient(&rest.Config{Host: "http://unused"}, patience)
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: rt}
}

func TestPatientWaitsForKCPToComeBack(t *testing.T) {
	var got atomic.Value
	d := newDownServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		_, _ = w.Write([]byte("ok"))
	})
	d.upAfter(1500 * time.Millisecond)
	c := patientClient(t, 10*time.Second)

	// A write kcp never received is sent again, with its body.
	body := []byte(`{"spec":{}}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/apis/x", bytes.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("the write failed instead of waiting: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || got.Load() != string(body) {
		t.Errorf("answer %d, body received %q, want 200 and %q", resp.StatusCode, got.Load(), body)
	}
	if n := d.calls.Load(); n != 1 {
		t.Errorf("the server saw %d requests, want 1", n)
	}
}

func TestPatientGivesUpAfterItsPatience(t *testing.T) {
	d := newDownServer(t, func(http.ResponseWriter, *http.Request) {})
	c := patientClient(t, time.Second)
	start := time.Now()
	_, err := c.Get("http://" + d.addr + "/api")
	if err == nil {
		t.Fatal("a request to a server that never came up succeeded")
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("gave up after %s, before waiting", took)
	}
	if !NotSent(err) {
		t.Errorf("the error %v does not say the connection was refused", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addr+"/api", nil)
	if _, err := patientClient(t, time.Hour).Do(req); err == nil || ctx.Err() == nil {
		t.Errorf("a cancelled request did not end with its context: %v", err)
	}
}

func TestPatientNeverSendsAWriteTwice(t *testing.T) {
	// The server reads the write and drops the connection without answering: it may
	// have been applied, so it must not be sent again.
	d := newDownServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	d.up()
	c := patientClient(t, 1500*time.Millisecond)
	req, _ := http.NewRequest(http.MethodPatch, "http://"+d.addr+"/apis/x", bytes.NewReader([]byte("{}")))
	if _, err := c.Do(req); err == nil {
		t.Fatal("want the dropped connection's error")
	}
	if n := d.calls.Load(); n != 1 {
		t.Errorf("the write was sent %d times, want once", n)
	}
	// A read that failed the same way is tried again.
	d.calls.Store(0)
	start := time.Now()
	_, _ = c.Get("http://" + d.addr + "/api")
	if n := d.calls.Load(); n < 2 {
		t.Errorf("a failed read was sent %d times in %s, want it tried again", n, time.Since(start))
	}
}

func TestPatientRetriesRefusalsOnlyAfterAnOutage(t *testing.T) {
	var warm atomic.Bool
	d := newDownServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !warm.Load() {
			http.Error(w, "access denied", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	d.up()
	c := patientClient(t, 10*time.Second)

	// kcp reachable all along: a 403 is an answer.
	resp, err := c.Get("http://" + d.addr + "/api")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || d.calls.Load() != 1 {
		t.Fatalf("got %d after %d requests, want the 403 at once", resp.StatusCode, d.calls.Load())
	}

	// kcp restarted and still warming up: the refusals are waited out.
	_ = d.srv.Close()
	d.srv = &http.Server{Handler: d.srv.Handler}
	d.upAfter(time.Second)
	time.AfterFunc(2500*time.Millisecond, func() { warm.Store(true) })
	req, _ := http.NewRequest(http.MethodPut, "http://"+d.addr+"/apis/x", bytes.NewReader([]byte("{}")))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got %d, want the write to go through once kcp was warm", resp.StatusCode)
	}
}

func TestPatientWaitsForAResourceToBeServedAgain(t *testing.T) {
	var served atomic.Bool
	d := newDownServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/apis/x/v1/things/gone":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","details":{"name":"gone","kind":"things"},"code":404}`))
		case !served.Load():
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}`))
		default:
			_, _ = w.Write([]byte(`{"kind":"ThingList"}`))
		}
	})
	d.upAfter(500 * time.Millisecond)
	time.AfterFunc(2*time.Second, func() { served.Store(true) })
	c := patientClient(t, 10*time.Second)

	// kcp back, its virtual workspace not serving the resource yet: waited out.
	resp, err := c.Get("http://" + d.addr + "/apis/x/v1/things")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"kind":"ThingList"}` {
		t.Errorf("got %d %s, want the list once the resource was served", resp.StatusCode, body)
	}
	// A missing object is an answer, at once, with its body intact.
	d.calls.Store(0)
	resp, err = c.Get("http://" + d.addr + "/apis/x/v1/things/gone")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || d.calls.Load() != 1 || !bytes.Contains(body, []byte(`"name":"gone"`)) {
		t.Errorf("a missing object: %d after %d requests, body %s", resp.StatusCode, d.calls.Load(), body)
	}
}

func TestPatientDoesNotWaitOnAnUntrustedServer(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	cfg := Patient(&rest.Config{Host: srv.URL}, 10*time.Second)
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&http.Client{Transport: rt}).Get(srv.URL + "/api"); err == nil || !untrusted(err) {
		t.Fatalf("want a certificate error, got %v", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("a certificate error was tried %d times, want once", n)
	}
}
