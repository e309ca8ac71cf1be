package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Users get a token line each, once; the platform's admin line stays first and unchanged.
func TestEnsureUserTokens(t *testing.T) {
	dir := t.TempDir()
	platform, err := platformToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // a second start adds nothing
		if err := ensureUserTokens(dir, []string{"acme-admin", "globex-admin"}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, tokensFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], platform+",msp-platform,") {
		t.Fatalf("token file:\n%s", raw)
	}
	for i, u := range []string{"acme-admin", "globex-admin"} {
		f := strings.Split(lines[i+1], ",")
		if len(f) != 4 || f[1] != u || f[3] != `"msp:users"` || len(f[0]) < 32 || strings.Contains(lines[i+1], "system:kcp:admin") {
			t.Errorf("line for %s = %q", u, lines[i+1])
		}
	}
	if again, err := platformToken(dir); err != nil || again != platform {
		t.Errorf("platform token changed to %q (%v)", again, err)
	}
	if err := ensureUserTokens(dir, []string{"bad,name"}); err == nil {
		t.Errorf("a user name with a comma was accepted")
	}
}
