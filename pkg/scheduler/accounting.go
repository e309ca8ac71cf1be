package scheduler

import (
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// allocation is one capability's claim on a runtime.
type allocation struct {
	runtime   string
	requests  corev1.ResourceList
	tenantKey string
	at        time.Time
}

// usage is what one runtime hosts.
type usage struct {
	allocated corev1.ResourceList
	count     int
	perTenant map[string]int
}

// Accounting knows what every runtime hosts: the capabilities observed assigned to it
// (from the informers over every bound workspace) plus the decisions this scheduler made
// that the informers have not shown yet (assumed). Counting the assumed ones is what
// keeps a burst from overfilling a runtime before its servicelet, or even the cache,
// has caught up.
//
// A capability counts once: as observed when the cache shows it assigned, else as
// assumed. Per-runtime sums are kept up to date on every change, so a snapshot costs
// O(runtimes), not O(capabilities). It is safe for concurrent use.
//
// Reservations other coordinator replicas recorded on a runtime's twin (see
// Reservations) count too, for the capabilities that are neither observed nor assumed
// here, until they expire.
type Accounting struct {
	mu        sync.Mutex
	observed  map[string]allocation
	assumed   map[string]allocation
	effective map[string]allocation
	runtimes  map[string]*usage

	// reservationTTL is how long a reservation counts; now is the clock.
	reservationTTL time.Duration
	now            func() time.Time
	// parsed holds each runtime's reservations as last read, by runtime name.
	parsed map[string]parsedReservations
}

// parsedReservations are a runtime's reservations as of one resourceVersion.
type parsedReservations struct {
	resourceVersion string
	entries         map[string]Reservation
}

// NewAccounting returns empty accounting.
func NewAccounting() *Accounting {
	return &Accounting{
		observed:       map[string]allocation{},
		assumed:        map[string]allocation{},
		effective:      map[string]allocation{},
		runtimes:       map[string]*usage{},
		reservationTTL: time.Minute,
		now:            time.Now,
		parsed:         map[string]parsedReservations{},
	}
}

// reservationsOf returns rt's reservations, parsed once per resourceVersion. Callers
// hold mu.
func (a *Accounting) reservationsOf(rt *platformv1alpha1.ServiceRuntime) map[string]Reservation {
	if rt.Annotations[platformv1alpha1.AnnotationReservations] == "" {
		delete(a.parsed, rt.Name)
		return nil
	}
	if p, ok := a.parsed[rt.Name]; ok && p.resourceVersion == rt.ResourceVersion && rt.ResourceVersion != "" {
		return p.entries
	}
	entries, _ := ParseReservations(rt) // a malformed record counts nothing
	a.parsed[rt.Name] = parsedReservations{resourceVersion: rt.ResourceVersion, entries: entries}
	return entries
}

// Observe records what the cache shows for a capability: assigned to runtime, or to none
// when runtime is empty. An observed assignment replaces any assumption; an unassigned
// observation leaves an assumption in place, as the cache may not have caught up yet.
func (a *Accounting) Observe(key, runtime string, requests corev1.ResourceList, tenantKey string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if runtime == "" {
		delete(a.observed, key)
	} else {
		a.observed[key] = allocation{runtime: runtime, requests: requests, tenantKey: tenantKey}
		delete(a.assumed, key)
	}
	a.recompute(key)
}

// Delete forgets a capability that is gone.
func (a *Accounting) Delete(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.observed, key)
	delete(a.assumed, key)
	a.recompute(key)
}

// DeletePrefix forgets every capability whose key starts with prefix (a workspace that
// left the export).
func (a *Accounting) DeletePrefix(prefix string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key := range a.effective {
		if strings.HasPrefix(key, prefix) {
			delete(a.observed, key)
			delete(a.assumed, key)
			a.recompute(key)
		}
	}
	for key := range a.observed {
		if strings.HasPrefix(key, prefix) {
			delete(a.observed, key)
		}
	}
}

// Assume records a decision before the cache shows it.
func (a *Accounting) Assume(key, runtime string, requests corev1.ResourceList, tenantKey string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.observed[key]; ok {
		return // the cache already shows an assignment; that is the truth
	}
	a.assumed[key] = allocation{runtime: runtime, requests: requests, tenantKey: tenantKey, at: now}
	a.recompute(key)
}

// Forget drops an assumption whose decision did not land.
func (a *Accounting) Forget(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.assumed, key)
	a.recompute(key)
}

// Expire drops assumptions older than ttl, for decisions the cache never confirmed
// (the object was deleted before its event arrived, say). It returns how many it dropped.
func (a *Accounting) Expire(now time.Time, ttl time.Duration) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for key, as := range a.assumed {
		if now.Sub(as.at) > ttl {
			delete(a.assumed, key)
			a.recompute(key)
			n++
		}
	}
	return n
}

// Assumed returns how many decisions are not yet visible in the cache.
func (a *Accounting) Assumed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.assumed)
}

// Count returns how many capabilities count on runtime.
func (a *Accounting) Count(runtime string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if u := a.runtimes[runtime]; u != nil {
		return u.count
	}
	return 0
}

// RuntimeOf returns the runtime a capability counts on, if any.
func (a *Accounting) RuntimeOf(key string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.effective[key].runtime
}

