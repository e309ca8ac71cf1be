// Package testdriver is a servicelet driver with no external system: each "thing" is a
// file in a state folder, so that the platform's real status, Secrets, finalizers and
// deletion run end to end in tests and benchmarks, and a test can see what the driver did
// (creates.log, deletes.log) and break the runtime on purpose (a file named "down").
//
// The thing keeps its token, so Observe restores a connection Secret that lost it; a
// token changed by hand counts as invalid credentials, and RotateCredentials issues a new
// one.
//
// Annotations on a capability steer it:
//   - testdriver.msp.dev/fail: "<message>" makes Create and Update fail with that
//     message, as a TenantError.
package testdriver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/msp-dev/msp/sdk/driver"
)

// AnnotationFail makes Create and Update fail with the annotation's value.
const AnnotationFail = "testdriver.msp.dev/fail"

// Options configure the driver.
type Options struct {
	// Dir is the state folder ("the runtime"). Required.
	Dir string
	// Runtime is the runtime's name, used in connection details.
	Runtime string
	// ProvisionDelay is how long a created thing takes to become ready.
	ProvisionDelay time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Driver keeps things as files.
type Driver struct {
	opts Options
	mu   sync.Mutex
}

// New returns a driver on opts.Dir, creating it.
func New(opts Options) (*Driver, error) {
	if opts.Dir == "" {
		return nil, errors.New("testdriver: a state folder is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "things"), 0o755); err != nil {
		return nil, err
	}
	return &Driver{opts: opts}, nil
}

// thing is what the driver keeps of one capability.
type thing struct {
	Key        string    `json:"key"`
	Generation int64     `json:"generation"`
	ReadyAt    time.Time `json:"readyAt"`
	Token      string    `json:"token"`
}

func key(c *driver.Capability) string {
	return c.Cluster + "_" + c.Object.GetKind() + "_" + c.Object.GetNamespace() + "_" + c.Object.GetName()
}

func (d *Driver) path(c *driver.Capability) string {
	k := key(c)
	if len(k) > 200 { // file names have at most 255 bytes
		sum := sha256.Sum256([]byte(k))
		k = hex.EncodeToString(sum[:])
	}
	return filepath.Join(d.opts.Dir, "things", k+".json")
}

func (d *Driver) read(c *driver.Capability) (*thing, error) {
	raw, err := os.ReadFile(d.path(c))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t thing
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

func (d *Driver) write(c *driver.Capability, t *thing) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	tmp := d.path(c) + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, d.path(c))
}

// Observe reads the thing's file.
func (d *Driver) Observe(_ context.Context, c *driver.Capability) (driver.Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.read(c)
	if err != nil || t == nil {
		return driver.Observation{}, err
	}
	ready := !d.opts.Now().Before(t.ReadyAt)
	obs := driver.Observation{
		Exists:   true,
		UpToDate: t.Generation == c.Object.GetGeneration(),
		Ready:    ready,
		ConnectionDetails: driver.ConnectionDetails{
			"endpoint": []byte(fmt.Sprintf("test://%s/%s/%s", d.opts.Runtime, c.Object.GetNamespace(), c.Object.GetName())),
		},
		Usage: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")},
	}
	if have, ok := c.ConnectionDetails["token"]; ok && string(have) != t.Token {
		obs.CredentialsInvalid = "the connection Secret's token is not the thing's"
	} else {
		obs.ConnectionDetails["token"] = []byte(t.Token)
	}
	if !ready {
		obs.Message = "provisioning"
	}
	return obs, nil
}

// Create writes the thing's file and logs the call in creates.log.
func (d *Driver) Create(_ context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	if msg := c.Object.GetAnnotations()[AnnotationFail]; msg != "" {
		return nil, driver.NewTenantError(msg)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.appendLog("creates.log", key(c)); err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	t := &thing{Key: key(c), Generation: c.Object.GetGeneration(), ReadyAt: d.opts.Now().Add(d.opts.ProvisionDelay), Token: hex.EncodeToString(b)}
	if err := d.write(c, t); err != nil {
		return nil, err
	}
	return driver.ConnectionDetails{"token": []byte(t.Token)}, nil
}

// RotateCredentials gives the thing a new token.
func (d *Driver) RotateCredentials(_ context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.read(c)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errors.New("testdriver: nothing to rotate")
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	t.Token = hex.EncodeToString(b)
	if err := d.write(c, t); err != nil {
		return nil, err
	}
	return driver.ConnectionDetails{"token": []byte(t.Token)}, nil
}

// Update records the spec generation it was brought in line with.
func (d *Driver) Update(_ context.Context, c *driver.Capability) error {
	if msg := c.Object.GetAnnotations()[AnnotationFail]; msg != "" {
		return driver.NewTenantError(msg)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.read(c)
	if err != nil || t == nil {
		return err
	}
	t.Generation = c.Object.GetGeneration()
	return d.write(c, t)
}

// Delete removes the thing's file and logs the call in deletes.log.
func (d *Driver) Delete(_ context.Context, c *driver.Capability) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.appendLog("deletes.log", key(c)); err != nil {
		return err
	}
	if err := os.Remove(d.path(c)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Probe fails while a file named "down" exists in the state folder.
func (d *Driver) Probe(context.Context) error {
	if raw, err := os.ReadFile(filepath.Join(d.opts.Dir, "down")); err == nil {
		msg := strings.TrimSpace(string(raw))
		if msg == "" {
			msg = "the runtime is down"
		}
		return errors.New(msg)
	}
	return nil
}

func (d *Driver) appendLog(name, line string) error {
	f, err := os.OpenFile(filepath.Join(d.opts.Dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, line)
	return err
}

// Calls counts the lines of creates.log or deletes.log that name a capability (by the
// suffix _<namespace>_<name>), for tests.
func Calls(dir, log, namespace, name string) int {
	raw, err := os.ReadFile(filepath.Join(dir, log))
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasSuffix(line, "_"+namespace+"_"+name) {
			n++
		}
	}
	return n
}
