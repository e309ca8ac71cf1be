package launcher

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The certificates of a sharded kcp live for a long time (a data folder is kept between
// runs); a leaf that expires within leafRenewBefore is issued again on the next start.
const (
	caValidity      = 10 * 365 * 24 * time.Hour
	leafValidity    = 2 * 365 * 24 * time.Hour
	leafRenewBefore = 30 * 24 * time.Hour
)

// localCA is a certificate authority whose certificate and key are files of the data
// folder: the serving CA of the shards, the cache server and the front proxy, and the CA
// of the front proxy's request-header client certificate.
type localCA struct {
	cert     *x509.Certificate
	key      crypto.Signer
	CertFile string
}

// ensureCA loads the CA in certFile and keyFile, creating both when either is missing.
func ensureCA(certFile, keyFile, commonName string) (*localCA, error) {
	if cert, key, err := loadPair(certFile, keyFile); err == nil {
		return &localCA{cert: cert, key: key, CertFile: certFile}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &localCA{cert: cert, key: key, CertFile: certFile}, nil
}

// ensureServing makes sure certFile holds a serving certificate of the CA for hosts
// (names or IP addresses) that is not about to expire.
func (ca *localCA) ensureServing(certFile, keyFile string, hosts []string) error {
	if leafValid(certFile, keyFile, ca) {
		return nil
	}
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
	return ca.issueTo(certFile, keyFile, tmpl)
}

// ensureClient makes sure certFile holds a client certificate of the CA for user in
// groups (kcp reads the user from the common name, the groups from the organizations).
func (ca *localCA) ensureClient(certFile, keyFile, user string, groups []string) error {
	if leafValid(certFile, keyFile, ca) {
		return nil
	}
	return ca.issueTo(certFile, keyFile, &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *localCA) issueTo(certFile, keyFile string, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl.SerialNumber = serialNumber()
	tmpl.NotBefore = now.Add(-5 * time.Minute)
	tmpl.NotAfter = now.Add(leafValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	return writePair(certFile, keyFile, der, key)
}

// leafValid says whether certFile and keyFile are a pair signed by ca that is valid for
// longer than leafRenewBefore.
func leafValid(certFile, keyFile string, ca *localCA) bool {
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return false
	}
	cert, _, err := loadPair(certFile, keyFile)
	if err != nil {
		return false
	}
	if cert.CheckSignatureFrom(ca.cert) != nil {
		return false
	}
	return time.Until(cert.NotAfter) > leafRenewBefore
}

// signedByCA is like leafValid for a CA that is not a localCA (msp's CA of pkg/identity).
func signedByCA(certFile, keyFile, caFile string) bool {
	raw, err := os.ReadFile(caFile)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return false
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	return leafValid(certFile, keyFile, &localCA{cert: caCert})
}

func loadPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("launcher: %s or its key is not PEM", certFile)
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

func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// ensureServiceAccountKey writes the RSA key every shard signs and verifies
// ServiceAccount tokens with, so that a token of one shard is valid on all of them.
func ensureServiceAccountKey(file string) error {
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	raw := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return os.WriteFile(file, raw, 0o600)
}

func serialNumber() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// kubeconfigCluster is one cluster (and context of the same name) of a kubeconfig that
// writeCertKubeconfig writes.
type kubeconfigCluster struct {
	name, server string
}

// writeCertKubeconfig writes a kubeconfig whose user is the client certificate in
// certFile/keyFile and whose clusters trust caFile; all files are embedded, so that the
// kubeconfig can be copied. The first cluster is the current context.
func writeCertKubeconfig(file, caFile, certFile, keyFile string, clusters ...kubeconfigCluster) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	out := clientcmdapi.NewConfig()
	const user = "user"
	out.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	for i, c := range clusters {
		out.Clusters[c.name] = &clientcmdapi.Cluster{Server: c.server, CertificateAuthorityData: ca}
		out.Contexts[c.name] = &clientcmdapi.Context{Cluster: c.name, AuthInfo: user}
		if i == 0 {
			out.CurrentContext = c.name
		}
	}
	return clientcmd.WriteToFile(*out, file)
}
