package launcher

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/msp-dev/msp/pkg/ports"
)

func TestChoosePortsRecordsAndReuses(t *testing.T) {
	opts := Options{DataDir: t.TempDir(), BindAddress: "127.0.0.1"}
	first, err := choosePorts(opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Secure == 0 || first.EtcdClient == 0 || first.EtcdPeer == 0 {
		t.Fatalf("ports not chosen: %+v", first)
	}
	second, err := choosePorts(opts)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second start chose %+v, want the recorded %+v", second, first)
	}

	// A recorded port that is taken means another kcp on the same folder: say so.
	// (If someone else took it meanwhile, it is just as taken.)
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first.Secure))); err == nil {
		defer l.Close()
	}
	if _, err := choosePorts(opts); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("err = %v, want one saying the recorded port is in use", err)
	}
}

func TestChoosePortsHonoursFixedPort(t *testing.T) {
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := choosePorts(Options{DataDir: t.TempDir(), BindAddress: "127.0.0.1", SecurePort: port})
	if err != nil {
		t.Fatal(err)
	}
	if got.Secure != port {
		t.Errorf("secure port = %d, want %d", got.Secure, port)
	}
}

func TestStartWithoutBinarySaysWhatToDo(t *testing.T) {
	_, err := Start(t.Context(), Options{DataDir: t.TempDir(), Binary: "/nonexistent/kcp"})
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("err = %v, want one pointing at 'make tools'", err)
	}
}
