// Package framework is the scheduler's plugin framework, in the spirit of kube-scheduler's:
// Filter plugins say whether a capability fits a runtime, Score plugins rank the runtimes
// that fit. The framework never talks to an API server: the controller around it reads
// the inputs (a Snapshot) and writes the decision.
package framework

import (
	"context"
	"fmt"
	"sync"
)

// Code is the outcome of a plugin call.
type Code int

const (
	// Success: the runtime fits (Filter) or was scored (Score).
	Success Code = iota
	// Unschedulable: the runtime does not fit; Reason says why, in a few words that are
	// counted across runtimes in the summary ("region not allowed").
	Unschedulable
	// Error: the plugin could not decide; the cycle fails and is retried.
	Error
)

// Status is what a plugin returns. A nil *Status means Success.
type Status struct {
	Code Code
	// Reason is a short, tenant-readable phrase for Unschedulable.
	Reason string
	// Err is set for Error.
	Err error
}

// IsSuccess reports whether s is nil or Success.
func (s *Status) IsSuccess() bool { return s == nil || s.Code == Success }

// NewUnschedulable says the runtime does not fit, for the given reason.
func NewUnschedulable(reason string) *Status { return &Status{Code: Unschedulable, Reason: reason} }

// AsError wraps an error into a Status.
func AsError(err error) *Status { return &Status{Code: Error, Err: err} }

func (s *Status) String() string {
	switch {
	case s.IsSuccess():
		return "success"
	case s.Code == Unschedulable:
		return s.Reason
	default:
		return fmt.Sprintf("error: %v", s.Err)
	}
}

// Plugin is a named scheduling plugin.
type Plugin interface {
	// Name is unique among plugins; it keys per-cycle state and score weights.
	Name() string
}

// FilterPlugin says whether a capability can run on a runtime.
type FilterPlugin interface {
	Plugin
	// Filter returns nil (or Success) when c fits r, Unschedulable with a reason when it
	// does not, Error when it cannot tell.
	Filter(ctx context.Context, state *CycleState, c *Capability, r *RuntimeInfo) *Status
}

// PreScorePlugin sees all feasible runtimes before scoring, to compute shared state.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, c *Capability, feasible []*RuntimeInfo) *Status
}

// MaxScore is the highest score a ScorePlugin may return; the lowest is 0.
const MaxScore int64 = 100

// ScorePlugin ranks a feasible runtime for a capability, from 0 to MaxScore.
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, c *Capability, r *RuntimeInfo) (int64, *Status)
}

// CycleState is per-cycle scratch space, keyed by plugin name. It is safe for
// concurrent use.
type CycleState struct {
	mu   sync.RWMutex
	data map[string]any
}

// NewCycleState returns empty cycle state.
func NewCycleState() *CycleState { return &CycleState{data: map[string]any{}} }

// Write stores a plugin's state under its name.
func (s *CycleState) Write(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[key] = v
}

// Read returns a plugin's state, and whether there was any.
func (s *CycleState) Read(key string) (any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok
}
