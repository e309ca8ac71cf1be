package servicelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler"
	"github.com/msp-dev/msp/sdk/capability"
	"github.com/msp-dev/msp/sdk/driver"
)

// Version is reported in the runtime's status.serviceletVersion.
var Version = "v0.1.0-dev"

// syncGrace is how long after start a servicelet waits for its cache before it reports
// its runtime not Ready for want of one.
const syncGrace = 30 * time.Second

var errNotSynced = errors.New("the capability cache is not synced yet")

// Options configure a servicelet. Zero values take the documented defaults.
type Options struct {
	// Config addresses the provider workspace (the ServiceRuntime and the endpoint slice
	// live there). Required.
	Config *rest.Config
	// EndpointSlice is the provider's APIExportEndpointSlice. Required.
	EndpointSlice string
	// Runtime is the name of this servicelet's ServiceRuntime. Required.
	Runtime string
	// Register, when set, is the spec the ServiceRuntime is created with if it does
	// not exist. An existing runtime's spec is never changed by the servicelet.
	Register *platformv1alpha1.ServiceRuntimeSpec
	// Kinds the servicelet serves. Required.
	Kinds []capability.Kind
	// Drivers are the provider's, one for each of Kinds. Required.
	Drivers map[schema.GroupKind]driver.Driver
	// Probe reports on the runtime as a whole. Required.
	Probe driver.RuntimeProbe
	// HeartbeatInterval is how often the twin's status is written even when nothing
	// changed. Defaults to 10s.
	HeartbeatInterval time.Duration
	// Resync is how often a capability in line is observed again. Defaults to 1m.
	Resync time.Duration
	// Workers reconcile capabilities in parallel. Defaults to 16: a reconcile mostly
	// waits for kcp and the runtime, not for CPU.
	Workers int
	// NormalEvents records Normal events (Created, Updated, Deleted, Orphaned) on the
	// capabilities. Off by default: the conditions say the same, and in kcp each event
	// is a write through the virtual workspace. Warnings are always recorded.
	NormalEvents bool
	// DebugAddr serves /capabilities (what the cache holds, as JSON) and /healthz;
	// empty disables it.
	DebugAddr string
	// Log is the logger.
	Log logr.Logger
}

// Servicelet runs the source, the reconciler and the twin.
type Servicelet struct {
	opts       Options
	source     *Source
	reconciler *Reconciler
	queue      workqueue.TypedRateLimitingInterface[Key]
	client     client.Client
	changed    chan struct{}
	started    time.Time
	debugAddr  string
	listenerMu sync.Mutex
	// location is the runtime's, from its twin (or its registration until read).
	location atomic.Pointer[platformv1alpha1.Location]
}

