//go:build probe

package probe

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/msp-dev/msp/e2e/framework"
)

// Q1d: a watch opened through the VW before the SA is deleted: does it keep delivering?
func TestQ1dWatchOutlivesRevocation(t *testing.T) {
	env := framework.Current(t)
	p := newProbe(t)
	prov := env.NewProvider(t)
	t1 := prov.NewTenant(t)
	tok := saWithVW(t, p, prov, "sl-w", "get", "list", "watch")
	vw := p.EndpointURL(prov.Path, prov.Export)
	url := vw + "/clusters/*" + pgdbs + "/postgresdatabases?watch=true"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	client := &http.Client{Transport: p.client.Transport} // no client timeout: a long watch
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("[sl-w] GET %s (a watch, no timeoutSeconds) => %d", url[len(p.Base):], resp.StatusCode)
	var mu sync.Mutex
	var events []string
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			var ev struct {
				Type   string
				Object map[string]any
			}
			_ = json.Unmarshal(sc.Bytes(), &ev)
			mu.Lock()
			events = append(events, time.Now().Format("15:04:05")+" "+ev.Type+" "+objectName(ev.Object))
			mu.Unlock()
		}
		mu.Lock()
		events = append(events, time.Now().Format("15:04:05")+" (stream ended: "+errString(sc.Err())+")")
		mu.Unlock()
	}()
	create := func(name string) {
		p.Do("tenant", p.Admin, "POST", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases", pgdb(name, "rt-a"), "")
	}
	create("before-revocation")
	time.Sleep(time.Second)
	p.Do("admin", p.Admin, "DELETE", "/clusters/"+prov.Path+"/api/v1/namespaces/default/serviceaccounts/sl-w", "", "")
	p.Do("admin", p.Admin, "DELETE", "/clusters/"+prov.Path+"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/sl-w", "", "")
	time.Sleep(12 * time.Second)
	p.Do("sl-w (new request)", tok, "GET", vw+"/clusters/*"+pgdbs+"/postgresdatabases", "", "")
	create("after-revocation-1")
	time.Sleep(20 * time.Second)
	create("after-revocation-2")
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("events on the watch opened before the SA and its binding were deleted:")
	for _, e := range events {
		t.Logf("        %s", e)
	}
}

func errString(err error) string {
	if err == nil {
		return "EOF"
	}
	return err.Error()
}