// On returns the keys of the capabilities that count on runtime (observed or assumed),
// sorted. It walks every capability: for the rare runtime being removed, not for a
// decision.
func (a *Accounting) On(runtime string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runtimes[runtime] == nil {
		return nil
	}
	var keys []string
	for key, al := range a.effective {
		if al.runtime == runtime {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	return keys
}

// Hosted returns how many capabilities count on rt, by workspace (the cluster of their
// keys): those On counts, and the unexpired reservations on rt of capabilities it does
// not count yet, as Snapshot counts them. Nil when none.
func (a *Accounting) Hosted(rt *platformv1alpha1.ServiceRuntime) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out map[string]int
	add := func(key string) {
		if out == nil {
			out = map[string]int{}
		}
		cluster, _, _ := strings.Cut(key, "|")
		out[cluster]++
	}
	if a.runtimes[rt.Name] != nil {
		for key, al := range a.effective {
			if al.runtime == rt.Name {
				add(key)
			}
		}
	}
	now := a.now()
	for key, r := range a.reservationsOf(rt) {
		if _, counted := a.effective[key]; counted || now.Sub(time.Unix(r.At, 0)) > a.reservationTTL {
			continue
		}
		add(key)
	}
	return out
}

// recompute moves key's contribution to what observed/assumed now say. Callers hold mu.
func (a *Accounting) recompute(key string) {
	want, ok := a.observed[key]
	if !ok {
		want, ok = a.assumed[key]
	}
	if old, had := a.effective[key]; had {
		if ok && old.runtime == want.runtime && old.tenantKey == want.tenantKey && equalResources(old.requests, want.requests) {
			return
		}
		a.add(old, -1)
		delete(a.effective, key)
	}
	if ok {
		a.effective[key] = want
		a.add(want, +1)
	}
}

func (a *Accounting) add(al allocation, sign int) {
	u := a.runtimes[al.runtime]
	if u == nil {
		u = &usage{allocated: corev1.ResourceList{}, perTenant: map[string]int{}}
		a.runtimes[al.runtime] = u
	}
	u.count += sign
	u.perTenant[al.tenantKey] += sign
	if u.perTenant[al.tenantKey] == 0 {
		delete(u.perTenant, al.tenantKey)
	}
	for name, q := range al.requests {
		if !framework.Positive(q) {
			continue // never lowers an allocation (see framework.RequestsOf)
		}
		sum := u.allocated[name]
		if sign > 0 {
			sum.Add(q)
		} else {
			sum.Sub(q)
		}
		u.allocated[name] = sum
	}
	if u.count == 0 {
		delete(a.runtimes, al.runtime)
	}
}

// Snapshot combines the runtimes with what is allocated on them. The capability with key
// exclude is left out, so that a capability already counted on a runtime can be checked
// against it; PerTenant carries only the count for tenantKey. Runtimes come out sorted
// by name.
func (a *Accounting) Snapshot(runtimes []*platformv1alpha1.ServiceRuntime, exclude, tenantKey string) []*framework.RuntimeInfo {
	out := make([]*framework.RuntimeInfo, 0, len(runtimes))
	newest := framework.NewestHeartbeat(runtimes)
	a.mu.Lock()
	ex, hasEx := a.effective[exclude]
	for _, rt := range runtimes {
		info := &framework.RuntimeInfo{Runtime: rt, Allocated: corev1.ResourceList{}, PerTenant: map[string]int{}, NewestHeartbeat: newest}
		if u := a.runtimes[rt.Name]; u != nil {
			info.Count = u.count
			for name, q := range u.allocated {
				info.Allocated[name] = q.DeepCopy()
			}
			if n := u.perTenant[tenantKey]; n > 0 {
				info.PerTenant[tenantKey] = n
			}
		}
		a.addReservations(info, rt, exclude, tenantKey)
		if hasEx && ex.runtime == rt.Name {
			info.Count--
			if ex.tenantKey == tenantKey && info.PerTenant[tenantKey] > 0 {
				info.PerTenant[tenantKey]--
			}
			for name, q := range ex.requests {
				if !framework.Positive(q) {
					continue // not counted by add either
				}
				sum := info.Allocated[name]
				sum.Sub(q)
				info.Allocated[name] = sum
			}
		}
		out = append(out, info)
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Runtime.Name < out[j].Runtime.Name })
	return out
}

// addReservations counts on info the reservations of rt whose capabilities this
// accounting does not count otherwise. Callers hold mu.
func (a *Accounting) addReservations(info *framework.RuntimeInfo, rt *platformv1alpha1.ServiceRuntime, exclude, tenantKey string) {
	entries := a.reservationsOf(rt)
	if len(entries) == 0 {
		return
	}
	now := a.now()
	for key, r := range entries {
		if key == exclude || now.Sub(time.Unix(r.At, 0)) > a.reservationTTL {
			continue
		}
		if _, counted := a.effective[key]; counted {
			continue
		}
		info.Count++
		if r.Tenant == tenantKey && tenantKey != "" {
			info.PerTenant[tenantKey]++
		}
		for name, q := range r.Requests {
			if !framework.Positive(q) {
				continue
			}
			sum := info.Allocated[name]
			sum.Add(q)
			info.Allocated[name] = sum
		}
	}
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		if other, ok := b[name]; !ok || other.Cmp(q) != 0 {
			return false
		}
	}
	return true
}
