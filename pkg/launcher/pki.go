package launcher

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The certificates of a sharded kcp live for a long time (a data folder is kept between
// runs); a leaf that expires within leafRenewBefore is issued again on the next start
// (identity.CA's EnsureClientFiles and EnsureServingFiles). Its serving and
// request-header CAs are identity.CAs as well, files of the data folder like msp's CA.
const (
	leafValidity    = 2 * 365 * 24 * time.Hour
	leafRenewBefore = 30 * 24 * time.Hour
)

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
