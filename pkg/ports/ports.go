// Package ports finds free TCP ports for the processes msp starts on one machine.
package ports

import (
	"net"
	"strconv"
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
