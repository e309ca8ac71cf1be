package identity

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fileText is what file holds, for comparing it before and after a call; the test fails
// when file cannot be read.
func fileText(t *testing.T, file string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func newCA(t *testing.T, name string) *CA {
	t.Helper()
	dir := t.TempDir()
	ca, err := LoadOrCreateCAFiles(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestLoadOrCreateCAFilesLoadsWhatItCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	certFile, keyFile := filepath.Join(dir, "serving-ca.crt"), filepath.Join(dir, "serving-ca.key")
	ca, err := LoadOrCreateCAFiles(certFile, keyFile, "a test CA")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("CA folder: %v, %v; want 0700: it holds the key", fi, err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v, %v; want 0600", fi, err)
	}
	if ca.CertFile != certFile || fileText(t, certFile) != string(ca.CertPEM()) {
		t.Fatalf("CertFile %s does not hold the CA's certificate", ca.CertFile)
	}
	cert := parseCert(t, ca.CertPEM())
	if cert.Subject.CommonName != "a test CA" || !cert.IsCA {
		t.Errorf("CA certificate names %q, IsCA %v", cert.Subject.CommonName, cert.IsCA)
	}

	again, err := LoadOrCreateCAFiles(certFile, keyFile, "a test CA")
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Fatal("a second load made a new CA: what the first one signed would stop being trusted")
	}
	// The loaded CA signs with the created one's key: what it issues verifies against the
	// certificate on disk.
	leafPEM, _, err := again.IssueClient("u", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := parseCert(t, leafPEM).CheckSignatureFrom(cert); err != nil {
		t.Errorf("a certificate of the loaded CA does not verify against the created one: %v", err)
	}
}

func TestLoadOrCreateCAUsesItsFileNames(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.CertFile != filepath.Join(dir, CACertFile) {
		t.Errorf("CertFile = %s", ca.CertFile)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Errorf("no key in %s: %v", CAKeyFile, err)
	}
	if cn := parseCert(t, ca.CertPEM()).Subject.CommonName; cn != "msp components CA" {
		t.Errorf("CA common name %q", cn)
	}
}

func TestEnsureClientFilesKeepsAValidPair(t *testing.T) {
	ca := newCA(t, "ca")
	dir := filepath.Join(t.TempDir(), "leaves")
	certFile, keyFile := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	if err := ca.EnsureClientFiles(certFile, keyFile, "kcp-admin", []string{"system:kcp:admin"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := fileText(t, certFile), fileText(t, keyFile)
	cert := parseCert(t, []byte(certPEM))
	if cert.Subject.CommonName != "kcp-admin" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:kcp:admin" {
		t.Errorf("client certificate names %q in %v", cert.Subject.CommonName, cert.Subject.Organization)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("client certificate usages %v", cert.ExtKeyUsage)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want 0600", fi, err)
	}
	if fi, err := os.Stat(certFile); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("certificate file: %v, %v; want 0644", fi, err)
	}

	if err := ca.EnsureClientFiles(certFile, keyFile, "kcp-admin", []string{"system:kcp:admin"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if fileText(t, certFile) != certPEM || fileText(t, keyFile) != keyPEM {
		t.Error("a valid pair was issued again: kubeconfigs embedding it change on every start")
	}
}

func TestEnsureServingFilesKeepsAValidPair(t *testing.T) {
	ca := newCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "shard.crt"), filepath.Join(dir, "shard.key")
	hosts := []string{"127.0.0.1", "localhost"}
	if err := ca.EnsureServingFiles(certFile, keyFile, hosts, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	certPEM := fileText(t, certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	if _, err := parseCert(t, []byte(certPEM)).Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("serving certificate does not verify for localhost: %v", err)
	}
	if err := ca.EnsureServingFiles(certFile, keyFile, hosts, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if fileText(t, certFile) != certPEM {
		t.Error("a valid serving pair was issued again")
	}
}

func TestEnsureFilesIssueAgainAPairOfAnotherCA(t *testing.T) {
	ca, other := newCA(t, "ca"), newCA(t, "other")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	if err := other.EnsureClientFiles(certFile, keyFile, "u", nil, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	before := fileText(t, certFile)
	if err := ca.EnsureClientFiles(certFile, keyFile, "u", nil, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if fileText(t, certFile) == before {
		t.Fatal("a pair of another CA was kept: kcp would not trust it")
	}
	if err := parseCert(t, []byte(fileText(t, certFile))).CheckSignatureFrom(parseCert(t, ca.CertPEM())); err != nil {
		t.Errorf("the new pair is not the CA's: %v", err)
	}

	// The same for a serving pair.
	if err := other.EnsureServingFiles(certFile, keyFile, []string{"localhost"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := ca.EnsureServingFiles(certFile, keyFile, []string{"localhost"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := parseCert(t, []byte(fileText(t, certFile))).CheckSignatureFrom(parseCert(t, ca.CertPEM())); err != nil {
		t.Errorf("a serving pair of another CA was kept: %v", err)
	}
}

func TestEnsureFilesIssueAgainAPairAboutToExpire(t *testing.T) {
	ca := newCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	// Valid for an hour, but renewed when it has less than two left: issued again each time.
	if err := ca.EnsureClientFiles(certFile, keyFile, "u", nil, time.Hour, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	before := fileText(t, certFile)
	if err := ca.EnsureClientFiles(certFile, keyFile, "u", nil, 3*time.Hour, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	after := fileText(t, certFile)
	if after == before {
		t.Fatal("a pair expiring within renewBefore was kept")
	}
	if left := time.Until(parseCert(t, []byte(after)).NotAfter); left < 2*time.Hour {
		t.Errorf("the new pair expires in %s; want the new ttl of 3h", left)
	}
	// Now valid for longer than renewBefore: kept.
	if err := ca.EnsureClientFiles(certFile, keyFile, "u", nil, 3*time.Hour, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if fileText(t, certFile) != after {
		t.Error("a pair valid beyond renewBefore was issued again")
	}
}

func TestEnsureFilesIssueAgainAPairWhoseKeyDoesNotMatch(t *testing.T) {
	ca := newCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	if err := ca.EnsureClientFiles(certFile, keyFile, "u", nil, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	before := fileText(t, certFile)
	_, otherKey, err := ca.IssueClient("u", nil, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ca.EnsureClientFiles(certFile, keyFile, "u", nil, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if fileText(t, certFile) == before {
		t.Error("a certificate whose key file holds another key was kept: TLS with it fails")
	}
}

func TestEnsureFilesIssueAgainAPairOfOtherNames(t *testing.T) {
	ca := newCA(t, "ca")
	dir := t.TempDir()
	serving, servingKey := filepath.Join(dir, "shard.crt"), filepath.Join(dir, "shard.key")
	if err := ca.EnsureServingFiles(serving, servingKey, []string{"127.0.0.1"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A new bind address: the kept certificate would not cover it.
	if err := ca.EnsureServingFiles(serving, servingKey, []string{"10.0.0.5", "127.0.0.1"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := parseCert(t, []byte(fileText(t, serving))).VerifyHostname("10.0.0.5"); err != nil {
		t.Errorf("the serving certificate was kept for the old hosts: %v", err)
	}

	client, clientKey := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	if err := ca.EnsureClientFiles(client, clientKey, "admin", []string{"system:masters"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := ca.EnsureClientFiles(client, clientKey, "admin", []string{"readers"}, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := parseCert(t, []byte(fileText(t, client))).Subject.Organization; len(got) != 1 || got[0] != "readers" {
		t.Errorf("the client certificate was kept with the old groups %v", got)
	}
}
