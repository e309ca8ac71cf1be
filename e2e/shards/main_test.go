// Package shards runs msp on a sharded kcp: a root shard and shard-1 behind kcp's front
// proxy, with kcp's cache server. The platform's and the providers' workspaces are on
// root (shard-1 takes no workspace until a test places one there by its label). root is
// in region eu-de, shard-1 in eu-fr.
package shards

import (
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

func TestMain(m *testing.M) {
	framework.MainWith(m, framework.Options{
		Shards: 2,
		ShardLabels: map[string]map[string]string{
			"root":    {framework.ShardLabel: "root", "region": "eu-de"},
			"shard-1": {framework.ShardLabel: "shard-1", "region": "eu-fr"},
		},
		Unschedulable: []string{"shard-1"},
	})
}
