package servicelet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/msp-dev/msp/pkg/identity"
)

// tokenClaims are the parts of a ServiceAccount token the servicelet renews it by.
type tokenClaims struct {
	Subject  string   `json:"sub"`
	Audience audience `json:"aud"`
	Issued   int64    `json:"iat"`
	Expires  int64    `json:"exp"`
}

// audience is a JWT's aud: a string or a list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = []string{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*a = many
	return err
}

// parseToken reads a JWT's claims without checking its signature (the servicelet only
// schedules its renewal; the front door checks tokens).
func parseToken(token string) (*tokenClaims, error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("the token's claims are not base64url: %w", err)
	}
	c := &tokenClaims{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("the token's claims are not JSON: %w", err)
	}
	if c.Expires == 0 || !strings.HasPrefix(c.Subject, "system:serviceaccount:") {
		return nil, errors.New("not an expiring ServiceAccount token")
	}
	return c, nil
}

// renewAt is when a token is renewed: half way through its life.
func (c *tokenClaims) renewAt() time.Time {
	issued := c.Issued
	if issued == 0 || issued > c.Expires {
		issued = c.Expires - 600
	}
	return time.Unix(issued+(c.Expires-issued)/2, 0)
}

// tokenRenewer keeps a servicelet's ServiceAccount token fresh: half way through its
// life it asks, with the token itself, for a new one of its own ServiceAccount, same
// audience and lifetime (through the front door, which allows exactly that), and
// replaces the file the kubeconfig reads it from. client-go rereads the file within a
// minute.
type tokenRenewer struct {
	cfg  *rest.Config // the provider workspace
	file string
	log  logr.Logger
	now  func() time.Time
}

func (r *tokenRenewer) run(ctx context.Context) {
	for {
		raw, err := os.ReadFile(r.file)
		if err != nil {
			r.log.Error(err, "cannot read the servicelet's token; not renewing it")
			return
		}
		claims, err := parseToken(string(raw))
		if err != nil {
			r.log.V(1).Info("the credential is not a renewable ServiceAccount token", "file", r.file, "reason", err.Error())
			return
		}
		wait := time.Until(claims.renewAt())
		if r.now != nil {
			wait = claims.renewAt().Sub(r.now())
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if err := r.renew(ctx, claims); err != nil {
			r.log.Info("failed to renew the servicelet's token; trying again in 30s", "err", err.Error(),
				"expires", time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
			continue
		}
		r.log.Info("renewed the servicelet's token", "file", r.file)
	}
}

func (r *tokenRenewer) renew(ctx context.Context, claims *tokenClaims) error {
	parts := strings.Split(strings.TrimPrefix(claims.Subject, "system:serviceaccount:"), ":")
	if len(parts) != 2 {
		return fmt.Errorf("unexpected subject %q", claims.Subject)
	}
	cs, err := kubernetes.NewForConfig(r.cfg)
	if err != nil {
		return err
	}
	lifetime := claims.Expires - claims.Issued
	if claims.Issued == 0 || lifetime < 600 {
		lifetime = 3600
	}
	tr, err := cs.CoreV1().ServiceAccounts(parts[0]).CreateToken(ctx, parts[1], &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: claims.Audience, ExpirationSeconds: &lifetime},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	return identity.WriteFileAtomic(r.file, []byte(tr.Status.Token))
}
