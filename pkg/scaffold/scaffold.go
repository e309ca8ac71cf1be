// Package scaffold writes a new provider module on msp's public SDK: an API type that
// embeds the capability contract, its codegen wiring, a skeleton driver that keeps the
// contract, the servicelet and coordinator mains, sample manifests, a ServiceProvider
// manifest, and a Makefile whose `make test` runs the driver suite and msp's conformance
// kit. msp-scaffold is its command.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

//go:embed all:templates
var templates embed.FS

// Options say what provider to write.
type Options struct {
	// Name is the provider's name: its ServiceProvider, its workspace root:providers:<name>
	// and its binaries <name>-servicelet and <name>-coordinator. A DNS label.
	Name string
	// Group is the API group of its export, e.g. widgets.example.dev.
	Group string
	// Kind is its capability kind, e.g. Widget.
	Kind string
	// Module is the Go module path (default example.com/<name>).
	Module string
	// Dir is the folder to write; it must not exist or be empty.
	Dir string
	// MSP is the folder of an msp checkout the module builds against (a replace
	// directive), and whose _bin the Makefile takes kcp and the tools from. Empty: the
	// module requires github.com/msp-dev/msp at MSPVersion.
	MSP string
	// MSPVersion is the version of github.com/msp-dev/msp required (default v0.0.0,
	// which needs MSP).
	MSPVersion string
}

var (
	dnsLabel  = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	dnsDomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`)
	kindName  = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

// Validate says what is wrong with the options, all at once.
func (o *Options) Validate() error {
	var errs []error
	if !dnsLabel.MatchString(o.Name) || len(o.Name) > 40 {
		errs = append(errs, fmt.Errorf("provider name %q must be a DNS label of at most 40 characters (lower-case letters, digits and dashes, starting with a letter): it names the workspace root:providers:<name> and the binaries <name>-servicelet and <name>-coordinator", o.Name))
	}
	if !dnsDomain.MatchString(o.Group) || len(o.Group) > 63 {
		errs = append(errs, fmt.Errorf("--group %q must be a DNS subdomain with at least one dot, e.g. %s.example.dev", o.Group, o.Name))
	}
	if strings.HasSuffix(o.Group, ".msp.dev") || o.Group == "msp.dev" {
		errs = append(errs, fmt.Errorf("--group %q: msp.dev belongs to the platform; use a domain of the provider's own", o.Group))
	}
	if !kindName.MatchString(o.Kind) || len(o.Kind) > 63 {
		errs = append(errs, fmt.Errorf("--kind %q must be an upper-camel-case name of letters and digits, e.g. Widget", o.Kind))
	}
	if o.Dir == "" {
		errs = append(errs, errors.New("an output folder is required"))
	}
	return errors.Join(errs...)
}

// data is what the templates see.
type data struct {
	Options
	// Package is the Go package name of the provider's root package.
	Package string
	// KindLower and Plural name the kind's files and resource.
	KindLower, Plural string
	// Replace is the replace directive's target (MSP, absolute), or "".
	Replace string
}

// Plural is the resource name of a kind, as Kubernetes spells plurals.
func Plural(kind string) string {
	k := strings.ToLower(kind)
	switch {
	case strings.HasSuffix(k, "y") && len(k) > 1 && !strings.ContainsAny(k[len(k)-2:len(k)-1], "aeiou"):
		return k[:len(k)-1] + "ies"
	case strings.HasSuffix(k, "s"), strings.HasSuffix(k, "x"), strings.HasSuffix(k, "z"), strings.HasSuffix(k, "ch"), strings.HasSuffix(k, "sh"):
		return k + "es"
	}
	return k + "s"
}

// Write writes the provider module into o.Dir and returns the files it wrote, relative
// to it.
func Write(o Options) ([]string, error) {
	if o.Module == "" {
		o.Module = "example.com/" + o.Name
	}
	if o.MSPVersion == "" {
		o.MSPVersion = "v0.0.0"
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(o.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: msp-scaffold writes only into a new or empty folder", o.Dir)
	}
	d := data{Options: o, Package: strings.ReplaceAll(o.Name, "-", ""), KindLower: strings.ToLower(o.Kind), Plural: Plural(o.Kind)}
	if o.MSP != "" {
		abs, err := filepath.Abs(o.MSP)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(abs, "sdk", "driver")); err != nil {
			return nil, fmt.Errorf("--msp %s is not an msp checkout (no sdk/driver in it)", o.MSP)
		}
		d.Replace = abs
	}
	paths := strings.NewReplacer("__name__", o.Name, "__kind__", d.KindLower, "__group__", o.Group)
	var written []string
	root := "templates/provider"
	err := fs.WalkDir(templates, root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		raw, err := templates.ReadFile(path)
		if err != nil {
			return err
		}
		rel := paths.Replace(strings.TrimSuffix(strings.TrimPrefix(path, root+"/"), ".tmpl"))
		rel = strings.ReplaceAll(rel, "dot-", ".")
		tmpl, err := template.New(rel).Delims("[[", "]]").Parse(string(raw))
		if err != nil {
			return fmt.Errorf("template %s: %w", path, err)
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, d); err != nil {
			return fmt.Errorf("template %s: %w", path, err)
		}
		content := out.Bytes()
		if strings.HasSuffix(rel, ".go") {
			if content, err = format.Source(content); err != nil {
				return fmt.Errorf("%s does not format as Go (a bug of the template): %w", rel, err)
			}
		}
		target := filepath.Join(o.Dir, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(target, content, mode); err != nil {
			return err
		}
		written = append(written, rel)
		return nil
	})
	return written, err
}
