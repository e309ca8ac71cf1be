package coordinator

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// leaderOnly runs a runnable on one replica at a time, elected through a Lease of its own
// in the provider workspace: with replicas that share the workspaces, the manager runs
// without leader election, but the runtime manager must still be one.
type leaderOnly struct {
	config   *rest.Config
	lease    string
	identity string
	run      manager.Runnable
	log      logr.Logger
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: it elects its own leader.
func (l *leaderOnly) NeedLeaderElection() bool { return false }

// Start campaigns until ctx ends and runs the runnable while it leads.
func (l *leaderOnly) Start(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(l.config)
	if err != nil {
		return err
	}
	lock, err := newLeaderLockFor(cs, l.lease, l.identity)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock: lock, ReleaseOnCancel: true,
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					l.log.Info("leading", "lease", l.lease)
					if err := l.run.Start(lctx); err != nil {
						l.log.Error(err, "stopped while leading", "lease", l.lease)
					}
				},
				OnStoppedLeading: func() { l.log.Info("no longer leading", "lease", l.lease) },
			},
		})
	}
	return nil
}

// newLeaderLock is the Lease lock named lease in the provider workspace's default
// namespace, held as identity.
func newLeaderLock(config *rest.Config, lease, identity string) (resourcelock.Interface, error) {
	// A hung request must not outlast the renew deadline (controller-runtime's 10s).
	config = rest.CopyConfig(config)
	config.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(config, "leader-election"))
	if err != nil {
		return nil, err
	}
	return newLeaderLockFor(cs, lease, identity)
}

func newLeaderLockFor(cs kubernetes.Interface, lease, identity string) (resourcelock.Interface, error) {
	return resourcelock.New(resourcelock.LeasesResourceLock, "default", lease, cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: identity})
}
