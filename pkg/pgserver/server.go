package pgserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msp-dev/msp/pkg/ports"
)

// ErrNotInstalled says that no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): run hack/install-postgres.sh")

// Options configure a local PostgreSQL instance.
type Options struct {
	// Dir is the instance's folder: its state (server.json: port, superuser password,
	// where the data lives), its log (postgres.log) and, normally, its data (data/) and
	// socket folder (run/). Required. A second Start on the same Dir resumes the
	// same instance.
	Dir string
	// Port is the TCP port on 127.0.0.1. 0 picks a free one on first start and records
	// it in Dir, so that a restart reuses it.
	Port int
	// BinDir is the folder with initdb and postgres. Defaults to the newest
	// /usr/lib/postgresql/*/bin, else the folder of initdb on PATH.
	BinDir string
	// SuperPassword is the password of the superuser "postgres". Empty generates one on
	// first start and records it in Dir (mode 0600); a different one replaces it.
	SuperPassword string
	// StartTimeout bounds how long the server may take to accept connections.
	// Defaults to 60s.
	StartTimeout time.Duration
	// Durable keeps fsync on. Off by default: this is a development and test server,
	// whose data survives a crash of PostgreSQL or of the process that started it, but
	// not of the machine.
	Durable bool
	// Detach lets the server outlive the process that started it (a later Start
	// on the same Dir adopts it). By default the server is tied to the starting process:
	// when that process dies, even by SIGKILL or a test timeout, the kernel sends the
	// server SIGINT (fast shutdown), so no server is left behind.
	Detach bool
}

// Server is a local PostgreSQL instance listening on 127.0.0.1 only.
type Server struct {
	dir      string
	base     string // holds data/ and run/; Dir unless the postgres user cannot reach Dir
	dataDir  string
	binDir   string
	logPath  string
	port     int
	password string
	cred     *syscall.Credential // run server commands as this user; nil: as ourselves

	mu     sync.Mutex
	cmd    *exec.Cmd     // the postmaster when this process started it
	exited chan struct{} // closed when cmd has exited
}

// serverState is what Dir/server.json records between starts.
type serverState struct {
	Port          int    `json:"port"`
	SuperPassword string `json:"superPassword"`
	// Base is the folder that holds data/ and run/ (see placeBase).
	Base string `json:"base"`
}

const (
	stateFile = "server.json"
	logFile   = "postgres.log"
	// superuser is the name of the instance's superuser.
	superuser = "postgres"
)

// FindBinDir returns the folder of the newest installed PostgreSQL server binaries, or
// ErrNotInstalled.
func FindBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVersion := "", -1.0
	for _, m := range matches {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(m))), 64)
		if err != nil {
			continue
		}
		if v > bestVersion {
			best, bestVersion = filepath.Dir(m), v
		}
	}
	if best != "" {
		return best, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNotInstalled
}

