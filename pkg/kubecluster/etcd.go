// Package kubecluster runs real Kubernetes control planes on this machine: an etcd that
// several clusters share (each under an etcd prefix of its own), and per cluster a
// kube-apiserver and a kube-controller-manager, with their certificates, a
// ServiceAccount signing key and an admin kubeconfig. There is no kubelet: pods stay
// Pending, but everything the control plane does by itself (namespaces and their
// finalization, quotas and their usage, ServiceAccounts and their tokens, RBAC) is real.
//
// The Kubernetes provider's tests and its local runtime class use it; the binaries are
// built from pinned tools modules (hack/tools/kubernetes, hack/tools/etcd).
package kubecluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/msp-dev/msp/pkg/child"
	"github.com/msp-dev/msp/pkg/ports"
)

// EtcdOptions configure an etcd server.
type EtcdOptions struct {
	// Binary is the etcd executable. Required.
	Binary string
	// Dir is etcd's data folder; its log goes next to it. Required.
	Dir string
	// StartTimeout bounds the wait for etcd to serve. Defaults to 30s.
	StartTimeout time.Duration
}

// Etcd is a running etcd, listening on loopback only, without TLS: only processes of
// this machine reach it.
type Etcd struct {
	proc     *child.Process
	endpoint string
}

// StartEtcd starts etcd and waits until it answers its health check.
func StartEtcd(ctx context.Context, opts EtcdOptions) (*Etcd, error) {
	if opts.Binary == "" || opts.Dir == "" {
		return nil, errors.New("kubecluster: etcd needs a binary and a folder")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	client, err := ports.Free("127.0.0.1")
	if err != nil {
		return nil, err
	}
	peer, err := ports.Free("127.0.0.1")
	if err != nil {
		return nil, err
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	args := []string{
		"--name", "msp",
		"--data-dir", filepath.Join(opts.Dir, "data"),
		"--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "msp=" + peerURL,
		"--log-level", "warn",
	}
	proc, err := child.Start(opts.Binary, args, filepath.Join(opts.Dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	e := &Etcd{proc: proc, endpoint: endpoint}
	if err := waitHTTP(ctx, http.DefaultClient, endpoint+"/health", opts.StartTimeout, proc); err != nil {
		e.Stop()
		return nil, fmt.Errorf("etcd did not serve (log: %s): %w", filepath.Join(opts.Dir, "etcd.log"), err)
	}
	return e, nil
}

// Endpoint is etcd's client URL.
func (e *Etcd) Endpoint() string { return e.endpoint }

// Stop stops etcd; stop the API servers that use it first.
func (e *Etcd) Stop() { e.proc.Stop(10 * time.Second) }

// waitHTTP polls url until it answers 200, the process exits or the timeout passes.
func waitHTTP(ctx context.Context, c *http.Client, url string, timeout time.Duration, proc *child.Process) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		last = err
		select {
		case <-proc.Done():
			return errors.New("the process exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
