// Package plugins assembles the scheduler's default plugin set. Each plugin lives in a
// package of its own below this one.
package plugins

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msp-dev/msp/pkg/scheduler/framework"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/balancedallocation"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/capabilitykind"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/capacity"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/leastallocated"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/location"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/preferredregions"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/runtimeready"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/runtimeselector"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/tainttoleration"
	"github.com/msp-dev/msp/pkg/scheduler/plugins/zonespread"
)

// Options configure the default plugin set.
type Options struct {
	// Now is the clock for heartbeat ages; nil means time.Now.
	Now func() time.Time
	// HeartbeatTimeout is how old a runtime's heartbeat may be; 0 trusts the Ready
	// condition alone.
	HeartbeatTimeout time.Duration
	// HeartbeatLagTolerance bounds how long late heartbeats are blamed on a lagging
	// control plane when every runtime's is late (see runtimeready.Late); 0 never.
	HeartbeatLagTolerance time.Duration
	// Weights are score weights by plugin name; names left out take DefaultWeights. A
	// weight of 0 turns a score plugin off.
	Weights map[string]int64
}

// DefaultWeights are the score weights by plugin name. Preferred regions weigh most: a
// tenant who states a preference should get it while it fits, whatever the load.
var DefaultWeights = map[string]int64{
	leastallocated.Name:     1,
	balancedallocation.Name: 1,
	preferredregions.Name:   3,
	zonespread.Name:         2,
	tainttoleration.Name:    1,
}

// NewFramework returns a framework with the default filters and the score plugins
// weighted by o.Weights. It fails on a weight for an unknown score plugin and on a
// negative weight.
func NewFramework(o Options) (*framework.Framework, error) {
	taints := tainttoleration.New()
	// The cheap and most telling filters come first: a runtime's first failing filter
	// is the reason the tenant reads.
	filters := []framework.FilterPlugin{
		capabilitykind.New(),
		runtimeready.New(o.Now, o.HeartbeatTimeout, o.HeartbeatLagTolerance),
		location.New(),
		runtimeselector.New(),
		taints,
		capacity.New(),
	}
	all := []framework.ScorePlugin{
		leastallocated.New(),
		balancedallocation.New(),
		preferredregions.New(),
		zonespread.New(),
		taints,
	}
	known := make([]string, 0, len(all))
	for _, p := range all {
		known = append(known, p.Name())
	}
	for _, name := range slices.Sorted(maps.Keys(o.Weights)) {
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("no score plugin %q; the score plugins are %s", name, strings.Join(slices.Sorted(slices.Values(known)), ", "))
		}
		if w := o.Weights[name]; w < 0 {
			return nil, fmt.Errorf("weight of score plugin %q is %d; it must not be negative", name, w)
		}
	}
	var scores []framework.WeightedScorePlugin
	for _, p := range all {
		w, ok := o.Weights[p.Name()]
		if !ok {
			w = DefaultWeights[p.Name()]
		}
		if w == 0 {
			continue // spares its PreScore too
		}
		scores = append(scores, framework.WeightedScorePlugin{Plugin: p, Weight: w})
	}
	return framework.New(filters, scores), nil
}

// ParseWeights parses score weights written as "leastallocated=1,preferredregions=5", as
// a command-line flag takes them. Blanks around names and weights are ignored; an empty
// string is no weights. Whether the names exist is left to NewFramework.
func ParseWeights(s string) (map[string]int64, error) {
	out := map[string]int64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for entry := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(entry, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("score weight %q: want name=weight, e.g. leastallocated=1", strings.TrimSpace(entry))
		}
		if _, known := DefaultWeights[name]; !known {
			return nil, fmt.Errorf("score weight %q: no score plugin is called %q (known: %s)", strings.TrimSpace(entry), name, strings.Join(slices.Sorted(maps.Keys(DefaultWeights)), ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("score weight for %q given twice", name)
		}
		w, err := strconv.ParseInt(value, 10, 64)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("score weight %q: weight must be a whole number of 0 or more", strings.TrimSpace(entry))
		}
		out[name] = w
	}
	return out, nil
}
