package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/msp-dev/msp/pkg/child"
)

// process is a platform component msp-local runs next to kcp, as it would run elsewhere:
// its own binary, its own log file.
type process struct {
	*child.Process
	name string
	log  string
	done <-chan struct{}
}

// startProcess starts the binary next to msp-local with args, logging to home/logs/name.log.
func startProcess(home, name, binary string, args ...string) (*process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join(home, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".log")
	p, err := child.Start(filepath.Join(filepath.Dir(exe), binary), args, logPath)
	if err != nil {
		return nil, err
	}
	return &process{Process: p, name: name, log: logPath, done: p.Done()}, nil
}

// stop sends SIGTERM and waits up to 15s before killing.
func (p *process) stop() { p.Stop(15 * time.Second) }
