package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// op is one operation of a scenario, run by one worker; an error counts
// against the scenario (a non-2xx/3xx answer or a failed verification).
type op func(ctx context.Context) error

// levelResult is one scenario at one concurrency.
type levelResult struct {
	conc          int
	ops, errs     int
	elapsed       time.Duration
	p50, p95, p99 time.Duration
	// serverCPU, benchCPU and pgCPU are CPU seconds spent during the level
	// by twofold, by this harness, and by the PostgreSQL backends serving
	// the run's database; otherCPU by everything else on the machine.
	serverCPU, benchCPU, pgCPU, otherCPU float64
	maxRSS                               int64 // largest VmRSS of twofold, KiB
	// xacts and rows are PostgreSQL transactions and rows read per op;
	// hasDB is false on SQLite.
	xacts, rows float64
	hasDB       bool
	// requests is HTTP requests per op (redirects followed count).
	requests float64
	// waited is how long workers waited for a seeded user to be usable.
	waited time.Duration
	// floor is the argon2id floor during the level (sign-in scenarios):
	// the time-weighted mean over its slices of the floors measured just
	// before and just after each (measureAgainstFloor). sliceRatios are
	// the slices' own throughputs against their floors.
	floor       float64
	sliceRatios []float64
	slice       time.Duration // the length of a slice
	errSample   []string
	lat         []time.Duration // sorted
}

func (r levelResult) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// workerStats is what one worker measured.
type workerStats struct {
	lat    []time.Duration
	errs   int
	sample []string
}

// stopKey carries the end of a level in an op's context (see drive).
type stopKey struct{}

// errStopped is an op that did not start because the level ended while
// it waited for a seeded user; it is not counted.
var errStopped = errors.New("level ended")

// stopAt is when the level of ctx ends.
func stopAt(ctx context.Context) time.Time {
	t, _ := ctx.Value(stopKey{}).(time.Time)
	return t
}

