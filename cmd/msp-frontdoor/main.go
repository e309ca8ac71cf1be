// Command msp-frontdoor is a provider's front door: the HTTPS endpoint its servicelets
// dial instead of kcp. It authenticates each servicelet by a token of its ServiceAccount,
// lets it read and write only what belongs to its runtime, forwards that to kcp with the
// front door's own identity, and serves the provider's admission webhook.
package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/msp-dev/msp/pkg/admission"
	"github.com/msp-dev/msp/pkg/cli"
	"github.com/msp-dev/msp/pkg/frontdoor"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

func main() {
	opts := defaultOptions()
	opts.AddFlags(pflag.CommandLine)
	cli.Main("msp-frontdoor", opts.Validate, func(ctx context.Context, log logr.Logger) error {
		return run(ctx, opts, log)
	})
}

func run(ctx context.Context, opts *options, log logr.Logger) error {
	cfg, err := kcpconfig.LoadPatient(opts.Kubeconfig, opts.Context)
	if err != nil {
		return err
	}
	// The admission webhook must know the front door's own user; kcp may be down at
	// start, so keep asking.
	var self string
	for {
		if self, err = whoAmI(ctx, kcpconfig.ForWorkspace(cfg, opts.Workspace)); err == nil {
			break
		}
		log.Info("waiting for kcp to say who the front door is", "err", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	log.Info("front door identity", "user", self)
	fd, err := frontdoor.New(frontdoor.Options{
		Config:             cfg,
		Workspace:          opts.Workspace,
		Export:             opts.Export,
		PublicURL:          opts.PublicURL,
		Audience:           opts.Audience,
		MaxTokenExpiration: opts.MaxTokenExpiration,
		Admission:          admission.NewHandler(admission.Rules{CoordinatorUser: opts.CoordinatorUser, FrontDoorUser: self}, log.WithName("admission")),
		Log:                log,
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", opts.BindAddress)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", opts.BindAddress, err)
	}
	return fd.Run(ctx, l, opts.TLSCertFile, opts.TLSKeyFile)
}

// whoAmI returns the kcp username of cfg's identity, from a SelfSubjectReview.
func whoAmI(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	ssr, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("SelfSubjectReview failed: %w", err)
	}
	if ssr.Status.UserInfo.Username == "" {
		return "", fmt.Errorf("kcp named no user in its SelfSubjectReview")
	}
	return ssr.Status.UserInfo.Username, nil
}
