package servicelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
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

// Defaults of the twin's reports.
const (
	DefaultHeartbeatInterval = time.Minute
	DefaultProbeInterval     = 10 * time.Second
)

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
	// HeartbeatInterval is how often the twin's status is written: once per interval,
	// with what the runtime hosts then, whether anything changed or not; a change of the
	// runtime's verdict (Ready, and why) is written at once. Defaults to 1m: an idle
	// runtime costs kcp one stored write a minute. The coordinator's heartbeat timeout
	// must be longer (its default, 150s, allows one missed heartbeat).
	HeartbeatInterval time.Duration
	// ProbeInterval is how often the runtime is probed (no write unless the verdict
	// changes). Defaults to 10s, or the heartbeat interval when that is shorter.
	ProbeInterval time.Duration
	// Resync is how often a capability in line is observed again. Defaults to 1m.
	Resync time.Duration
	// Workers reconcile capabilities in parallel. Defaults to 16: a reconcile mostly
	// waits for kcp and the runtime, not for CPU.
	Workers int
	// NormalEvents records Normal events (Created, Updated, Deleted, Orphaned) on the
	// capabilities. Off by default: the conditions say the same, and in kcp each event
	// is a write through the virtual workspace. Warnings are always recorded.
	NormalEvents bool
	// DebugAddr serves /capabilities (what the cache holds, as JSON), /metrics
	// (Prometheus) and /healthz; empty disables it.
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
	started    time.Time
	debugAddr  string
	listenerMu sync.Mutex
	metrics    *metrics
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
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = min(DefaultProbeInterval, opts.HeartbeatInterval)
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
	s := &Servicelet{opts: opts, queue: queue, client: c}
	s.source = NewSource(opts.Config, opts.EndpointSlice, opts.Runtime, opts.Kinds, queue)
	s.reconciler = &Reconciler{Runtime: opts.Runtime, Drivers: opts.Drivers, Source: s.source, Resync: opts.Resync, Log: opts.Log, NormalEvents: opts.NormalEvents,
		Location: s.location.Load}
	s.metrics = newMetrics(queue.Len, s.source.Len)
	s.reconciler.ReadyAfter = s.metrics.createReady.Observe
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
		start := time.Now()
		res, err := s.reconciler.Reconcile(ctx, key)
		s.metrics.duration.Observe(time.Since(start).Seconds())
		switch {
		case err != nil:
			s.metrics.reconciles.WithLabelValues(resultError).Inc()
			s.queue.AddRateLimited(key)
		case res.RequeueAfter > 0:
			s.metrics.reconciles.WithLabelValues(resultOK).Inc()
			s.queue.Forget(key)
			s.queue.AddAfter(key, res.RequeueAfter)
		default:
			s.metrics.reconciles.WithLabelValues(resultOK).Inc()
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

// twin keeps the ServiceRuntime true, like kubelet its Node: the runtime is probed every
// probe interval (locally, no write); the twin's status is written once per heartbeat
// interval with what the runtime hosts then (so under load and when idle alike, one write
// per interval), and at once when the runtime's verdict (Ready, and why) changes. No
// report reads the twin: each starts from what the last write returned, guarded by its
// resourceVersion, and only a conflict (an operator or the coordinator changed the twin)
// reads it again.
func (s *Servicelet) twin(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx).WithName("twin")
	probe := time.NewTicker(s.opts.ProbeInterval)
	defer probe.Stop()
	var (
		twin      *platformv1alpha1.ServiceRuntime // as the last write left it
		verdict   string                           // what the last write said of the runtime
		lastWrite time.Time
		probeErr  error
		capacity  corev1.ResourceList // what the runtime last said it holds
	)
	probeNow, backoff := true, time.Second
	for {
		if probeNow {
			probeErr, probeNow = s.opts.Probe.Probe(ctx), false
			capacity = s.measureCapacity(ctx, log, capacity)
		}
		obs, err := s.observe(probeErr)
		obs.capacity = capacity
		if err == nil {
			switch why := writeDue(lastWrite, time.Now(), s.opts.HeartbeatInterval, verdict, obs.verdict()); why {
			case "":
			default:
				var written *platformv1alpha1.ServiceRuntime
				if written, err = s.report(ctx, obs, twin); err == nil {
					twin, verdict, lastWrite = written, obs.verdict(), time.Now()
					s.metrics.twinWrites.WithLabelValues(why).Inc()
				} else {
					twin = nil
				}
			}
		}
		if err != nil {
			log.Info("cannot report the runtime yet", "err", err.Error(), "retryIn", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff, probeNow = min(backoff*2, s.opts.HeartbeatInterval), true
			continue
		}
		backoff = time.Second
		select {
		case <-ctx.Done():
			return
		case <-probe.C:
			probeNow = true
		case <-time.After(time.Until(lastWrite.Add(s.opts.HeartbeatInterval))):
		}
	}
}

// Why a twin write is due.
const (
	writeHeartbeat = "heartbeat"
	writeVerdict   = "verdict"
)

// writeDue says why the twin's status is to be written now ("" for not yet): the
// heartbeat once an interval passed since the last write (or there was none), and a
// change of the runtime's verdict at once.
func writeDue(lastWrite, now time.Time, interval time.Duration, written, verdict string) string {
	switch {
	case lastWrite.IsZero() || now.Sub(lastWrite) >= interval:
		return writeHeartbeat
	case verdict != written:
		return writeVerdict
	}
	return ""
}

// observation is what the next twin report says.
type observation struct {
	cond             metav1.Condition
	count            int
	allocated, usage corev1.ResourceList
	// capacity is what the runtime reports it holds (driver.CapacityReporter).
	capacity corev1.ResourceList
}

// verdict is the part of an observation that is written at once when it changes: the
// runtime's Ready and why, and the capacity it reports (a cluster lost a node: the
// scheduler must not wait a heartbeat to know).
func (o observation) verdict() string {
	v := string(o.cond.Status) + "|" + o.cond.Reason
	names := slices.Sorted(maps.Keys(o.capacity))
	for _, name := range names {
		q := o.capacity[name]
		v += "|" + string(name) + "=" + q.String()
	}
	return v
}

// measureCapacity asks a probe that can tell the runtime's capacity for it; when it
// cannot answer now, the last answer stands.
func (s *Servicelet) measureCapacity(ctx context.Context, log logr.Logger, last corev1.ResourceList) corev1.ResourceList {
	cr, ok := s.opts.Probe.(driver.CapacityReporter)
	if !ok {
		return nil
	}
	capacity, err := cr.Capacity(ctx)
	if err != nil {
		log.Info("cannot measure the runtime's capacity; the last measure stands", "err", err.Error())
		return last
	}
	return capacity
}

// observe sums what the runtime hosts and judges it from probeErr, the last probe's
// result, and the cache's state.
func (s *Servicelet) observe(probeErr error) (observation, error) {
	obs := observation{allocated: corev1.ResourceList{}, usage: corev1.ResourceList{}}
	usages := s.reconciler.Usage()
	for _, c := range s.source.List() {
		obs.count++
		k := s.opts.Kinds[c.Key.Kind]
		addTo(obs.allocated, scheduler.RequestsOf(c.Object, k))
		addTo(obs.usage, usages[c.Key])
	}
	obs.cond = metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: platformv1alpha1.ReasonHeartbeatFresh, Message: "the servicelet reports the runtime usable"}
	if probeErr != nil {
		obs.cond.Status, obs.cond.Reason, obs.cond.Message = metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeUnavailable, probeErr.Error()
	}
	if !s.source.Synced() {
		// Right after a restart the cache is still filling: saying nothing for a while
		// keeps the runtime's last verdict instead of flapping it to not Ready.
		if time.Since(s.started) < syncGrace {
			return obs, errNotSynced
		}
		obs.cond.Status, obs.cond.Reason, obs.cond.Message = metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeUnavailable, "the servicelet cannot reach the provider's virtual workspace"
	}
	return obs, nil
}

