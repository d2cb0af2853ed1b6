package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// scenarioResult is one scenario's levels and what twofold did meanwhile.
type scenarioResult struct {
	scenario
	levels   []levelResult
	hwm      int64 // twofold's VmHWM at the end of the scenario, KiB
	logLines int   // lines twofold logged at warn or above
	// logSample is a few of those lines.
	logSample []string
	// server names the process measured: "twofold" if empty, or "Hydra".
	server string
}

// renderScenario is a scenario's table and notes, in Markdown.
func renderScenario(r scenarioResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n%s\n\n", r.title, r.what)
	server := cmp.Or(r.server, "twofold")
	fmt.Fprintf(&b, "| clients | ops/s | p50 ms | p95 ms | p99 ms | errors | HTTP/op | %s CPU s | CPU ms/op | max RSS MiB | PG CPU s | bench CPU s | other CPU s | PG xacts/op | PG rows/op |\n", server)
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var notes []string
	var (
		bestLevel levelResult
		ratios    []string
	)
	for _, l := range r.levels {
		cpuPerOp, xacts, rows, pg := "–", "n/a", "n/a", "n/a"
		if l.ops > 0 {
			cpuPerOp = fmt.Sprintf("%.2f", l.serverCPU*1000/float64(l.ops))
		}
		if l.hasDB {
			xacts, rows, pg = fmt.Sprintf("%.1f", l.xacts), fmt.Sprintf("%.0f", l.rows), fmt.Sprintf("%.1f", l.pgCPU)
		}
		fmt.Fprintf(&b, "| %d | %.0f | %s | %s | %s | %d | %.1f | %.1f | %s | %.0f | %s | %.1f | %.1f | %s | %s |\n",
			l.conc, l.opsPerSec(), ms(l.p50), ms(l.p95), ms(l.p99), l.errs, l.requests, l.serverCPU, cpuPerOp,
			float64(l.maxRSS)/1024, pg, l.benchCPU, l.otherCPU, xacts, rows)
		if l.floor > 0 {
			ratios = append(ratios, fmt.Sprintf("%d clients %.0f%% (%.1f hashes/s; slices %s)", l.conc, 100*l.opsPerSec()/l.floor, l.floor, percents(l.sliceRatios)))
			if bestLevel.floor == 0 || l.opsPerSec()/l.floor > bestLevel.opsPerSec()/bestLevel.floor {
				bestLevel = l
			}
		}
		for _, e := range l.errSample {
			notes = append(notes, fmt.Sprintf("error at %d clients: `%s`", l.conc, strings.ReplaceAll(e, "`", "'")))
		}
		if l.waited > 0 {
			notes = append(notes, fmt.Sprintf("at %d clients, workers waited %s in all for a user with a fresh code", l.conc, l.waited.Round(time.Millisecond)))
		}
	}
	notes = append(notes, fmt.Sprintf("peak RSS of %s over the scenario (VmHWM): %.0f MiB", server, float64(r.hwm)/1024))
	if len(ratios) > 0 {
		notes = append(notes, fmt.Sprintf("throughput against the argon2id floor (each level in %d slices of %s, each slice against the mean of the floors measured just before and just after it): %s; best **%.0f%%**",
			floorSlices, bestLevel.slice, strings.Join(ratios, ", "), 100*bestLevel.opsPerSec()/bestLevel.floor))
		if n := cpuBreakdown(bestLevel, bestLevel.floor); n != "" {
			notes = append(notes, n)
		}
	}
	if r.logLines > 0 {
		notes = append(notes, fmt.Sprintf("%s logged %d lines at warn or above while serving", server, r.logLines))
		for _, l := range r.logSample {
			notes = append(notes, "log: `"+strings.ReplaceAll(l, "`", "'")+"`")
		}
	}
	b.WriteString("\n")
	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}
	return b.String()
}

// percents lists ratios as whole percentages: "78/83/81%".
func percents(ratios []float64) string {
	p := make([]string, len(ratios))
	for i, r := range ratios {
		p[i] = fmt.Sprintf("%.0f", 100*r)
	}
	return strings.Join(p, "/") + "%"
}

