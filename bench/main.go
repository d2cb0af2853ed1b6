// Command bench is twofold's load generator. It builds the twofold binary,
// starts it as a separate process on a fresh PostgreSQL database (or on
// SQLite with -db sqlite), seeds clients and users with the binary's own
// commands and pages, and runs each scenario for a fixed time at several
// concurrencies, printing throughput, latency percentiles, errors,
// twofold's CPU time and memory, and PostgreSQL's work per operation.
// The results and a description of the machine go to stdout and to
// docs/benchmarks.md.
//
//	go run ./bench [-db postgres|sqlite] [-quick] [-duration 10s] [-c 1,8,32] [-scenarios all]
//
// It measures; it never asserts. Numbers from a machine that does other
// work at the same time are noisy: the report says what else ran.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	db        string
	pgURL     string
	duration  time.Duration
	warmup    time.Duration
	floorTime time.Duration
	levels    []int
	scenarios []string
	users     int
	out       string
	quick     bool
	pprof     string
	compare   bool
	args      []string // as given, for the report
}

func parseFlags(args []string) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.db, "db", "postgres", "database: postgres or sqlite")
	fs.StringVar(&o.pgURL, "pg-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL maintenance database; a fresh twofold_bench_<time> is created beside it (same host, user and options) and dropped at the end")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario and concurrency")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per scenario")
	levels := fs.String("c", "1,8,32", "concurrency levels, comma-separated")
	only := fs.String("scenarios", "all", "comma-separated scenarios to run: "+strings.Join(scenarioKeys(), ","))
	fs.IntVar(&o.users, "users", 0, "TOTP users to seed for the sign-in scenarios (0: sized from the argon2id floor and the duration)")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown report to update (its section for this database); empty for stdout only")
	fs.BoolVar(&o.quick, "quick", false, "short run: 2s per level, 0.3s warm-up, 1s argon2id floor")
	fs.StringVar(&o.pprof, "pprof", "", "serve twofold's profiler on this loopback host:port during the run (e.g. 127.0.0.1:6060), to profile a scenario with go tool pprof")
	fs.BoolVar(&o.compare, "compare", false, "also run client-credentials, code and introspection against Ory Hydra "+hydraVersion+" (built once into the user cache directory) on the same PostgreSQL, and report the ratios")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.floorTime = 3 * time.Second
	if o.compare && o.db != "postgres" {
		return o, errors.New("-compare runs on PostgreSQL only (Hydra's database here)")
	}
	if o.quick {
		o.duration, o.warmup, o.floorTime = 2*time.Second, 300*time.Millisecond, time.Second
	}
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-c %q: want positive integers like 1,8,32", *levels)
		}
		o.levels = append(o.levels, n)
	}
	o.scenarios = scenarioKeys()
	if *only != "all" {
		o.scenarios = strings.Split(*only, ",")
		for _, k := range o.scenarios {
			if !slices.Contains(scenarioKeys(), k) {
				return o, fmt.Errorf("-scenarios: unknown %q (have %s)", k, strings.Join(scenarioKeys(), ","))
			}
		}
	}
	return o, nil
}

