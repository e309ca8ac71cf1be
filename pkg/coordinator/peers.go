package coordinator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/multicluster-runtime/pkg/manager/coordinator/sharded/sharder"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// labelPeers marks the Leases of the replicas of one coordinator (its value is the export).
const labelPeers = platformv1alpha1.LabelCoordinatorPeers

// leasePeers is the membership of a coordinator's active replicas: each keeps a Lease of
// its own in the provider workspace and lists the others'. A replica whose Lease has not
// been renewed for its duration is gone; one that stops cleanly deletes its Lease, so
// that the others take its workspaces over at once.
//
// multicluster-runtime's lease registry does the same with fixed timings (30s); this
// one takes the duration from the operator, as it bounds how long a dead replica's
// workspaces wait.
type leasePeers struct {
	c         client.Client
	namespace string
	group     string
	id        string
	duration  time.Duration
	refresh   time.Duration
	log       logr.Logger

	mu        sync.Mutex
	listed    bool
	others    []sharder.PeerInfo
	renewedAt time.Time
	changed   chan struct{}
}

func newLeasePeers(c client.Client, namespace, group, id string, duration, refresh time.Duration, log logr.Logger) *leasePeers {
	return &leasePeers{c: c, namespace: namespace, group: group, id: id, duration: duration, refresh: refresh, log: log, changed: make(chan struct{}, 1)}
}

// Self is this replica.
func (p *leasePeers) Self() sharder.PeerInfo { return sharder.PeerInfo{ID: p.id, Weight: 1} }

// Snapshot returns the live replicas: none before the first listing, and without this
// one while its own Lease is expired (it cannot tell the others it is alive, so they
// take its workspaces).
func (p *leasePeers) Snapshot() []sharder.PeerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.listed {
		return nil
	}
	out := append([]sharder.PeerInfo(nil), p.others...)
	if time.Since(p.renewedAt) < p.duration {
		out = append(out, p.Self())
	}
	return out
}

// Listed reports whether the replicas have been listed once.
func (p *leasePeers) Listed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listed
}

// Changed is signalled when the live replicas changed.
func (p *leasePeers) Changed() <-chan struct{} { return p.changed }

// Run renews this replica's Lease and lists the others' until ctx ends, then deletes
// its Lease.
func (p *leasePeers) Run(ctx context.Context) error {
	defer func() {
		stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lease := &coordinationv1.Lease{}
		lease.Namespace, lease.Name = p.namespace, p.leaseName()
		if err := p.c.Delete(stop, lease); err != nil && !apierrors.IsNotFound(err) {
			p.log.Info("failed to delete this replica's lease; the others take over when it expires", "err", err.Error())
		}
	}()
	tick := time.NewTicker(p.refresh)
	defer tick.Stop()
	for {
		p.mu.Lock()
		due := time.Since(p.renewedAt) >= p.duration/3
		p.mu.Unlock()
		if due {
			if err := p.renew(ctx); err != nil && ctx.Err() == nil {
				p.log.Info("failed to renew this replica's lease", "err", err.Error())
			}
		}
		if err := p.list(ctx); err != nil && ctx.Err() == nil {
			p.log.Info("failed to list the coordinator replicas", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (p *leasePeers) leaseName() string {
	return "msp-coordinator-" + dnsLabel(p.id)
}

// renew creates or renews this replica's Lease.
func (p *leasePeers) renew(ctx context.Context) error {
	now := metav1.NewMicroTime(time.Now())
	seconds := int32(p.duration / time.Second)
	lease := &coordinationv1.Lease{}
	err := p.c.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: p.leaseName()}, lease)
	switch {
	case apierrors.IsNotFound(err):
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: p.leaseName(), Labels: map[string]string{labelPeers: p.group}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(p.id), LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
		}
		err = p.c.Create(ctx, lease)
	case err == nil:
		lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = ptr.To(p.id), &seconds, &now
		err = p.c.Update(ctx, lease)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.renewedAt = now.Time
	p.mu.Unlock()
	return nil
}

// list reads the other replicas' Leases and keeps the live ones.
func (p *leasePeers) list(ctx context.Context) error {
	var leases coordinationv1.LeaseList
	if err := p.c.List(ctx, &leases, client.InNamespace(p.namespace), client.MatchingLabels{labelPeers: p.group}); err != nil {
		return err
	}
	now := time.Now()
	var others []sharder.PeerInfo
	for _, l := range leases.Items {
		s := l.Spec
		if s.HolderIdentity == nil || *s.HolderIdentity == p.id || s.RenewTime == nil || s.LeaseDurationSeconds == nil {
			continue
		}
		if now.After(s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds) * time.Second)) {
			continue
		}
		others = append(others, sharder.PeerInfo{ID: *s.HolderIdentity, Weight: 1})
	}
	sort.Slice(others, func(i, j int) bool { return others[i].ID < others[j].ID })
	p.mu.Lock()
	changed := !p.listed || !samePeers(others, p.others)
	p.others, p.listed = others, true
	p.mu.Unlock()
	if changed {
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
	return nil
}

// dnsLabel makes s usable in an object name: lower case, [a-z0-9-], at most 40 characters.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 40 {
		out = strings.Trim(out[:40], "-")
	}
	if out == "" {
		return fmt.Sprintf("replica-%x", len(s))
	}
	return out
}