func ms(d time.Duration) string {
	v := d.Seconds() * 1000
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// renderMachine is where and how the numbers were taken.
func renderMachine(o options, m machine, floor float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- date: %s; twofold %s\n", m.date.Format("2006-01-02 15:04 MST"), m.commit)
	fmt.Fprintf(&b, "- CPU: %s, %d logical CPUs (GOMAXPROCS %d); memory %s; Linux %s\n", m.cpuModel, m.cpus, m.gomaxprocs, m.memTotal, m.kernel)
	fmt.Fprintf(&b, "- %s; database: %s\n", m.goVersion, m.dbVersion)
	fmt.Fprintf(&b, "- load average before the run: %s (the harness, twofold and the database share these cores; other work makes numbers noisy)\n", m.loadAvg)
	fmt.Fprintf(&b, "- %s per level, %s warm-up, concurrency %s\n", o.duration, o.warmup, joinInts(o.levels))
	fmt.Fprintf(&b, "- argon2id floor (m=19 MiB, t=2, p=1, all cores): **%.1f hashes/s**\n", floor)
	return b.String()
}

// renderSection is the report of one database's run.
func renderSection(o options, m machine, floor float64, tables string) string {
	title := sectionTitles[sectionKey(o)]
	run := strings.TrimSpace("go run ./bench " + strings.Join(o.args, " "))
	if len(o.args) == 0 {
		run = "make bench"
	}
	return fmt.Sprintf("## %s\n\nMeasured with `%s`.\n\n%s\n%s", title, run, renderMachine(o, m, floor), tables)
}

// sectionTitles are the report's sections: one per database, and the
// comparison with Hydra (-compare, on PostgreSQL).
var sectionTitles = map[string]string{"postgres": "PostgreSQL", "sqlite": "SQLite", "compare": "PostgreSQL, compared with Ory Hydra"}

// sectionKey is the section a run rewrites.
func sectionKey(o options) string {
	if o.compare {
		return "compare"
	}
	return o.db
}

// Markers delimit each section, so a run replaces its own and keeps the
// others.
func sectionMarkers(db string) (string, string) {
	return "<!-- bench:" + db + ":begin -->", "<!-- bench:" + db + ":end -->"
}

// updateDoc rewrites path: the introduction, this run's section, and the
// other database's section as it was.
func updateDoc(path, db, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var b strings.Builder
	b.WriteString(intro)
	for _, d := range []string{"postgres", "sqlite", "compare"} {
		begin, end := sectionMarkers(d)
		body := "## " + sectionTitles[d] + "\n\nNot measured yet.\n"
		if d == db {
			body = section
		} else if i, j := strings.Index(string(old), begin), strings.Index(string(old), end); i >= 0 && j > i {
			body = strings.TrimSpace(string(old)[i+len(begin):j]) + "\n"
		}
		fmt.Fprintf(&b, "\n%s\n%s%s\n", begin, body, end)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func joinInts(l []int) string {
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// intro heads docs/benchmarks.md.
const intro = `# Benchmarks

<!-- Generated by ` + "`make bench`" + ` (bench/report.go): edit that, not this file. -->

` + "`make bench`" + ` runs the load generator in ` + "`bench/`" + `: it builds twofold, starts it as
a separate process on a fresh PostgreSQL database (` + "`twofold_bench_<time>`" + `,
dropped at the end) or on SQLite, seeds clients and users with twofold's
own commands (` + "`clients create`, `users create`, `orgs create`" + `) and pages
(TOTP enrollment in Security Settings), and runs each scenario for a fixed
time at each concurrency. twofold is restarted before each scenario, so
its peak RSS is that scenario's; on PostgreSQL the database is ANALYZEd
first, as autovacuum would have done in service (a minutes-old database
has no statistics, and then PostgreSQL may scan every access token to
revoke one grant's). Scenarios run in the order below on one database, so
later ones see the tokens earlier ones left. Each run rewrites its
database's section below and keeps the other's.

` + "```" + `sh
make bench                          # PostgreSQL, 10 s per level, concurrency 1, 8, 32
make bench ARGS="-quick"            # 2 s per level
make bench ARGS="-db sqlite"        # SQLite
make bench ARGS="-scenarios totp,backup -duration 20s -c 8"
go run ./bench -h                   # every flag
` + "```" + `

Flags: ` + "`-db postgres|sqlite`, `-pg-url URL` (maintenance database; default\n`postgres://postgres@127.0.0.1:5432/postgres`, started with\n`pg_ctlcluster 15 main start` if it does not answer), `-duration`, `-warmup`,\n`-c 1,8,32`, `-scenarios`, `-users N` (TOTP users to seed), `-quick`,\n`-out FILE` (empty: stdout only), `-pprof ADDR` (twofold serves its profiler\nthere during the run), `-compare` (below)." + `

` + "`make bench-compare`" + ` runs client credentials, the code flow with a live
session and introspection against twofold and then against Ory Hydra
v2.3.0 in the same run, on the same PostgreSQL, and prints the ratios (its
own section below). Hydra is built once with ` + "`go get -tool`" + ` in a scratch
module under the user's cache directory (` + "`~/.cache/twofold-bench`" + `), never in
this repository's go.mod; it runs ` + "`hydra serve all --dev`" + ` in its default
configuration (opaque tokens) on its own fresh database, with a pool
of twofold's size or one connection per client, whichever is more (with
fewer, its concurrent code flows stall a minute waiting for connections;
twofold's is 8 on two cores), and the harness plays its login
and consent app, accepting every request at once and remembering it.

Columns: **clients** concurrent workers, each looping over the operation;
**ops/s** completed operations per second (errors included); **p50/p95/p99**
latency of one operation; **errors** non-2xx/3xx answers and failed checks
(these are reported, never hidden); **HTTP/op** requests the harness sent
per operation, redirects included; **twofold CPU s** user+system CPU of the
twofold process during the level (/proc/PID/stat), and per operation;
**max RSS** the largest VmRSS sampled every 50 ms; **PG CPU s** CPU of the
PostgreSQL backends serving the benchmark database; **bench CPU s** the
load generator's own CPU, which competes for the same cores; **other CPU s**
the rest of the machine's busy CPU time (/proc/stat) during the level:
PostgreSQL's shared processes, the kernel's interrupts, and whatever else
runs (tests, builds); where it is large, the numbers are noisy; **PG xacts/op**
PostgreSQL transactions (xact_commit + xact_rollback in pg_stat_database)
per operation: every statement outside a transaction counts as one, so
this is a lower bound of database round trips; **PG rows/op** tup_returned
per operation.

How the sign-in scenarios get fresh codes: twofold accepts a TOTP time step
once per user, and only a step later than the last one accepted, within one
step of skew. So each seeded user yields about three codes at once and
then one per 30 seconds. The harness seeds a pool of users sized from the
argon2id floor and the run's length, lends each user to one worker at a
time, and gives it the earliest step twofold still accepts. Backup codes
come from the same users (ten each). Each worker acts from its own
address through X-Forwarded-For (twofold trusts loopback as its proxy), as
the users behind a reverse proxy would; otherwise 32 sign-ins at once from
one address meet the per-address password throttle.

The argon2id floor is how many password hashes per second this machine
does at twofold's parameters with every core busy: no sign-in that checks
a password can go faster. It is measured at the start and, in the
sign-in scenarios, between measurements, since other work on the machine
moves it (argon2id is bound by memory bandwidth, which the machine's
neighbours share): one-second floors on the idle machine the figures
below come from range from 56 to 78 hashes/s, and the mean drifts by
±15% over minutes. So each sign-in level runs as three slices of the
level's duration with a floor measured before, between and after them;
each slice is compared with the mean of the floors on either side of it,
and the level with the time-weighted mean of those. The report lists each
slice's ratio beside the level's, so the spread is there to see: where
it is wide, so is the uncertainty of the level's figure.

twofold runs as it would in service: without GOGC or GOMEMLIMIT in the
environment it sizes its garbage collector for password hashing (GOGC=200
and a soft limit of 96 MiB plus 19 MiB per core; see the operator guide).
Set either variable when running the bench and twofold follows it (the
harness passes its environment on), to compare.
`

// cpuBreakdown says where a sign-in's CPU went at level l, next to one
// argon2id hash at the floor's rate: twofold, PostgreSQL and the harness
// share the cores, so all three count against the floor. It also says how
// busy the cores were, and the ceiling the others leave: the ratio a
// server whose only cost were the hash would reach, with PostgreSQL and
// the harness spending what they spent here.
func cpuBreakdown(l levelResult, floor float64) string {
	if l.ops == 0 || floor <= 0 {
		return ""
	}
	per := func(s float64) float64 { return s * 1000 / float64(l.ops) }
	hash := float64(numCPU()) * 1000 / floor
	server, others := per(l.serverCPU), per(l.benchCPU)
	pg := ""
	if l.hasDB {
		others += per(l.pgCPU)
		pg = fmt.Sprintf(" + PostgreSQL %.1f ms", per(l.pgCPU))
	}
	total := server + others
	note := fmt.Sprintf("CPU per sign-in at %d clients: twofold %.1f ms%s + harness %.1f ms = %.1f ms; one argon2id hash costs %.1f ms of one core at the floor's rate, %.0f%% of twofold's own CPU per sign-in and %.0f%% of the whole",
		l.conc, server, pg, per(l.benchCPU), total, hash, 100*hash/server, 100*hash/total)
	if hash > server {
		note += " (more than twofold spent in all: the machine ran faster during the level than during the floors around it)"
	}
	if secs := l.elapsed.Seconds() * float64(numCPU()); secs > 0 {
		busy := (l.serverCPU + l.benchCPU + l.pgCPU + l.otherCPU) / secs
		note += fmt.Sprintf("; the cores were %.0f%% busy", 100*min(busy, 1))
	}
	beside := "the harness CPU" // SQLite's work is twofold's own
	if l.hasDB {
		beside = "the PostgreSQL and harness CPU"
	}
	return note + fmt.Sprintf("; a server spending nothing beyond the hash, next to %s measured here, would reach %.0f%% of the floor", beside, 100*hash/(hash+others))
}
