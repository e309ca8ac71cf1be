package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	mcmanager "sigs.k8s.io/multicluster-runtime/pkg/manager"
	"sigs.k8s.io/multicluster-runtime/pkg/manager/coordinator/sharded/sharder"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	"github.com/msp-dev/msp/pkg/metrics"
)

// workspaceShards splits the bound tenant workspaces between the active replicas of a
// coordinator: a workspace is engaged (its capabilities reconciled) by the replica that
// rendezvous hashing (multicluster-runtime's HRW sharder) picks among the live peers
// (see leasePeers). When a peer comes or goes, every replica computes the same new
// split from the same peer set; the workspaces that move are released by one replica and
// engaged by the other within a probe interval.
//
// There is no lease per workspace: for a thousand workspaces that would be a hundred
// renewals a second on kcp. While the replicas' views of the peers differ (for at most
// a lease's duration), two of them may both reconcile a workspace; the assignment's
// resourceVersion guard keeps a capability from being placed twice, and the
// reservations on the runtimes' twins keep a runtime from being filled twice.
type workspaceShards struct {
	peers *leasePeers
	hrw   sharder.Sharder
	probe time.Duration
	log   logr.Logger

	mu        sync.Mutex
	awares    []multicluster.Aware
	base      context.Context
	clusters  map[multicluster.ClusterName]*shardedWorkspace
	lastPeers []sharder.PeerInfo
}

// shardedWorkspace is one bound workspace; cancel is set while this replica owns it.
type shardedWorkspace struct {
	cl     cluster.Cluster
	cancel context.CancelFunc
}

func newWorkspaceShards(peers *leasePeers, probe time.Duration, log logr.Logger) *workspaceShards {
	return &workspaceShards{peers: peers, hrw: sharder.NewHRW(), probe: probe, log: log, clusters: map[multicluster.ClusterName]*shardedWorkspace{}}
}

// AddAware implements mcmanager.Coordinator.
func (w *workspaceShards) AddAware(a multicluster.Aware) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.awares = append(w.awares, a)
}

// Engage implements mcmanager.Coordinator: the provider's word that a workspace is
// bound. ctx ends when it is not any more.
func (w *workspaceShards) Engage(ctx context.Context, name multicluster.ClusterName, cl cluster.Cluster) error {
	ws := &shardedWorkspace{cl: cl}
	w.mu.Lock()
	if old := w.clusters[name]; old != nil && old.cancel != nil {
		old.cancel()
	}
	w.clusters[name] = ws
	w.mu.Unlock()
	// The workspace is forgotten before its engagement ends, so that the scheduler
	// (Bound) tells a workspace that is gone from one that moved.
	context.AfterFunc(ctx, func() {
		w.mu.Lock()
		var cancel context.CancelFunc
		if w.clusters[name] == ws {
			delete(w.clusters, name)
			cancel = ws.cancel
		}
		w.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	})
	w.recompute()
	return nil
}

// Owns reports whether this replica reconciles the workspace.
func (w *workspaceShards) Owns(name multicluster.ClusterName) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.clusters[name]
	return ws != nil && ws.cancel != nil
}

// Bound reports whether the workspace is bound (whoever owns it).
func (w *workspaceShards) Bound(name multicluster.ClusterName) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clusters[name] != nil
}

// Owned returns how many workspaces this replica owns, and how many are bound.
func (w *workspaceShards) Owned() (owned, bound int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ws := range w.clusters {
		if ws.cancel != nil {
			owned++
		}
	}
	return owned, len(w.clusters)
}

// Runnable implements mcmanager.Coordinator: it keeps this replica's peer lease and
// recomputes the split whenever the peers change, and every probe interval.
func (w *workspaceShards) Runnable() manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		w.mu.Lock()
		w.base = ctx
		w.mu.Unlock()
		errs := make(chan error, 1)
		go func() { errs <- w.peers.Run(ctx) }()
		tick := time.NewTicker(w.probe)
		defer tick.Stop()
		for {
			w.recompute()
			select {
			case <-ctx.Done():
				return nil
			case err := <-errs:
				return err
			case <-w.peers.Changed():
			case <-tick.C:
			}
		}
	})
}

// recompute engages the workspaces this replica should own and releases the others.
func (w *workspaceShards) recompute() {
	peers := w.peers.Snapshot()
	self := w.peers.Self()
	type start struct {
		ctx  context.Context
		name multicluster.ClusterName
		cl   cluster.Cluster
	}
	var starts []start
	var stops []context.CancelFunc
	w.mu.Lock()
	if w.base == nil || !w.peers.Listed() {
		w.mu.Unlock()
		return // engaged once the runnable runs and the peers are known
	}
	if !samePeers(peers, w.lastPeers) {
		w.log.Info("coordinator replicas changed", "peers", peerIDs(peers), "self", self.ID)
		w.lastPeers = peers
	}
	for name, ws := range w.clusters {
		should := w.hrw.ShouldOwn(name.String(), peers, self)
		switch {
		case should && ws.cancel == nil:
			ctx, cancel := context.WithCancel(w.base)
			ws.cancel = cancel
			starts = append(starts, start{ctx: ctx, name: name, cl: ws.cl})
		case !should && ws.cancel != nil:
			stops = append(stops, ws.cancel)
			ws.cancel = nil
		}
	}
	awares := append([]multicluster.Aware(nil), w.awares...)
	owned := 0
	for _, ws := range w.clusters {
		if ws.cancel != nil {
			owned++
		}
	}
	metrics.OwnedWorkspaces.Set(float64(owned))
	w.mu.Unlock()
	for _, cancel := range stops {
		cancel()
	}
	for _, s := range starts {
		for _, a := range awares {
			if err := a.Engage(s.ctx, s.name, s.cl); err != nil {
				w.log.Error(err, "failed to engage a workspace", "cluster", s.name)
			}
		}
	}
	if len(starts) > 0 || len(stops) > 0 {
		w.log.V(1).Info("workspaces moved", "engaged", len(starts), "released", len(stops))
	}
}

func samePeers(a, b []sharder.PeerInfo) bool {
	if len(a) != len(b) {
		return false
	}
	ids := map[string]bool{}
	for _, p := range a {
		ids[p.ID] = true
	}
	for _, p := range b {
		if !ids[p.ID] {
			return false
		}
	}
	return true
}

func peerIDs(peers []sharder.PeerInfo) []string {
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		out = append(out, p.ID)
	}
	return out
}

var _ mcmanager.Coordinator = (*workspaceShards)(nil)
