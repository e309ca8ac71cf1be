// Command crd-descriptions rewrites the descriptions in CRDs that controller-gen generated,
// so that `kubectl explain` can wrap them to the terminal: controller-gen copies the Go doc
// comments with their line breaks, and kubectl prints those breaks where they fall, in the
// middle of a sentence. Within every description a single line break becomes a space; a
// blank line (a paragraph break) stays, and so does a break before a line that starts a
// list item ("- ", "* ") or is indented (preformatted text).
//
// Usage: go run ./hack/crd-descriptions DIR... (rewrites every *.yaml in each DIR in place).
// The YAML is written back the way controller-gen writes it (sigs.k8s.io/yaml, keys
// sorted, a leading "---"), so a second run changes nothing.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crd-descriptions DIR...")
		os.Exit(2)
	}
	for _, dir := range os.Args[1:] {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			fail(err)
		}
		if len(files) == 0 {
			fail(fmt.Errorf("no *.yaml in %s", dir))
		}
		for _, f := range files {
			if err := rewrite(f); err != nil {
				fail(fmt.Errorf("%s: %w", f, err))
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crd-descriptions:", err)
	os.Exit(1)
}

const docStart = "---\n"

func rewrite(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	body := bytes.TrimPrefix(in, []byte(docStart))
	if bytes.Contains(body, []byte("\n---\n")) {
		return fmt.Errorf("more than one YAML document; expected one CRD")
	}
	var crd map[string]any
	if err := yaml.Unmarshal(body, &crd); err != nil {
		return err
	}
	if crd["kind"] != "CustomResourceDefinition" {
		return fmt.Errorf("kind is %v, want CustomResourceDefinition", crd["kind"])
	}
	spec, _ := crd["spec"].(map[string]any)
	versions, _ := spec["versions"].([]any)
	for _, v := range versions {
		version, _ := v.(map[string]any)
		for _, c := range asList(version["additionalPrinterColumns"]) {
			unwrapIn(c)
		}
		if schema, ok := version["schema"].(map[string]any); ok {
			walkSchema(schema["openAPIV3Schema"])
		}
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return err
	}
	out = append([]byte(docStart), out...)
	if bytes.Equal(out, in) {
		return nil
	}
	return os.WriteFile(path, out, 0o644)
}

// walkSchema rewrites the description of a JSON schema and of every schema nested in it.
// It follows the schema's structure (rather than every key named "description"), so a
// property called "description" is a property, not a text.
func walkSchema(s any) {
	schema, ok := s.(map[string]any)
	if !ok {
		return
	}
	unwrapIn(schema)
	for _, key := range []string{"properties", "patternProperties", "definitions"} {
		if m, ok := schema[key].(map[string]any); ok {
			for _, sub := range m {
				walkSchema(sub)
			}
		}
	}
	for _, key := range []string{"items", "additionalProperties", "additionalItems", "not"} {
		switch sub := schema[key].(type) {
		case map[string]any:
			walkSchema(sub)
		case []any: // items may be a list of schemas
			for _, s := range sub {
				walkSchema(s)
			}
		}
	}
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		for _, sub := range asList(schema[key]) {
			walkSchema(sub)
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// unwrapIn rewrites m["description"] when it is a string.
func unwrapIn(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if d, ok := m["description"].(string); ok {
		m["description"] = unwrap(d)
	}
}

// unwrap joins the lines of each paragraph with spaces. Paragraphs (separated by one or
// more blank lines) stay separated by one blank line; a line that starts a list item or
// is indented keeps its own line.
func unwrap(d string) string {
	var b strings.Builder
	blank := false // a blank line came since the last text
	for i, line := range strings.Split(strings.TrimSpace(d), "\n") {
		line = strings.TrimRight(line, " \t")
		if line == "" {
			blank = true
			continue
		}
		switch {
		case i == 0:
		case blank:
			b.WriteString("\n\n")
		case keepsItsLine(line):
			b.WriteString("\n")
		default:
			b.WriteString(" ")
		}
		blank = false
		b.WriteString(line)
	}
	return b.String()
}

func keepsItsLine(line string) bool {
	if line[0] == ' ' || line[0] == '\t' {
		return true
	}
	return strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "* ")
}
