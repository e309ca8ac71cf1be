// Command msp-conformance runs seed 004's validation flow (package conformance) against
// a provider on a kcp that runs msp, prints a pass/fail table with the reason for each
// failure, optionally writes JUnit XML, and exits 0 only when every step passed.
//
//	msp-conformance --kubeconfig admin.kubeconfig \
//	  --service-provider serviceprovider.yaml --export-dir apiexport/ \
//	  --samples samples/ --check 'psql "$CONNECTION_URI" -c "select 1"' --junit junit.xml
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/conformance"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

func main() {
	var kubeconfig, spFile, exportDir, samples, check, junit, kubectl string
	var timeout time.Duration
	var keep bool
	pflag.StringVar(&kubeconfig, "kubeconfig", "", "The operator's kubeconfig (ServiceProviders in root:platform, tenant workspaces in root:tenants).")
	pflag.StringVar(&spFile, "service-provider", "", "The provider's ServiceProvider manifest. Required.")
	pflag.StringVar(&exportDir, "export-dir", "", "The provider's APIResourceSchemas and APIExport, published in ASSESS 1 (empty: already published).")
	pflag.StringVar(&samples, "samples", "", "A file or folder of sample capability manifests, ordered in ASSESS 2. Required.")
	pflag.StringVar(&check, "check", "", "A shell command for ASSESS 3, run with the connection Secret's keys as CONNECTION_<KEY> (e.g. CONNECTION_URI).")
	pflag.StringVar(&junit, "junit", "", "Write JUnit XML here.")
	pflag.StringVar(&kubectl, "kubectl", "kubectl", "The kubectl binary.")
	pflag.DurationVar(&timeout, "timeout", 3*time.Minute, "How long each wait may take.")
	pflag.BoolVar(&keep, "keep-provider", false, "Do not delete the ServiceProvider (skip ASSESS 4).")
	pflag.Parse()
	if spFile == "" || samples == "" {
		fmt.Fprintln(os.Stderr, "msp-conformance: --service-provider and --samples are required")
		os.Exit(2)
	}
	if err := run(kubeconfig, spFile, exportDir, samples, check, junit, kubectl, timeout, keep); err != nil {
		fmt.Fprintln(os.Stderr, "msp-conformance:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, spFile, exportDir, samplesPath, check, junit, kubectl string, timeout time.Duration, keep bool) error {
	cfg, err := kcpconfig.Load(kubeconfig, "")
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(spFile)
	if err != nil {
		return err
	}
	sp := &onboardingv1alpha1.ServiceProvider{}
	if err := yaml.UnmarshalStrict(raw, sp); err != nil {
		return fmt.Errorf("%s: %w", spFile, err)
	}
	var export []*unstructured.Unstructured
	if exportDir != "" {
		if export, err = conformance.ReadManifests(exportDir); err != nil {
			return err
		}
	}
	samples, err := conformance.ReadManifests(samplesPath)
	if err != nil {
		return err
	}
	if len(samples) == 0 {
		return fmt.Errorf("no sample manifests in %s", samplesPath)
	}
	opts := conformance.Options{Config: cfg, Kubectl: kubectl, ServiceProvider: sp, Export: export, Samples: samples, Timeout: timeout, KeepProvider: keep}
	if check != "" {
		opts.Check = func(ctx context.Context, secret map[string][]byte) error {
			cmd := exec.CommandContext(ctx, "sh", "-c", check)
			cmd.Env = os.Environ()
			for k, v := range secret {
				cmd.Env = append(cmd.Env, "CONNECTION_"+strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(k))+"="+string(v))
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v: %s", check, err, strings.TrimSpace(string(out)))
			}
			return nil
		}
	}
	rep := conformance.Run(opts)
	fmt.Print(rep.Table())
	if junit != "" {
		if err := os.WriteFile(junit, rep.JUnit(), 0o644); err != nil {
			return err
		}
	}
	if !rep.Passed() {
		return fmt.Errorf("provider %s does not conform", sp.Name)
	}
	return nil
}