// New validates opts and builds a servicelet.
func New(opts Options) (*Servicelet, error) {
	if opts.Config == nil || opts.EndpointSlice == "" || opts.Runtime == "" || len(opts.Kinds) == 0 || opts.Probe == nil {
		return nil, errors.New("servicelet: config, endpoint slice, runtime, kinds and probe are required")
	}
	var missing []string
	for _, k := range opts.Kinds {
		if opts.Drivers[k.GVK.GroupKind()] == nil {
			missing = append(missing, k.GVK.GroupKind().String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("servicelet: no driver for %s", strings.Join(missing, ", "))
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 10 * time.Second
	}
	if opts.Workers == 0 {
		opts.Workers = 16
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(platformv1alpha1.AddToScheme(scheme))
	c, err := client.New(opts.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[Key](500*time.Millisecond, maxErrorBackoff),
		workqueue.TypedRateLimitingQueueConfig[Key]{Name: "servicelet"},
	)
	s := &Servicelet{opts: opts, queue: queue, client: c, changed: make(chan struct{}, 1)}
	s.source = NewSource(opts.Config, opts.EndpointSlice, opts.Runtime, opts.Kinds, queue)
	s.reconciler = &Reconciler{Runtime: opts.Runtime, Drivers: opts.Drivers, Source: s.source, Resync: opts.Resync, Log: opts.Log, NormalEvents: opts.NormalEvents,
		Location: s.location.Load}
	if opts.Register != nil {
		loc := opts.Register.Location
		s.location.Store(&loc)
	}
	return s, nil
}

// Source is the servicelet's view of its capabilities.
func (s *Servicelet) Source() *Source { return s.source }

// Run runs until ctx ends. kcp being unreachable is retried with backoff; running
// capabilities are left alone meanwhile.
func (s *Servicelet) Run(ctx context.Context) error {
	s.started = time.Now()
	log := s.opts.Log.WithValues("runtime", s.opts.Runtime)
	ctx = logr.NewContext(ctx, log)
	if s.opts.DebugAddr != "" {
		if err := s.serveDebug(ctx); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.source.Start(ctx) }()
	go func() { defer wg.Done(); s.twin(ctx) }()
	if file := s.opts.Config.BearerTokenFile; file != "" {
		r := &tokenRenewer{cfg: s.opts.Config, file: file, log: log.WithName("credentials")}
		wg.Add(1)
		go func() { defer wg.Done(); r.run(ctx) }()
	}
	for i := 0; i < s.opts.Workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.work(ctx) }()
	}
	log.Info("servicelet running", "endpointSlice", s.opts.EndpointSlice, "version", Version)
	<-ctx.Done()
	s.queue.ShutDown()
	wg.Wait()
	return nil
}

func (s *Servicelet) work(ctx context.Context) {
	for {
		key, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		res, err := s.reconciler.Reconcile(ctx, key)
		switch {
		case err != nil:
			s.queue.AddRateLimited(key)
		case res.RequeueAfter > 0:
			s.queue.Forget(key)
			s.queue.AddAfter(key, res.RequeueAfter)
		default:
			s.queue.Forget(key)
		}
		s.queue.Done(key)
		s.notifyChanged()
	}
}

func (s *Servicelet) notifyChanged() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// twin keeps the ServiceRuntime true: registered, with a heartbeat every interval, and
// sooner (at most once a second) when what the runtime hosts changed.
func (s *Servicelet) twin(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx).WithName("twin")
	var last string
	var twin *platformv1alpha1.ServiceRuntime // as the last write left it
	tick := time.NewTicker(s.opts.HeartbeatInterval)
	defer tick.Stop()
	backoff := time.Second
	for {
		state, written, err := s.report(ctx, last, twin)
		twin = written
		if err != nil {
			log.Info("cannot report the runtime yet", "err", err.Error(), "retryIn", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, s.opts.HeartbeatInterval)
			continue
		}
		backoff, last = time.Second, state
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// The heartbeat is due whatever changed, from a fresh read of the twin (an
			// operator may have changed its spec since).
			last, twin = "", nil
		case <-s.changed:
			select { // at most one write a second for changes
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// report writes the twin's status unless it equals last (and no heartbeat is due),
// returning what it wrote and the twin as the write left it. It starts from known, the
// twin as the previous write left it, when it is given: a report between two heartbeats
// (what the runtime hosts changed) costs one write and no read; one of those that the
// twin changed in between (a conflict) reads it again.
func (s *Servicelet) report(ctx context.Context, last string, known *platformv1alpha1.ServiceRuntime) (string, *platformv1alpha1.ServiceRuntime, error) {
	if known != nil {
		state, written, err := s.reportOn(ctx, last, known.DeepCopy())
		if !apierrors.IsConflict(errors.Unwrap(err)) {
			return state, written, err
		}
	}
	rt := &platformv1alpha1.ServiceRuntime{}
	err := s.client.Get(ctx, client.ObjectKey{Name: s.opts.Runtime}, rt)
	if apierrors.IsNotFound(err) && s.opts.Register != nil {
		rt = &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: s.opts.Runtime}, Spec: *s.opts.Register}
		if err := s.client.Create(ctx, rt); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", nil, fmt.Errorf("failed to register ServiceRuntime %s: %w", s.opts.Runtime, err)
		}
		if err := s.client.Get(ctx, client.ObjectKey{Name: s.opts.Runtime}, rt); err != nil {
			return "", nil, err
		}
	} else if err != nil {
		return "", nil, fmt.Errorf("failed to read ServiceRuntime %s: %w", s.opts.Runtime, err)
	}
	loc := rt.Spec.Location
	s.location.Store(&loc)
	return s.reportOn(ctx, last, rt)
}

