// Command msp-scaffold writes a new provider module on msp's public SDK (package
// scaffold), then generates its code and resolves its modules:
//
//	msp-scaffold provider widgets --group widgets.example.dev --kind Widget \
//	  --out ../widgets --msp .
//
// The module it writes builds and passes msp's conformance kit with its skeleton
// driver as written (`make test` in it).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/msp-dev/msp/pkg/scaffold"
)

const usage = `usage: msp-scaffold provider NAME --group GROUP --kind KIND [--out DIR] [--module PATH] [--msp CHECKOUT]

Writes the provider module NAME: an API type of KIND in GROUP that embeds msp's
capability contract, a skeleton driver, the servicelet and coordinator mains, sample
manifests, a ServiceProvider manifest and a Makefile (make codegen, make test). Then
it runs make codegen with controller-gen and apigen from --tools and go mod tidy.
`

func main() {
	fs := pflag.NewFlagSet("msp-scaffold", pflag.ContinueOnError)
	var o scaffold.Options
	var tools string
	var skipGen bool
	fs.StringVar(&o.Group, "group", "", "The API group of the provider's export, e.g. widgets.example.dev. Required.")
	fs.StringVar(&o.Kind, "kind", "", "The capability kind, e.g. Widget. Required.")
	fs.StringVar(&o.Dir, "out", "", "The folder to write (default ./NAME); it must not exist or be empty.")
	fs.StringVar(&o.Module, "module", "", "The Go module path (default example.com/NAME).")
	fs.StringVar(&o.MSP, "msp", "", "An msp checkout to build against (a replace directive; its _bin serves make codegen and make test).")
	fs.StringVar(&o.MSPVersion, "msp-version", "", "The version of github.com/msp-dev/msp to require (default v0.0.0, with --msp).")
	fs.StringVar(&tools, "tools", "", "Folder with controller-gen and apigen (default: --msp's _bin, else this executable's folder).")
	fs.BoolVar(&skipGen, "skip-codegen", false, "Only write the sources; run make codegen and go mod tidy yourself.")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	args := fs.Args()
	if len(args) != 2 || args[0] != "provider" {
		fs.Usage()
		os.Exit(2)
	}
	o.Name = args[1]
	if o.Dir == "" {
		o.Dir = o.Name
	}
	files, err := scaffold.Write(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "msp-scaffold:", err)
		os.Exit(2)
	}
	fmt.Printf("wrote %d files of the provider %s into %s\n", len(files), o.Name, o.Dir)
	if skipGen {
		fmt.Printf("next: cd %s && make codegen && go mod tidy && make test\n", o.Dir)
		return
	}
	if tools == "" {
		tools = defaultTools(o.MSP)
	}
	for _, tool := range []string{"controller-gen", "apigen"} {
		if _, err := os.Stat(filepath.Join(tools, tool)); err != nil {
			fmt.Fprintf(os.Stderr, "msp-scaffold: %s is not in %s: build msp's tools (make tools in msp's checkout) and pass --tools <msp>/_bin, or --skip-codegen\n", tool, tools)
			os.Exit(1)
		}
	}
	// apigen names the schemas after the git revision: a new folder becomes a
	// repository with the written sources as its first commit.
	fresh := exec.Command("git", "rev-parse", "--short", "HEAD")
	fresh.Dir = o.Dir
	if fresh.Run() != nil {
		if err := git(o.Dir, "init", "-q"); err == nil {
			err = commit(o.Dir, "Scaffold the "+o.Name+" provider (msp-scaffold)")
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "msp-scaffold: making %s a git repository with a first commit (apigen names the schemas after the revision): %v\n", o.Dir, err)
			os.Exit(1)
		}
	}
	// The modules first (codegen loads the packages; -e: the generated files are not
	// there yet), then codegen, then the modules of the whole tree.
	steps := [][]string{{"go", "mod", "tidy", "-e"}, {"make", "--no-print-directory", "codegen", "MSP_BIN=" + tools}, {"go", "mod", "tidy"}, {"go", "build", "./..."}}
	for _, step := range steps {
		cmd := exec.Command(step[0], step[1:]...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = o.Dir, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "msp-scaffold: %s in %s: %v\n", strings.Join(step, " "), o.Dir, err)
			os.Exit(1)
		}
	}
	if fresh.ProcessState != nil && !fresh.ProcessState.Success() {
		if err := commit(o.Dir, "Generate the code of the "+o.Name+" provider (make codegen, go mod tidy)"); err != nil {
			fmt.Fprintf(os.Stderr, "msp-scaffold: committing the generated files: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Printf("generated and built; next: cd %s && make test\n", o.Dir)
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// commit commits everything in dir, as the user's git identity or else as msp-scaffold.
func commit(dir, message string) error {
	if err := git(dir, "add", "-A"); err != nil {
		return err
	}
	args := []string{"commit", "-q", "-m", message}
	if git(dir, "config", "user.email") != nil {
		args = append([]string{"-c", "user.name=msp-scaffold", "-c", "user.email=msp-scaffold@localhost"}, args...)
	}
	return git(dir, args...)
}

// defaultTools is the msp checkout's _bin, else the folder of this executable (which
// `make build` puts next to controller-gen and apigen).
func defaultTools(msp string) string {
	if msp != "" {
		abs, _ := filepath.Abs(filepath.Join(msp, "_bin"))
		return abs
	}
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	return filepath.Dir(exe)
}
