package frontdoor

import (
	"context"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// One host is kcp's own URL (no tokens); once two hosts were seen, kcp is sharded and
// every endpoint gets its shard's token, also in a slice that lists one region's shard.
func TestRoutesTokens(t *testing.T) {
	kcp, _ := url.Parse("https://kcp.example:6443")
	started := 0
	r := &routes{ctx: context.Background(), kcp: kcp, accounts: &fakeView{}, routes: map[string]*route{},
		start: func(context.Context, string) (view, error) { started++; return &fakeView{}, nil }}
	u := func(s string) *url.URL { p, _ := url.Parse(s + "/services/apiexport/c/e"); return p }
	if err := r.follow([]*url.URL{u("https://shard-0.internal:6443")}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]bool{"": true}, r.listed); diff != "" {
		t.Errorf("one host: listed (-want +got):\n%s", diff)
	}
	tokens, err := r.tokens([]*url.URL{u("https://shard-0.internal:6443"), u("https://shard-1.internal:6443")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shard-0.internal:6443": shardToken("https://shard-0.internal:6443"), "shard-1.internal:6443": shardToken("https://shard-1.internal:6443")}
	if diff := cmp.Diff(want, tokens); diff != "" {
		t.Errorf("two hosts: tokens (-want +got):\n%s", diff)
	}
	tokens, err = r.tokens([]*url.URL{u("https://shard-1.internal:6443")})
	if err != nil {
		t.Fatal(err)
	}
	if tokens["shard-1.internal:6443"] != want["shard-1.internal:6443"] {
		t.Errorf("a one-region slice of a sharded kcp: tokens %v, want shard-1's token", tokens)
	}
	rt, ok := r.get(want["shard-1.internal:6443"])
	if !ok || rt.base.String() != "https://shard-1.internal:6443" {
		t.Errorf("shard-1's route: %+v, %v", rt, ok)
	}
	if started != 3 {
		t.Errorf("%d caches started, want 3 (kcp's URL, shard-0, shard-1)", started)
	}
}
