// Package fileshare is an example provider built only on msp's public SDK: a FileShare
// is a folder on the runtime's disk, with the files its spec lists, served read-only
// over HTTP to whoever holds the share's token. A runtime is one fileshare-servicelet
// with its folder and its HTTP server.
package fileshare

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/sdk/driver"
)

// fileName is what admission allows as a file name; the driver checks again, since a
// document may come from an API server without the schema's validation.
var fileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// tokenFile keeps a share's token next to its folder (not in it: it is not served).
const tokenSuffix = ".token"

// Driver keeps shares under a folder and serves them.
type Driver struct {
	dir string
	// base is the URL the shares are served under, e.g. http://127.0.0.1:8080.
	base string
}

// NewDriver returns a driver that keeps its shares under dir and tells tenants that they
// are served at base.
func NewDriver(dir, base string) (*Driver, error) {
	if dir == "" || base == "" {
		return nil, errors.New("fileshare: a folder and a base URL are required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Driver{dir: dir, base: strings.TrimSuffix(base, "/")}, nil
}

// key names a share on disk: a hash of the workspace, namespace and name, so that two
// tenants' shares never meet and no tenant-chosen string becomes a path.
func key(c *driver.Capability) string {
	sum := sha256.Sum256([]byte(c.Cluster + "/" + c.Object.GetNamespace() + "/" + c.Object.GetName()))
	return hex.EncodeToString(sum[:12])
}

func (d *Driver) folder(c *driver.Capability) string { return filepath.Join(d.dir, key(c)) }

// files returns the spec's files, refusing names that are not plain.
func files(c *driver.Capability) (map[string]string, error) {
	raw, _, err := unstructured.NestedStringMap(c.Object.Object, "spec", "files")
	if err != nil {
		return nil, driver.NewTenantError("spec.files must map file names to their content")
	}
	for name := range raw {
		if !fileName.MatchString(name) {
			return nil, driver.NewTenantError(fmt.Sprintf("spec.files: %q is not a plain file name (letters, digits, '.', '-' and '_', no folders)", name))
		}
	}
	return raw, nil
}

// Observe reports whether the folder exists and holds exactly the spec's files.
func (d *Driver) Observe(_ context.Context, c *driver.Capability) (driver.Observation, error) {
	token, err := os.ReadFile(d.folder(c) + tokenSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return driver.Observation{}, nil // what never was (or is gone) is not refused
	}
	if err != nil {
		return driver.Observation{}, err
	}
	want, err := files(c)
	if err != nil {
		return driver.Observation{}, err
	}
	entries, err := os.ReadDir(d.folder(c))
	if errors.Is(err, os.ErrNotExist) {
		return driver.Observation{Exists: true, Message: "the share's folder is missing on the server"}, nil
	}
	if err != nil {
		return driver.Observation{}, err
	}
	obs := driver.Observation{Exists: true, UpToDate: true, Ready: true, ConnectionDetails: d.details(c, token)}
	var size int64
	seen := map[string]bool{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return driver.Observation{}, err
		}
		size += info.Size()
		content, ok := want[e.Name()]
		if !ok {
			obs.UpToDate, obs.Message = false, fmt.Sprintf("the share holds %s, which the spec does not list", e.Name())
			continue
		}
		seen[e.Name()] = true
		got, err := os.ReadFile(filepath.Join(d.folder(c), e.Name()))
		if err != nil {
			return driver.Observation{}, err
		}
		if string(got) != content {
			obs.UpToDate, obs.Message = false, fmt.Sprintf("%s differs from the spec", e.Name())
		}
	}
	for name := range want {
		if !seen[name] {
			obs.UpToDate, obs.Message = false, fmt.Sprintf("%s is missing from the share", name)
		}
	}
	obs.Usage = corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI)}
	return obs, nil
}

// Create makes the folder and the token, and writes the files.
func (d *Driver) Create(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	if _, err := files(c); err != nil {
		return nil, err
	}
	tokenPath := d.folder(c) + tokenSuffix
	token, err := os.ReadFile(tokenPath)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		token = []byte(hex.EncodeToString(b))
		if err := os.WriteFile(tokenPath, token, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if err := d.Update(ctx, c); err != nil {
		return nil, err
	}
	return d.details(c, token), nil
}

// Update writes the spec's files and removes the others.
func (d *Driver) Update(_ context.Context, c *driver.Capability) error {
	want, err := files(c)
	if err != nil {
		return err
	}
	folder := d.folder(c)
	if err := os.MkdirAll(folder, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(folder)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok {
			if err := os.RemoveAll(filepath.Join(folder, e.Name())); err != nil {
				return err
			}
		}
	}
	for name, content := range want {
		if err := os.WriteFile(filepath.Join(folder, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the folder and the token; what is gone already is fine.
func (d *Driver) Delete(_ context.Context, c *driver.Capability) error {
	if err := os.RemoveAll(d.folder(c)); err != nil {
		return err
	}
	if err := os.Remove(d.folder(c) + tokenSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Probe: the runtime is usable while its folder is.
func (d *Driver) Probe(context.Context) error {
	_, err := os.Stat(d.dir)
	return err
}

func (d *Driver) details(c *driver.Capability, token []byte) driver.ConnectionDetails {
	return driver.ConnectionDetails{
		"url":   []byte(d.base + "/shares/" + key(c) + "/"),
		"token": token,
	}
}

// Handler serves GET /shares/<key>/<file> to requests that carry the share's token as
// "Authorization: Bearer <token>".
func (d *Driver) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/shares/")
		k, name, _ := strings.Cut(rest, "/")
		if !ok || r.Method != http.MethodGet || len(k) != 24 || strings.Trim(k, "0123456789abcdef") != "" || !fileName.MatchString(name) {
			http.NotFound(w, r)
			return
		}
		token, err := os.ReadFile(filepath.Join(d.dir, k+tokenSuffix))
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if err != nil || subtle.ConstantTimeCompare(token, []byte(got)) != 1 {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		http.ServeFile(w, r, filepath.Join(d.dir, k, name))
	})
}

// Listen opens addr for Serve; an address with port 0 gets a free one.
func Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