// Start starts the instance in opts.Dir, creating it (initdb) on first use, and
// returns once it accepts connections. When the instance is running already (started by
// an earlier process with Detach, or by hand with pg_ctl), it is adopted.
//
// Run as root, the server runs as the system user "postgres" (PostgreSQL refuses to run
// as root), which must be able to reach its data folder. When a parent folder of Dir is
// closed to it (os.MkdirTemp and t.TempDir create 0700 folders), Start opens the
// parents that lie inside os.TempDir() for traversal only (o+x: no listing, no reading),
// and otherwise keeps the data in the postgres user's home folder
// (~postgres/msp/<hash of Dir>) instead, recording where in Dir. Run as another user, the
// server runs as that user and Dir is used as it is.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("postgres: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if opts.BinDir == "" {
		if opts.BinDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(opts.BinDir, "initdb")); err != nil {
		return nil, fmt.Errorf("postgres: no initdb in %s (%w): run hack/install-postgres.sh", opts.BinDir, err)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	s := &Server{dir: dir, binDir: opts.BinDir, logPath: filepath.Join(dir, logFile)}
	var pgUser *user.User
	if os.Geteuid() == 0 {
		if pgUser, err = user.Lookup(superuser); err != nil {
			return nil, fmt.Errorf("postgres: running as root, the server must run as the system user %q, which is missing (%w): run hack/install-postgres.sh", superuser, err)
		}
		uid, _ := strconv.ParseUint(pgUser.Uid, 10, 32)
		gid, _ := strconv.ParseUint(pgUser.Gid, 10, 32)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}

	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	fresh := st == nil
	if fresh {
		st = &serverState{}
		if st.Base, err = placeBase(dir, pgUser); err != nil {
			return nil, err
		}
		st.SuperPassword = opts.SuperPassword
		if st.SuperPassword == "" {
			st.SuperPassword = NewPassword()
		}
	}
	oldPassword := st.SuperPassword
	if opts.Port != 0 {
		st.Port = opts.Port
	}
	if st.Port == 0 {
		if st.Port, err = ports.Free("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	if err := writeState(dir, st); err != nil {
		return nil, err
	}
	s.base, s.port, s.password = st.Base, st.Port, st.SuperPassword
	s.dataDir = filepath.Join(s.base, "data")

	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err != nil {
		if err := s.initdb(); err != nil {
			return nil, err
		}
	}
	if err := s.writeConfig(opts.Durable); err != nil {
		return nil, err
	}

	if s.Running() {
		// Adopt the instance; it was configured when it started, so it must be
		// restarted to pick up a changed port.
		if err := s.waitReady(ctx, opts.StartTimeout); err != nil {
			return nil, err
		}
	} else {
		if err := s.start(opts.Detach); err != nil {
			return nil, err
		}
		if err := s.waitReady(ctx, opts.StartTimeout); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}

	if opts.SuperPassword != "" && opts.SuperPassword != oldPassword {
		if err := s.setSuperPassword(ctx, opts.SuperPassword); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// AdminURL is the superuser's URL of the instance's "postgres" database.
func (s *Server) AdminURL() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     net.JoinHostPort(s.Host(), strconv.Itoa(s.port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the instance's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Host is the address the instance listens on.
func (s *Server) Host() string { return "127.0.0.1" }

// DataDir is the instance's data folder (PGDATA).
func (s *Server) DataDir() string { return s.dataDir }

// LogPath is the file the server logs into.
func (s *Server) LogPath() string { return s.logPath }

// Stop shuts the instance down (fast: open sessions are ended) and waits for it. Stopping
// a stopped instance succeeds. It also stops an adopted instance, through pg_ctl.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
			select {
			case <-s.exited:
			case <-time.After(60 * time.Second):
				_ = s.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
				select {
				case <-s.exited:
				case <-time.After(10 * time.Second):
					_ = s.cmd.Process.Kill()
					<-s.exited
				}
			}
		}
		s.cmd = nil
	}
	if !s.Running() {
		return nil
	}
	out, err := s.command("pg_ctl", "stop", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60").CombinedOutput()
	if err != nil && s.Running() {
		return fmt.Errorf("postgres: pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// running says whether a server runs on the data folder.
// Running reports whether the server's postmaster runs (pg_ctl status), whoever
// started or stopped it.
func (s *Server) Running() bool {
	// pg_ctl status: 0 running, 3 not running, 4 no data folder.
	return s.command("pg_ctl", "status", "-D", s.dataDir).Run() == nil
}

// command runs a PostgreSQL binary as the server's user, in a folder that user can reach,
// with an environment that no PG* variable of ours leaks into.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.base
	env := []string{"LC_ALL=C"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *Server) initdb() error {
	for _, d := range []string{s.dataDir, filepath.Join(s.base, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := s.chown(d); err != nil {
			return err
		}
	}
	pwfile := filepath.Join(s.base, ".pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := s.chown(pwfile); err != nil {
		return err
	}
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := s.command("initdb", "-D", s.dataDir, "-U", superuser, "--pwfile", pwfile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("postgres: initdb in %s: %w%s", s.dataDir, err, s.logTail())
	}
	// postgresql.conf includes msp.conf, which writeConfig rewrites on every start.
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "\n# Written by msp (pkg/pgserver): listen address, port, socket folder.\ninclude_if_exists = 'msp.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeConfig writes data/msp.conf: listen on 127.0.0.1:port only, with the socket in a
// folder of our own (not /var/run/postgresql).
func (s *Server) writeConfig(durable bool) error {
	sockDir := filepath.Join(s.base, "run")
	if err := os.MkdirAll(sockDir, 0o700); err != nil {
		return err
	}
	if err := s.chown(sockDir); err != nil {
		return err
	}
	// A Unix socket path is limited to 107 bytes; without a socket the server is reached
	// over TCP only, which is all msp uses.
	if len(sockDir)+len("/.s.PGSQL.65535.lock") > 107 {
		sockDir = ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by msp (pkg/pgserver) on every start.\n")
	fmt.Fprintf(&b, "listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "port = %d\n", s.port)
	fmt.Fprintf(&b, "unix_socket_directories = %s\n", confString(sockDir))
	fmt.Fprintf(&b, "password_encryption = 'scram-sha-256'\n")
	if !durable {
		fmt.Fprintf(&b, "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
	}
	path := filepath.Join(s.dataDir, "msp.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return s.chown(path)
}

// start runs the postmaster as a child of this process, logging into Dir/postgres.log.
func (s *Server) start(detach bool) error {
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own copy
	cmd := s.command("postgres", "-D", s.dataDir)
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if detach {
		cmd.SysProcAttr.Setsid = true
	} else {
		// Its own process group, so that a Ctrl-C meant for us reaches it only through
		// Stop; and SIGINT (fast shutdown) when we die. Go sets the parent-death signal
		// after switching to the postgres user, so the switch does not clear it. (Linux
		// sends it when the starting OS thread ends; Go ends threads only for goroutines
		// that exit while locked to theirs: do not call Start from one of those.)
		cmd.SysProcAttr.Setpgid = true
		cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: starting the server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// waitReady pings the server until it answers, it exits, or the timeout passes.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		s.mu.Lock()
		exited := s.exited
		s.mu.Unlock()
		if exited != nil {
			select {
			case <-exited:
				return fmt.Errorf("postgres: the server on %s exited while starting%s", s.dataDir, s.logTail())
			default:
			}
		}
		if last = s.ping(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: the server on 127.0.0.1:%d does not accept connections after %s (%v)%s", s.port, timeout, last, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

func (s *Server) setSuperPassword(ctx context.Context, password string) error {
	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var pw string
	err = conn.QueryRow(ctx, `SELECT quote_literal($1::text)`, password).Scan(&pw)
	if err == nil {
		_, err = conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{superuser}.Sanitize()+" PASSWORD "+pw)
	}
	if err != nil {
		return fmt.Errorf("postgres: changing the superuser password: %w", err)
	}
	s.password = password
	st, err := readState(s.dir)
	if err != nil || st == nil {
		return fmt.Errorf("postgres: rereading %s: %v", stateFile, err)
	}
	st.SuperPassword = password
	return writeState(s.dir, st)
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Lchown(path, int(s.cred.Uid), int(s.cred.Gid))
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 4096
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	raw, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	tail := strings.TrimSpace(strings.Join(lines, "\n"))
	if tail == "" {
		return ""
	}
	return "; end of " + s.logPath + ":\n" + tail
}

// placeBase decides where data/ and run/ live. Without a postgres user (not root) that is
// Dir. With one, it must be able to traverse every folder down to Dir: the ones it
// cannot and that lie inside os.TempDir() (0700 folders of os.MkdirTemp, t.TempDir) get
// o+x (traversal only), and when others block the way, the data lives in the postgres
// user's home folder instead.
func placeBase(dir string, pgUser *user.User) (string, error) {
	if pgUser == nil {
		return dir, nil
	}
	blocked, err := untraversable(dir, pgUser)
	if err != nil {
		return "", err
	}
	if len(blocked) == 0 {
		return dir, nil
	}
	tmp, _ := filepath.EvalSymlinks(os.TempDir())
	if tmp == "" {
		tmp = filepath.Clean(os.TempDir())
	}
	openable := true
	for _, b := range blocked {
		if b != dir && !strings.HasPrefix(b, tmp+string(filepath.Separator)) {
			openable = false
		}
	}
	if openable {
		for _, b := range blocked {
			fi, err := os.Stat(b)
			if err != nil {
				return "", err
			}
			if err := os.Chmod(b, fi.Mode().Perm()|0o001); err != nil {
				return "", fmt.Errorf("postgres: letting the postgres user through %s: %w", b, err)
			}
		}
		return dir, nil
	}
	sum := sha256.Sum256([]byte(dir))
	base := filepath.Join(pgUser.HomeDir, "msp", hex.EncodeToString(sum[:8]))
	if blocked, err := untraversable(pgUser.HomeDir, pgUser); err != nil || len(blocked) > 0 {
		return "", fmt.Errorf("postgres: the postgres user can reach neither %s nor its home folder %s; use a Dir it can reach", dir, pgUser.HomeDir)
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Lchown(d, uid, gid); err != nil {
			return "", err
		}
	}
	return base, nil
}

// untraversable lists the folders from / down to dir (included) that u cannot traverse.
func untraversable(dir string, u *user.User) ([]string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gids := map[uint64]bool{}
	groups, _ := u.GroupIds()
	for _, g := range append(groups, u.Gid) {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			gids[n] = true
		}
	}
	var blocked []string
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		var can bool
		switch {
		case !ok:
			can = mode&0o001 != 0
		case uint64(st.Uid) == uid:
			can = mode&0o100 != 0
		case gids[uint64(st.Gid)]:
			can = mode&0o010 != 0
		default:
			can = mode&0o001 != 0
		}
		if !can {
			blocked = append(blocked, p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	sort.Strings(blocked)
	return blocked, nil
}

func readState(dir string) (*serverState, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st serverState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("postgres: reading %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &st, nil
}

func writeState(dir string, st *serverState) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// NewPassword returns 32 URL-safe characters from crypto/rand.
func NewPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return base64.RawURLEncoding.EncodeToString(b)
}

// confString quotes a postgresql.conf string value.
func confString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
