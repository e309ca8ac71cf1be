package launcher

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is one server process of a sharded kcp (a shard, the cache server, the front
// proxy): its log is a file of its own folder, and Options.Output with a prefix.
type process struct {
	name    string
	bin     string
	args    []string
	dir     string
	logFile string
	output  io.Writer

	mu       sync.Mutex
	cmd      *exec.Cmd
	log      *os.File
	done     chan struct{}
	err      error
	stopping bool
}

// start runs the process; onExit is called (in a goroutine of its own) when it exits,
// with whether stop asked it to.
func (p *process) start(onExit func(p *process, stopped bool)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logFile, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("launcher: failed to open the log of %s: %w", p.name, err)
	}
	var out io.Writer = logFile
	if p.output != nil {
		out = io.MultiWriter(logFile, &prefixWriter{prefix: "[" + p.name + "] ", w: p.output})
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so stop reaches every child; killed with us if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("launcher: failed to start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.log, p.done, p.err, p.stopping = cmd, logFile, done, nil, false
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		stopped := p.stopping
		p.mu.Unlock()
		close(done)
		if onExit != nil {
			onExit(p, stopped)
		}
	}()
	return nil
}

// running says whether the process was started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// exitErr is the process's exit error, once it has exited.
func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// doneCh is closed when the process exits (nil before it was started).
func (p *process) doneCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// stop sends SIGTERM to the process group, waits up to timeout for the process to exit,
// then kills the group. It is safe to call on a process that has exited.
func (p *process) stop(timeout time.Duration) { p.stopWhenSettled(timeout, nil) }

// settleGrace is how long a process whose settled func has reported true is given to
// exit on its own before it is killed.
const settleGrace = 5 * time.Second

// stopWhenSettled is stop that kills the process earlier, settleGrace after settled
// (when not nil) has started to report true: a kcp shard whose listeners and embedded
// etcd have shut down has nothing left to save, but it can wait for a request in flight
// (a watch of the front proxy that kcp does not count as long-running) until the
// request times out.
func (p *process) stopWhenSettled(timeout time.Duration, settled func() bool) {
	p.mu.Lock()
	cmd, done, log := p.cmd, p.done, p.log
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	p.mu.Unlock()
	pgid := -cmd.Process.Pid
	select {
	case <-done:
	default:
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		deadline := time.After(timeout)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var settledSince time.Time
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-deadline:
				_ = syscall.Kill(pgid, syscall.SIGKILL)
				<-done
				break wait
			case <-tick.C:
				if settled == nil {
					continue
				}
				if !settled() {
					settledSince = time.Time{}
				} else if settledSince.IsZero() {
					settledSince = time.Now()
				} else if time.Since(settledSince) >= settleGrace {
					_ = syscall.Kill(pgid, syscall.SIGKILL)
					<-done
					break wait
				}
			}
		}
	}
	// Whatever the process left in its group (nothing, normally) goes too.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	log.Close()
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// prefixWriter writes each line with a prefix (the name of the process it comes from).
type prefixWriter struct {
	prefix string
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.buf = append(pw.buf, b...)
	for {
		i := bytes.IndexByte(pw.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := io.WriteString(pw.w, pw.prefix+string(pw.buf[:i+1])); err != nil {
			return len(b), err
		}
		pw.buf = pw.buf[i+1:]
	}
	return len(b), nil
}
