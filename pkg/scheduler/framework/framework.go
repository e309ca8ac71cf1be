package framework

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// WeightedScorePlugin is a ScorePlugin with its weight in the total.
type WeightedScorePlugin struct {
	Plugin ScorePlugin
	Weight int64
}

// Framework runs filter and score plugins over a snapshot.
type Framework struct {
	filters   []FilterPlugin
	preScores []PreScorePlugin
	scores    []WeightedScorePlugin
	// MaxCandidates is how many of the best runtimes a Result lists. Defaults to 3.
	MaxCandidates int
}

// New builds a framework. Filters run in the given order, and a runtime's first failing
// filter is the reason it does not fit, so put the cheap and the most telling first.
// Score plugins that also implement PreScorePlugin get their PreScore called.
func New(filters []FilterPlugin, scores []WeightedScorePlugin) *Framework {
	f := &Framework{filters: filters, scores: scores, MaxCandidates: 3}
	for _, s := range scores {
		if p, ok := s.Plugin.(PreScorePlugin); ok {
			f.preScores = append(f.preScores, p)
		}
	}
	return f
}

// Candidate is a runtime that fits, with its total weighted score.
type Candidate struct {
	Runtime *RuntimeInfo
	Score   int64
}

// Result is the outcome of one scheduling cycle.
type Result struct {
	// Chosen is the best runtime that fits, or nil when none does.
	Chosen *RuntimeInfo
	// Candidates are the best runtimes that fit, best first (at most MaxCandidates).
	Candidates []Candidate
	// Evaluated and Feasible count the runtimes looked at and the ones that fit.
	Evaluated, Feasible int
	// Reasons counts, per reason, the runtimes that did not fit.
	Reasons map[string]int
	// Unfit names, per runtime that did not fit, its reason. Only Explain fills it.
	Unfit map[string]string
	// Ranked are all runtimes that fit, best first. Only Explain fills it.
	Ranked []Candidate
	// Hint, when set, is appended to the Message of a result without Chosen: what the
	// tenant could ask for instead (the framework does not fill it; see
	// scheduler.LocationHint).
	Hint string
}

// Message summarizes the result for a tenant, e.g.
// "0/7 runtimes fit: 4 region not allowed, 2 insufficient capabilities, 1 not ready",
// followed by "; " and the Hint when nothing fits and there is one.
func (r *Result) Message() string {
	msg := r.summary()
	if r.Chosen == nil && r.Hint != "" {
		msg += "; " + r.Hint
	}
	return msg
}

func (r *Result) summary() string {
	if r.Evaluated == 0 {
		return "0/0 runtimes fit: no runtime is registered for this kind"
	}
	head := fmt.Sprintf("%d/%d runtimes fit", r.Feasible, r.Evaluated)
	if len(r.Reasons) == 0 {
		return head
	}
	type rc struct {
		reason string
		n      int
	}
	list := make([]rc, 0, len(r.Reasons))
	for reason, n := range r.Reasons {
		list = append(list, rc{reason, n})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].reason < list[j].reason
	})
	parts := make([]string, 0, len(list))
	for _, x := range list {
		parts = append(parts, fmt.Sprintf("%d %s", x.n, x.reason))
	}
	return head + ": " + strings.Join(parts, ", ")
}

// Schedule finds the best runtime for c in snap. An error means a plugin failed; a
// result without Chosen means nothing fits, and its Message says why.
func (f *Framework) Schedule(ctx context.Context, c *Capability, snap *Snapshot) (*Result, error) {
	return f.schedule(ctx, c, snap, false)
}

// Explain is Schedule that also reports every runtime's verdict (Unfit and Ranked), for
// an operator asking where a capability would land and why.
func (f *Framework) Explain(ctx context.Context, c *Capability, snap *Snapshot) (*Result, error) {
	return f.schedule(ctx, c, snap, true)
}

func (f *Framework) schedule(ctx context.Context, c *Capability, snap *Snapshot, explain bool) (*Result, error) {
	state := NewCycleState()
	res := &Result{Evaluated: len(snap.Runtimes), Reasons: map[string]int{}}
	if explain {
		res.Unfit = map[string]string{}
	}
	feasible := make([]*RuntimeInfo, 0, len(snap.Runtimes))
	for _, r := range snap.Runtimes {
		st := f.runFilters(ctx, state, c, r)
		switch {
		case st.IsSuccess():
			feasible = append(feasible, r)
		case st.Code == Unschedulable:
			res.Reasons[st.Reason]++
			if explain {
				res.Unfit[r.Name()] = st.Reason
			}
		default:
			return nil, fmt.Errorf("failed to filter runtime %s: %w", r.Name(), st.Err)
		}
	}
	res.Feasible = len(feasible)
	if len(feasible) == 0 {
		return res, nil
	}
	for _, p := range f.preScores {
		if st := p.PreScore(ctx, state, c, feasible); !st.IsSuccess() {
			return nil, fmt.Errorf("plugin %s failed to prepare scores: %v", p.Name(), st)
		}
	}
	cands := make([]Candidate, 0, len(feasible))
	for _, r := range feasible {
		var total int64
		for _, s := range f.scores {
			score, st := s.Plugin.Score(ctx, state, c, r)
			if !st.IsSuccess() {
				return nil, fmt.Errorf("plugin %s failed to score runtime %s: %v", s.Plugin.Name(), r.Name(), st)
			}
			total += s.Weight * clamp(score)
		}
		cands = append(cands, Candidate{Runtime: r, Score: total})
	}
	// Best score first; ties go to the runtime with fewer capabilities, then by name,
	// so a decision is deterministic for a given snapshot.
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.Runtime.Count != b.Runtime.Count {
			return a.Runtime.Count < b.Runtime.Count
		}
		return a.Runtime.Name() < b.Runtime.Name()
	})
	res.Chosen = cands[0].Runtime
	if explain {
		res.Ranked = cands
	}
	n := min(f.MaxCandidates, len(cands))
	res.Candidates = cands[:n:n]
	return res, nil
}

// Check runs the filters of one runtime, as for a runtime that a consumer named. It
// returns nil when c fits r.
func (f *Framework) Check(ctx context.Context, c *Capability, r *RuntimeInfo) *Status {
	st := f.runFilters(ctx, NewCycleState(), c, r)
	if st.IsSuccess() {
		return nil
	}
	return st
}

func (f *Framework) runFilters(ctx context.Context, state *CycleState, c *Capability, r *RuntimeInfo) *Status {
	for _, p := range f.filters {
		if st := p.Filter(ctx, state, c, r); !st.IsSuccess() {
			return st
		}
	}
	return nil
}

func clamp(s int64) int64 {
	if s < 0 {
		return 0
	}
	if s > MaxScore {
		return MaxScore
	}
	return s
}
