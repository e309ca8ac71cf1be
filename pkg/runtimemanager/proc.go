package runtimemanager

import (
	"time"

	"github.com/msp-dev/msp/pkg/child"
)

// proc is a servicelet a procurement driver runs for one of its runtimes, as a child of
// the coordinator (it dies with it; the next Order starts it again).
type proc struct{ *child.Process }

// startProc starts bin with args, logging to logPath.
func startProc(bin string, args []string, logPath string) (*proc, error) {
	p, err := child.Start(bin, args, logPath)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

// running reports whether the process has not exited.
func (p *proc) running() bool { return p.Running() }

// stop lets the servicelet finish (SIGTERM), killing it after 15s.
func (p *proc) stop() { p.Stop(15 * time.Second) }
