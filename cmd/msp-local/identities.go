package main

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"

	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/launcher"
	"github.com/msp-dev/msp/pkg/ports"
)

const (
	providerWorkspace = "root:providers:postgres"
	providerExport    = "postgres.msp.dev"
)

// issueProvider issues the postgres provider's coordinator and front door their
// identities (new certificates at every start) and installs the front door's webhook on
// a free port.
func issueProvider(ctx context.Context, server *launcher.Server, cfg *rest.Config, home string) (bootstrap.ProviderIdentities, error) {
	kcpCA, err := server.ServingCA()
	if err != nil {
		return bootstrap.ProviderIdentities{}, err
	}
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		return bootstrap.ProviderIdentities{}, err
	}
	return bootstrap.IssueProvider(ctx, bootstrap.Options{Config: cfg}, server.CA(), bootstrap.ProviderOptions{
		Workspace: providerWorkspace, Export: providerExport, Server: server.URL(), KCPCA: kcpCA,
		FrontDoorAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:           filepath.Join(home, "identities", "postgres"),
	})
}

// serviceletAccess issues a registered runtime's servicelet its own credential: a token of
// its ServiceAccount for the front door (the servicelet renews it), in dir.
func serviceletAccess(ctx context.Context, server *launcher.Server, cfg *rest.Config, ids bootstrap.ProviderIdentities, runtime, dir string) (string, error) {
	return identity.IssueServiceletAccess(ctx, kcpconfig.ForWorkspace(cfg, providerWorkspace), runtime, dir, ids.FrontDoorURL, server.CA().CertPEM(), identity.DefaultAudience, time.Hour)
}
