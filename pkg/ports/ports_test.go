package ports

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
)

func TestKept(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "port")
	first, err := Kept("127.0.0.1", file)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Kept("127.0.0.1", file)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("second start got port %d, want the recorded %d", again, first)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken, err := Kept("127.0.0.1", file)
	if err != nil {
		t.Fatal(err)
	}
	if taken == first {
		t.Errorf("the recorded port %d is taken, yet Kept returned it", first)
	}
}
