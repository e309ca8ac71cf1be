// Package ports finds free TCP ports for the processes msp starts on one machine.
package ports

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Free returns a TCP port on host (e.g. "127.0.0.1") that is free right now. Another
// process may take it before the caller binds it; callers that can, retry.
func Free(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr returns host:port with a port that is free right now.
func FreeAddr(host string) (string, error) {
	p, err := Free(host)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// Kept returns the port recorded in file when it is free on host, else a free one,
// which it records: a process that starts again on the same state folder keeps its
// address, so that what points at it (a webhook, a kubeconfig) stays true.
func Kept(host, file string) (int, error) {
	if raw, err := os.ReadFile(file); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && p > 0 {
			if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
				l.Close()
				return p, nil
			}
		}
	}
	p, err := Free(host)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return 0, err
	}
	return p, os.WriteFile(file, []byte(strconv.Itoa(p)+"\n"), 0o600)
}