// report writes obs as the twin's status and returns the twin as the write left it. It
// starts from known, the twin as the previous write left it, when it is given (one write,
// no read); without it, or when the twin changed since (a conflict), it reads the twin
// first, registering it if it is missing and the servicelet registers.
func (s *Servicelet) report(ctx context.Context, obs observation, known *platformv1alpha1.ServiceRuntime) (*platformv1alpha1.ServiceRuntime, error) {
	if known != nil {
		written, err := s.reportOn(ctx, obs, known.DeepCopy())
		if !apierrors.IsConflict(errors.Unwrap(err)) {
			return written, err
		}
	}
	rt := &platformv1alpha1.ServiceRuntime{}
	err := s.client.Get(ctx, client.ObjectKey{Name: s.opts.Runtime}, rt)
	if apierrors.IsNotFound(err) && s.opts.Register != nil {
		rt = &platformv1alpha1.ServiceRuntime{ObjectMeta: metav1.ObjectMeta{Name: s.opts.Runtime}, Spec: *s.opts.Register}
		if err := s.client.Create(ctx, rt); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("failed to register ServiceRuntime %s: %w", s.opts.Runtime, err)
		}
		if err := s.client.Get(ctx, client.ObjectKey{Name: s.opts.Runtime}, rt); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("failed to read ServiceRuntime %s: %w", s.opts.Runtime, err)
	}
	loc := rt.Spec.Location
	s.location.Store(&loc)
	return s.reportOn(ctx, obs, rt)
}

// reportOn is report on the twin rt.
func (s *Servicelet) reportOn(ctx context.Context, obs observation, rt *platformv1alpha1.ServiceRuntime) (*platformv1alpha1.ServiceRuntime, error) {
	now := metav1.Now()
	patch := rt.DeepCopy()
	meta.SetStatusCondition(&patch.Status.Conditions, obs.cond)
	patch.Status.LastHeartbeatTime = &now
	patch.Status.Capacity = obs.capacity
	patch.Status.Allocated = obs.allocated
	patch.Status.Usage = obs.usage
	patch.Status.CapabilityCount = int32(obs.count)
	patch.Status.ServiceletVersion = Version
	patch.Status.ObservedGeneration = rt.Generation
	// Guarded by the resourceVersion it was computed from: a twin changed since (by an
	// operator, or the coordinator marking it late) is read again rather than overwritten.
	if err := s.client.Status().Patch(ctx, patch, client.MergeFromWithOptions(rt, client.MergeFromWithOptimisticLock{})); err != nil {
		return nil, fmt.Errorf("failed to report ServiceRuntime %s: %w", s.opts.Runtime, err)
	}
	return patch, nil
}

func addTo(sum, add corev1.ResourceList) {
	for name, q := range add {
		v := sum[name]
		v.Add(q)
		sum[name] = v
	}
}

// serveDebug serves /capabilities, the keys the source's cache holds, /metrics and
// /healthz.
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
	mux.Handle("/metrics", s.metrics.handler())
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
