// Package child runs a platform component as a child process: its output appended to a
// log file, in a process group of its own (a Ctrl-C in the parent's terminal reaches the
// parent only, which stops its children in order), killed when the parent dies, stopped
// gracefully with a bound, together with what it started in its group.
package child

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a started child.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts bin with args, appending its output to logPath. The child gets SIGKILL
// when the parent exits.
func Start(bin string, args []string, logPath string) (*Process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("failed to start %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Path is the started binary.
func (p *Process) Path() string { return p.cmd.Path }

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the child has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill kills the child's process group and waits for the child.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the child's process group and kills it if the child has not
// exited after grace.
func (p *Process) Stop(grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}