// reportOn is report on the twin rt.
func (s *Servicelet) reportOn(ctx context.Context, last string, rt *platformv1alpha1.ServiceRuntime) (string, *platformv1alpha1.ServiceRuntime, error) {
	cached := s.source.List()
	allocated, usage := corev1.ResourceList{}, corev1.ResourceList{}
	count := 0
	usages := s.reconciler.Usage()
	for _, c := range cached {
		count++
		k := s.opts.Kinds[c.Key.Kind]
		addTo(allocated, scheduler.RequestsOf(c.Object, k))
		addTo(usage, usages[c.Key])
	}
	probeErr := s.opts.Probe.Probe(ctx)
	cond := metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: platformv1alpha1.ReasonHeartbeatFresh, Message: "the servicelet reports the runtime usable"}
	if probeErr != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeUnavailable, probeErr.Error()
	}
	if !s.source.Synced() {
		// Right after a restart the cache is still filling: saying nothing for a while
		// keeps the runtime's last verdict instead of flapping it to not Ready.
		if time.Since(s.started) < syncGrace {
			return last, rt, errNotSynced
		}
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeUnavailable, "the servicelet cannot reach the provider's virtual workspace"
	}
	state := fmt.Sprintf("%s|%s|%d|%s|%s|%d", cond.Status, cond.Message, count, canonical(allocated), canonical(usage), rt.Generation)
	if state == last {
		return last, rt, nil
	}
	now := metav1.Now()
	patch := rt.DeepCopy()
	meta.SetStatusCondition(&patch.Status.Conditions, cond)
	patch.Status.LastHeartbeatTime = &now
	patch.Status.Allocated = allocated
	patch.Status.Usage = usage
	patch.Status.CapabilityCount = int32(count)
	patch.Status.ServiceletVersion = Version
	patch.Status.ObservedGeneration = rt.Generation
	// Guarded by the resourceVersion it was computed from: a twin changed since (by an
	// operator, or the coordinator marking it late) is read again rather than overwritten.
	if err := s.client.Status().Patch(ctx, patch, client.MergeFromWithOptions(rt, client.MergeFromWithOptimisticLock{})); err != nil {
		return "", nil, fmt.Errorf("failed to report ServiceRuntime %s: %w", s.opts.Runtime, err)
	}
	return state, patch, nil
}

// canonical prints a resource list the same way whatever its quantities cached, so that
// comparing two reports does not see changes that are not there.
func canonical(l corev1.ResourceList) string {
	names := make([]string, 0, len(l))
	for name := range l {
		names = append(names, string(name))
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		q := l[corev1.ResourceName(name)]
		b.WriteString(name + "=" + q.String() + ",")
	}
	return b.String()
}

func addTo(sum, add corev1.ResourceList) {
	for name, q := range add {
		v := sum[name]
		v.Add(q)
		sum[name] = v
	}
}

// serveDebug serves /capabilities, the keys the source's cache holds, and /healthz.
func (s *Servicelet) serveDebug(ctx context.Context) error {
	l, err := net.Listen("tcp", s.opts.DebugAddr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", s.opts.DebugAddr, err)
	}
	s.listenerMu.Lock()
	s.debugAddr = l.Addr().String()
	s.listenerMu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("/capabilities", func(w http.ResponseWriter, _ *http.Request) {
		var out []map[string]string
		for _, c := range s.source.List() {
			out = append(out, map[string]string{
				"cluster": c.Key.Cluster, "namespace": c.Key.Namespace, "name": c.Key.Name,
				"kind": c.Object.GetKind(), "runtime": c.Object.GetLabels()[platformv1alpha1.LabelRuntime],
			})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return nil
}

// DebugAddr is the address the debug endpoint listens on, once Run started it.
func (s *Servicelet) DebugAddr() string {
	s.listenerMu.Lock()
	defer s.listenerMu.Unlock()
	return s.debugAddr
}
