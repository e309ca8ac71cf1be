package runtimemanager

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/rest"

	"github.com/msp-dev/msp/pkg/identity"
)

// ServiceletAccess hands the servicelet of a runtime the runtime manager orders its own
// credential, never the coordinator's: a token of the runtime's ServiceAccount in the
// provider workspace, for the front door's audience only, with a kubeconfig that dials
// the front door.
type ServiceletAccess struct {
	// Config addresses the provider workspace with the coordinator's identity, which may
	// create ServiceAccounts and their tokens there. Required.
	Config *rest.Config
	// FrontDoorURL is the provider's front door; CA the bundle its serving certificate
	// is checked against. Required.
	FrontDoorURL string
	CA           []byte
	// Audience defaults to identity.DefaultAudience; TokenTTL to one hour (the servicelet
	// renews it half way).
	Audience string
	TokenTTL time.Duration
}

func (a *ServiceletAccess) complete() error {
	if a == nil || a.Config == nil || a.FrontDoorURL == "" {
		return errors.New("runtimemanager: a servicelet's access needs the provider workspace's config and the front door's URL")
	}
	if a.Audience == "" {
		a.Audience = identity.DefaultAudience
	}
	if a.TokenTTL == 0 {
		a.TokenTTL = time.Hour
	}
	return nil
}

// Issue writes a fresh credential for runtime's servicelet into dir and returns the
// kubeconfig's path.
func (a *ServiceletAccess) Issue(ctx context.Context, runtime, dir string) (string, error) {
	if err := a.complete(); err != nil {
		return "", err
	}
	return identity.IssueServiceletAccess(ctx, a.Config, runtime, dir, a.FrontDoorURL, a.CA, a.Audience, a.TokenTTL)
}

// Revoke deletes runtime's servicelet's ServiceAccount: its tokens stop working and the
// front door cuts its watches.
func (a *ServiceletAccess) Revoke(ctx context.Context, runtime string) error {
	if err := a.complete(); err != nil {
		return err
	}
	return identity.RevokeServicelet(ctx, a.Config, runtime)
}
