package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startServer starts a PostgreSQL instance for a test and stops it when the test ends.
// Without PostgreSQL installed, the test fails and says to run hack/install-postgres.sh.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Start(ctx, opts)
	if errors.Is(err, ErrNotInstalled) {
		t.Fatalf("these tests need a PostgreSQL server installed: run hack/install-postgres.sh (%v)", err)
	}
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping PostgreSQL: %v", err)
		}
	})
	return srv
}

func mustConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, Options{Dir: dir})
	port, url := srv.Port(), srv.AdminURL()
	if port == 0 || srv.Host() != "127.0.0.1" {
		t.Fatalf("listening on %s:%d", srv.Host(), port)
	}

	var listen string
	if err := mustConnect(t, url).QueryRow(context.Background(), "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1", listen)
	}
	fi, err := os.Stat(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600: it holds the superuser password", stateFile, fi.Mode().Perm())
	}

	// A wrong password is refused: host connections need scram-sha-256.
	badURL := "postgres://postgres:wrong@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, badURL); err == nil {
		_ = conn.Close(ctx)
		t.Error("connected with a wrong password")
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if conn, err := pgx.Connect(ctx, url); err == nil {
		_ = conn.Close(ctx)
		t.Fatal("the server still accepts connections after Stop")
	}

	// Restart on the same folder: same port, same password, same data.
	again := startServer(t, Options{Dir: dir})
	if again.Port() != port || again.AdminURL() != url {
		t.Errorf("restarted on port %d (%s), want %d (%s)", again.Port(), again.AdminURL(), port, url)
	}
	mustConnect(t, again.AdminURL())
}

// A server started with Detach outlives its Server (as it would outlive the process); a
// later Start on the same folder adopts it, and its Stop stops it through pg_ctl.
func TestServerAdopt(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, Options{Dir: dir, Detach: true})

	adopted := startServer(t, Options{Dir: dir})
	if adopted.Port() != first.Port() {
		t.Errorf("adopted on port %d, want %d", adopted.Port(), first.Port())
	}
	if adopted.cmd != nil {
		t.Error("started a second server instead of adopting the running one")
	}
	if err := adopted.Stop(); err != nil {
		t.Fatal(err)
	}
	if adopted.Running() || first.Running() {
		t.Error("the server still runs after Stop")
	}
}

// The server dies with the process that started it, even when that process is killed
// (as a test binary is on a timeout), so a killed test leaves no server behind.
func TestServerDiesWithItsProcess(t *testing.T) {
	if dir := os.Getenv("MSP_POSTGRES_TEST_CHILD_DIR"); dir != "" {
		srv, err := Start(context.Background(), Options{Dir: dir})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready", srv.Port())
		select {} // until killed
	}

	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithItsProcess$")
	child.Env = append(os.Environ(), "MSP_POSTGRES_TEST_CHILD_DIR="+dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "ready ") {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("the child process says %q", line)
	}
	// Should the server survive after all, adopt and stop it.
	t.Cleanup(func() {
		if srv, err := Start(context.Background(), Options{Dir: dir, StartTimeout: 5 * time.Second}); err == nil {
			_ = srv.Stop()
		}
	})
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	s := &Server{dir: dir}
	st, err := readState(dir)
	if err != nil || st == nil {
		t.Fatalf("reading the state: %v", err)
	}
	s.base, s.dataDir, s.binDir = st.Base, filepath.Join(st.Base, "data"), mustBinDir(t)
	if os.Geteuid() == 0 {
		s.cred = &syscall.Credential{Uid: ownerOf(t, s.dataDir), Gid: groupOf(t, s.dataDir)}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Running() {
		if time.Now().After(deadline) {
			t.Fatal("the server still runs 30s after the process that started it was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustBinDir(t *testing.T) string {
	t.Helper()
	bin, err := FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func ownerOf(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

func groupOf(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Gid
}
