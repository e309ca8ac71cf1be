package main

import (
	"os"
	"strings"
	"testing"
)

// The README's quick start shows exactly what msp-local prints for a tenant.
func TestReadmeShowsTheWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "```sh\n" + Walkthrough("$PWD/.msp", "$PWD/_bin") + "```"
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not contain the walkthrough msp-local prints (cmd/msp-local/tenant.txt); want:\n%s", want)
	}
}