// drive runs every worker's op in a loop for d and returns the latencies
// of the operations, with errors counted. An op started before the end
// runs to completion and is counted: cutting a request off would break
// state the next op relies on (a refresh token rotated by twofold but
// never received) and leave twofold working on an answer nobody reads.
// So ops get a context that the deadline does not cancel, and elapsed is
// the time until the last op finished.
func drive(ctx context.Context, ops []op, d time.Duration) ([]time.Duration, int, []string, time.Duration) {
	start := time.Now()
	deadline := start.Add(d)
	ctx = context.WithValue(ctx, stopKey{}, deadline)
	stats := make([]workerStats, len(ops))
	var wg sync.WaitGroup
	for i, o := range ops {
		wg.Go(func() {
			st := &stats[i]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				err := o(ctx)
				if errors.Is(err, errStopped) {
					return
				}
				st.lat = append(st.lat, time.Since(t))
				if err != nil {
					st.errs++
					if len(st.sample) < 3 {
						st.sample = append(st.sample, err.Error())
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lat []time.Duration
	var errs int
	var sample []string
	for _, st := range stats {
		lat = append(lat, st.lat...)
		errs += st.errs
		for _, s := range st.sample {
			if len(sample) < 5 && !slices.Contains(sample, s) {
				sample = append(sample, s)
			}
		}
	}
	return lat, errs, sample, elapsed
}

// measure runs one level against the server srv on database e and
// gathers the process and database figures around it.
func (h *harness) measure(ctx context.Context, e *env, srv *server, ops []op) levelResult {
	r := levelResult{conc: len(ops)}
	db0, hasDB := settledDBCounters(ctx, e)
	cpu0, self0, pg0, all0 := cpuSeconds(srv.pid), cpuSeconds(os.Getpid()), pgBackendsCPU(e.dbName), busyCPUSeconds()
	req0 := h.transport.n.Load()
	rss := sampleRSS(srv.pid)
	lat, errs, sample, elapsed := drive(ctx, ops, h.opts.duration)
	r.maxRSS = rss.finish()
	reqs := h.transport.n.Load() - req0
	r.serverCPU = cpuSeconds(srv.pid) - cpu0
	r.benchCPU = cpuSeconds(os.Getpid()) - self0
	r.pgCPU = pgBackendsCPU(e.dbName) - pg0
	r.otherCPU = max(0, busyCPUSeconds()-all0-r.serverCPU-r.benchCPU-r.pgCPU)
	r.ops, r.errs, r.errSample, r.elapsed = len(lat), errs, sample, elapsed
	if r.ops > 0 {
		r.requests = float64(reqs) / float64(r.ops)
	}
	slices.Sort(lat)
	r.lat = lat
	r.p50, r.p95, r.p99 = percentile(lat, 0.50), percentile(lat, 0.95), percentile(lat, 0.99)
	if hasDB && r.ops > 0 {
		if db1, ok := settledDBCounters(ctx, e); ok {
			r.hasDB = true
			r.xacts = float64(db1.xacts-db0.xacts) / float64(r.ops)
			r.rows = float64(db1.rows-db0.rows) / float64(r.ops)
		}
	}
	return r
}

// floorSlices is how many slices a sign-in level is measured in, with the
// argon2id floor measured between them (measureAgainstFloor).
const floorSlices = 3

// measureAgainstFloor measures a sign-in level in floorSlices slices of
// the level's duration each, with the argon2id floor measured before,
// between and after them, outside the figures. The floor moves with other
// work on the machine (argon2id is bound by memory bandwidth, which
// neighbours share) by ±15% from one second to the next here, and
// drifts over minutes: floors taken only around a long level compare it
// with the machine of another moment. Each slice is compared with the mean
// of the floors on either side of it, and the level with the time-weighted
// mean of those.
func (h *harness) measureAgainstFloor(ctx context.Context, e *env, srv *server, ops []op) levelResult {
	before := argonFloor(h.opts.floorTime)
	var parts []levelResult
	var atFloor float64 // sign-ins the floor would have done in the slices' time
	var ratios []float64
	for range floorSlices {
		p := h.measure(ctx, e, srv, ops)
		after := argonFloor(h.opts.floorTime)
		floor := (before + after) / 2
		atFloor += floor * p.elapsed.Seconds()
		ratios = append(ratios, p.opsPerSec()/floor)
		parts = append(parts, p)
		before = after
		if ctx.Err() != nil {
			break
		}
	}
	r := mergeLevels(parts)
	r.floor, r.sliceRatios, r.slice = atFloor/r.elapsed.Seconds(), ratios, h.opts.duration
	return r
}

// mergeLevels adds up the slices of one level.
func mergeLevels(parts []levelResult) levelResult {
	r := levelResult{conc: parts[0].conc, hasDB: true}
	var xacts, rows, reqs float64
	for _, p := range parts {
		r.ops += p.ops
		r.errs += p.errs
		r.elapsed += p.elapsed
		r.serverCPU += p.serverCPU
		r.benchCPU += p.benchCPU
		r.pgCPU += p.pgCPU
		r.otherCPU += p.otherCPU
		r.maxRSS = max(r.maxRSS, p.maxRSS)
		r.hasDB = r.hasDB && p.hasDB
		xacts += p.xacts * float64(p.ops)
		rows += p.rows * float64(p.ops)
		reqs += p.requests * float64(p.ops)
		r.lat = append(r.lat, p.lat...)
		for _, e := range p.errSample {
			if len(r.errSample) < 5 && !slices.Contains(r.errSample, e) {
				r.errSample = append(r.errSample, e)
			}
		}
	}
	if r.ops > 0 {
		r.xacts, r.rows, r.requests = xacts/float64(r.ops), rows/float64(r.ops), reqs/float64(r.ops)
	}
	slices.Sort(r.lat)
	r.p50, r.p95, r.p99 = percentile(r.lat, 0.50), percentile(r.lat, 0.95), percentile(r.lat, 0.99)
	return r
}

// countingTransport counts the HTTP requests the harness sends.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(req)
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