func scenarioKeys() []string {
	var keys []string
	for _, s := range allScenarios() {
		keys = append(keys, s.key)
	}
	return keys
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// harness is one run: its options, environment, HTTP clients and seed.
type harness struct {
	opts      options
	env       *env
	transport *countingTransport
	// httpc is the back-channel client (applications' servers): no cookies,
	// no redirects followed.
	httpc *http.Client
	seed  *seed
	floor float64 // argon2id hashes per second, all cores
}

// run does the whole benchmark: describe the machine, measure the argon2id
// floor, build and seed, run the scenarios, report.
func run(ctx context.Context, o options) (err error) {
	logf("measuring the argon2id floor (%s)", o.floorTime)
	h := &harness{opts: o, floor: argonFloor(o.floorTime)}
	logf("argon2id (m=19 MiB, t=2, p=1): %.1f hashes/s on %d cores", h.floor, numCPU())
	logf("building twofold and creating the %s database", o.db)
	if h.env, err = newEnv(ctx, o); err != nil {
		return err
	}
	defer func() {
		if cerr := h.env.close(ctx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	m := describeMachine(ctx, h.env)
	h.transport = &countingTransport{base: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512,
		IdleConnTimeout: time.Minute, DisableCompression: true}}
	h.httpc = &http.Client{Transport: h.transport, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if err := h.seedAll(ctx); err != nil {
		return err
	}
	header := renderMachine(o, m, h.floor)
	fmt.Println(header)
	var tables strings.Builder
	ours := map[string]scenarioResult{}
	for _, sc := range allScenarios() {
		if !slices.Contains(o.scenarios, sc.key) {
			continue
		}
		r, err := h.runScenario(ctx, sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.key, err)
		}
		if slices.Contains(compareKeys, sc.key) {
			ours[sc.key] = r
		}
		t := renderScenario(r)
		fmt.Println(t)
		tables.WriteString(t + "\n")
	}
	if o.compare && len(ours) > 0 {
		t, err := h.runCompare(ctx, ours)
		if err != nil {
			return fmt.Errorf("compare with Hydra: %w", err)
		}
		fmt.Println(t)
		tables.WriteString(t + "\n")
	}
	section := renderSection(o, m, h.floor, strings.TrimSuffix(tables.String(), "\n"))
	if o.out == "" {
		return nil
	}
	logf("updating %s (section %s)", o.out, sectionKey(o))
	return updateDoc(o.out, sectionKey(o), section)
}

// seedAll registers the clients and users; for the sign-in scenarios it
// creates the user pool and enrolls TOTP through the running server.
func (h *harness) seedAll(ctx context.Context) error {
	var err error
	if h.seed, err = seedBasics(ctx, h.env); err != nil {
		return err
	}
	h.seed.pool = &userPool{}
	if !slices.Contains(h.opts.scenarios, "totp") && !slices.Contains(h.opts.scenarios, "backup") {
		return nil
	}
	n := h.opts.users
	if n == 0 {
		n = h.poolSize()
	}
	start := time.Now()
	logf("seeding %d users with `twofold users create`", n)
	users, err := h.seed.createUsers(ctx, h.env, n)
	if err != nil {
		return err
	}
	srv, err := startServer(ctx, h.env, "seed")
	if err != nil {
		return err
	}
	logf("enrolling TOTP for %d users through Security Settings", n)
	err = h.seed.enrollAll(ctx, h, users)
	if serr := srv.stop(); err == nil {
		err = serr
	}
	h.seed.pool.idle = users
	logf("seeded in %s", time.Since(start).Round(time.Second))
	return err
}

// poolSize is how many TOTP users the sign-in scenarios need. A sign-in
// costs one argon2id verification, so it cannot run faster than the
// floor; over the scenario each user yields about 3 codes plus one per
// 30 seconds (the replay rule), and 10 backup codes.
func (h *harness) poolSize() int {
	total := h.opts.warmup.Seconds() + float64(len(h.opts.levels)*floorSlices)*h.opts.duration.Seconds()
	signIns := 1.25 * h.floor * total
	n := max(signIns/(2+total/30), signIns/10)
	return max(int(math.Ceil(n)), 2*slices.Max(h.opts.levels))
}

// runScenario starts a fresh twofold (so its peak RSS is this scenario's),
// warms it up, and measures each level.
func (h *harness) runScenario(ctx context.Context, sc scenario) (scenarioResult, error) {
	res := scenarioResult{scenario: sc}
	if err := analyze(ctx, h.env); err != nil {
		return res, fmt.Errorf("analyze: %w", err)
	}
	srv, err := startServer(ctx, h.env, sc.key)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	if err := h.runLevels(ctx, &res, h.env, srv); err != nil {
		return res, err
	}
	return res, srv.stop()
}

// runLevels measures res's scenario at each concurrency level against srv
// (twofold, or Hydra) on database e, warming up before the first, and
// notes the server's peak RSS and what it logged.
func (h *harness) runLevels(ctx context.Context, res *scenarioResult, e *env, srv *server) error {
	for i, c := range h.opts.levels {
		ops, err := res.prepare(ctx, h, c)
		if err != nil {
			return fmt.Errorf("prepare %d workers: %w", c, err)
		}
		if i == 0 && h.opts.warmup > 0 {
			drive(ctx, ops, h.opts.warmup)
		}
		h.seed.pool.takeWaited()
		var r levelResult
		if res.pool {
			logf("%s %s: %d workers for %d × %s, argon2id floor between", cmp.Or(res.server, "twofold"), res.key, c, floorSlices, h.opts.duration)
			r = h.measureAgainstFloor(ctx, e, srv, ops)
		} else {
			logf("%s %s: %d workers for %s", cmp.Or(res.server, "twofold"), res.key, c, h.opts.duration)
			r = h.measure(ctx, e, srv, ops)
		}
		r.waited = h.seed.pool.takeWaited()
		res.levels = append(res.levels, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	res.hwm = memKB(srv.pid, "VmHWM")
	res.logLines = srv.logLines() - srv.readyLines
	res.logSample = srv.logSample(3)
	return nil
}

// logf reports progress on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
