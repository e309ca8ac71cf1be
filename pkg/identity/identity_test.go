package identity

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func parseCert(t *testing.T, raw []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(raw)
	if b == nil {
		t.Fatal("not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCAIssuesClientAndServingCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Fatal("a second load made a new CA: certificates handed out earlier would stop working")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())

	certPEM, _, err := ca.IssueClient(CoordinatorUser("root:providers:p"), []string{CoordinatorsGroup}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, certPEM)
	if cert.Subject.CommonName != "msp:coordinator:root:providers:p" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != CoordinatorsGroup {
		t.Errorf("client certificate names %q in %v", cert.Subject.CommonName, cert.Subject.Organization)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify as a client: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate verifies as a server")
	}

	servingPEM, _, err := ca.IssueServing([]string{"127.0.0.1", "frontdoor.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving := parseCert(t, servingPEM)
	if _, err := serving.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("serving certificate does not verify for 127.0.0.1: %v", err)
	}
	if _, err := serving.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a serving certificate verifies as a client identity: it would authenticate to kcp")
	}
}

func TestServiceletCredentialsReadTheTokenFile(t *testing.T) {
	dir := t.TempDir()
	kc, tok := dir+"/sl.kubeconfig", dir+"/sl.token"
	if err := ServiceletCredentials(kc, tok, "https://127.0.0.1:7443", []byte("ca"), "the-token"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	// clientcmd reads the file once; client-go's transport rereads it (BearerTokenFile).
	if cfg.Host != "https://127.0.0.1:7443" || cfg.BearerTokenFile != tok || cfg.BearerToken != "the-token" || string(cfg.CAData) != "ca" {
		t.Errorf("kubeconfig: host %s, token file %q, token %q, CA %q", cfg.Host, cfg.BearerTokenFile, cfg.BearerToken, cfg.CAData)
	}
	if ServiceAccountUser("rt-a") != "system:serviceaccount:default:servicelet-rt-a" {
		t.Errorf("ServiceAccountUser = %s", ServiceAccountUser("rt-a"))
	}
}
