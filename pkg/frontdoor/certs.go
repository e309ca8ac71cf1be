package frontdoor

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certificateFiles serves a certificate and key from files, read again when either
// file changes, so that a renewed serving certificate takes effect without a restart.
type certificateFiles struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	modified [2]time.Time
	checked  time.Time
}

// certificateRecheck is how often the files are looked at.
const certificateRecheck = 10 * time.Second

func newCertificateFiles(certFile, keyFile string) (*certificateFiles, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("frontdoor: a serving certificate and key file are required")
	}
	c := &certificateFiles{certFile: certFile, keyFile: keyFile}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certificateFiles) load() error {
	var mod [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("frontdoor: cannot read the serving certificate: %w", err)
		}
		mod[i] = st.ModTime()
	}
	if c.cert != nil && mod == c.modified {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("frontdoor: cannot load the serving certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.modified = &cert, mod
	return nil
}

// get is tls.Config.GetCertificate. A file that cannot be read keeps the last good pair.
func (c *certificateFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) > certificateRecheck {
		c.checked = time.Now()
		_ = c.load()
	}
	return c.cert, nil
}
