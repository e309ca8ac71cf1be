// Package identity issues the credentials of msp's components, each its own identity with
// only the rights the workspace tree's RBAC gives it:
//
//   - client certificates from msp's CA, which kcp trusts through --client-ca-file (the
//     coordinators and front doors of the embedded default; on a production kcp the
//     operator's own CA or OIDC does the same). A certificate carries no cached,
//     extra-laden user info, so kcp v0.28's virtual workspaces cannot leak a warrant into
//     its later requests (e2e/probe/FINDINGS.md);
//   - ServiceAccount tokens for servicelets, issued in the provider's workspace for the
//     front door's audience only: kcp refuses them, the front door reviews them.
package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

const (
	// CACertFile and CAKeyFile are the CA's files in its folder.
	CACertFile = "msp-ca.crt"
	CAKeyFile  = "msp-ca.key"
	caLifetime = 10 * 365 * 24 * time.Hour
)

// CA signs component certificates.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	// CertFile is where the CA's certificate is (kcp's --client-ca-file).
	CertFile string
}

// LoadOrCreateCA reads the CA in dir, creating it (and dir) on first use. The key never
// leaves the folder; only the bootstrap, which issues the identities, reads it.
func LoadOrCreateCA(dir string) (*CA, error) {
	return LoadOrCreateCAFiles(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), "msp components CA")
}

// LoadOrCreateCAFiles reads the CA in certFile and keyFile, creating both (and their
// folder, 0700) when either is missing, with commonName as its subject. It is for a CA
// whose files a caller names itself, such as the serving CA of a sharded kcp; a CA once
// created is loaded on every later start, so that what it signed earlier stays trusted.
func LoadOrCreateCAFiles(certFile, keyFile, commonName string) (*CA, error) {
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	if certErr == nil && keyErr == nil {
		return parseCA(certPEM, keyPEM, certFile)
	}
	if !errors.Is(certErr, os.ErrNotExist) && certErr != nil {
		return nil, certErr
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err = encodePair(der, key)
	if err != nil {
		return nil, err
	}
	if err := writePair(certFile, keyFile, certPEM, keyPEM); err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM, certFile)
}

func parseCA(certPEM, keyPEM []byte, certFile string) (*CA, error) {
	cert, key, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", certFile, err)
	}
	return &CA{cert: cert, key: key, certPEM: certPEM, CertFile: certFile}, nil
}

// parsePair reads a PEM certificate and its PEM EC key, as issue and
// LoadOrCreateCAFiles write them.
func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("the certificate or its key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// CertPEM is the CA's certificate, for trust bundles.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// IssueClient signs a client certificate for user in groups (kcp reads the user from
// the common name and the groups from the organizations), valid for ttl.
func (ca *CA) IssueClient(user string, groups []string, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ttl)
}

// IssueServing signs a serving certificate for hosts (names or IP addresses). It cannot
// be used as a client identity.
func (ca *CA) IssueServing(hosts []string, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, ttl)
}

func (ca *CA) issue(tmpl *x509.Certificate, ttl time.Duration) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-5 * time.Minute)
	tmpl.NotAfter = now.Add(ttl)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	return encodePair(der, key)
}

// EnsureClientFiles makes sure certFile and keyFile hold a client certificate of this CA
// for user in groups (see IssueClient). A pair already there is kept while this CA signed
// it and it does not expire within renewBefore, so that a data folder kept between starts
// keeps its credentials (and the kubeconfigs that embed them); otherwise a certificate
// valid for ttl is issued and written.
func (ca *CA) EnsureClientFiles(certFile, keyFile, user string, groups []string, ttl, renewBefore time.Duration) error {
	same := func(cert *x509.Certificate) bool {
		return cert.Subject.CommonName == user && slices.Equal(cert.Subject.Organization, groups)
	}
	if ca.keeps(certFile, keyFile, renewBefore, same) {
		return nil
	}
	certPEM, keyPEM, err := ca.IssueClient(user, groups, ttl)
	if err != nil {
		return err
	}
	return writePair(certFile, keyFile, certPEM, keyPEM)
}

// EnsureServingFiles makes sure certFile and keyFile hold a serving certificate of this
// CA for hosts (see IssueServing), kept and issued again as EnsureClientFiles does.
func (ca *CA) EnsureServingFiles(certFile, keyFile string, hosts []string, ttl, renewBefore time.Duration) error {
	covers := func(cert *x509.Certificate) bool {
		for _, h := range hosts {
			if cert.VerifyHostname(h) != nil {
				return false
			}
		}
		return true
	}
	if ca.keeps(certFile, keyFile, renewBefore, covers) {
		return nil
	}
	certPEM, keyPEM, err := ca.IssueServing(hosts, ttl)
	if err != nil {
		return err
	}
	return writePair(certFile, keyFile, certPEM, keyPEM)
}

// keeps says whether certFile and keyFile are a matching certificate and key that this CA
// signed and that stay valid for longer than renewBefore. A pair of another CA (its CA
// deleted and created again) is no longer trusted, and one about to expire would fail
// while the processes that use it run, so either is issued again; so is one whose names
// are not those asked for (matches: a user or groups changed, a new bind address).
func (ca *CA) keeps(certFile, keyFile string, renewBefore time.Duration, matches func(*x509.Certificate) bool) bool {
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	if certErr != nil || keyErr != nil {
		return false
	}
	cert, key, err := parsePair(certPEM, keyPEM)
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) {
		return false
	}
	if cert.CheckSignatureFrom(ca.cert) != nil {
		return false
	}
	return time.Until(cert.NotAfter) > renewBefore && matches(cert)
}

// encodePair is the PEM form of a certificate and its key, as kcp and kubeconfigs read it.
func encodePair(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// writePair writes the key (0600, only its owner may read it) before the certificate
// (0644), so that a certificate on disk never names a key that is not there yet; the
// folders are created 0700 where missing.
func writePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	for _, dir := range []string{filepath.Dir(keyFile), filepath.Dir(certFile)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, certPEM, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
